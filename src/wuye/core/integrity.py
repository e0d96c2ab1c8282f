"""Checks for what the database no longer checks itself.

Some foreign keys are declared with ``db_constraint=False`` (dimension columns: the company,
community, household, cashier or shift copied onto a payment, journal line or receipt; see
docs/adr/0005-dimension-columns.md). The services write ids they have just read, and Django's
``on_delete=PROTECT`` still guards deletes made through the ORM; this module finds any row
whose such column names a row that does not exist, for tests and for an operator's audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.db import connection, models


@dataclass(frozen=True)
class Dangling:
    """``count`` rows of ``table`` whose ``column`` names a missing row of ``target``."""

    table: str
    column: str
    target: str
    count: int


def unconstrained_foreign_keys() -> list[tuple[type[models.Model], models.ForeignKey]]:
    """Every concrete foreign key of an installed model without a database constraint."""
    found = []
    for model in apps.get_models():
        if model._meta.abstract or model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, models.ForeignKey) and not getattr(field, "db_constraint", True):
                found.append((model, field))
    return found


def dangling_dimensions() -> list[Dangling]:
    """Rows whose unconstrained foreign key points at nothing (empty when all is well)."""
    q = connection.ops.quote_name
    out = []
    with connection.cursor() as cursor:
        for model, field in unconstrained_foreign_keys():
            target = field.related_model._meta
            pk = str(target.pk.column if target.pk else "id")
            table, column = model._meta.db_table, str(field.column)
            sql = (
                f"SELECT count(*) FROM {q(table)} t LEFT JOIN {q(target.db_table)} p"  # noqa: S608
                f" ON p.{q(pk)} = t.{q(column)}"
                f" WHERE t.{q(column)} IS NOT NULL AND p.{q(pk)} IS NULL"
            )
            cursor.execute(sql)
            (count,) = cursor.fetchone()
            if count:
                out.append(Dangling(table, column, target.db_table, int(count)))
    return out
