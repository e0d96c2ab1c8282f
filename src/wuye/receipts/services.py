"""Writes for receipts: issue (with the next gap-free number), print marks and void with approval.

``receipt_issue`` runs inside the caller's transaction (the payment's): the number is taken by
incrementing the community's sequence row, which locks it until that transaction ends, so
concurrent payments get consecutive numbers and a rolled-back payment gives its number back.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from wuye.receipts.content import ReceiptContent
from wuye.receipts.models import Receipt, ReceiptSequence


class ReceiptError(Exception):
    """Base class of the receipt services' errors."""


class ReceiptAlreadyIssued(ReceiptError):
    """A receipt of that kind already exists for that reference."""


class ReceiptCommunityMismatch(ReceiptError):
    """The community does not belong to the company given."""


def _receipt_year(issued_at: datetime) -> int:
    return timezone.localtime(issued_at).year


def _sequence_next(*, company_id: int, community_id: int, year: int) -> tuple[int, str]:
    """Increment the community's sequence for ``year`` and return (seq, prefix).

    One ``UPDATE … RETURNING`` both locks the row (like ``select_for_update``) and bumps it, in
    one round trip; the first receipt of a year creates the row (racing creators meet the
    unique constraint and retry the update, which then waits on the winner's lock).
    """
    table = ReceiptSequence._meta.db_table
    sql = (
        f"UPDATE {table} SET last_seq = last_seq + 1 "  # noqa: S608 - table name is ours
        "WHERE community_id = %s AND year = %s RETURNING last_seq, prefix"
    )
    for _attempt in range(3):
        with connection.cursor() as cursor:
            cursor.execute(sql, [community_id, year])
            row = cursor.fetchone()
        if row is not None:
            return int(row[0]), str(row[1])
        from wuye.estates.models import Community

        community = Community.objects.filter(pk=community_id, company_id=company_id).first()
        if community is None:
            raise ReceiptCommunityMismatch(
                f"community {community_id} is not in company {company_id}"
            )
        try:
            with transaction.atomic():
                ReceiptSequence.objects.create(
                    community_id=community_id, year=year, prefix=f"{community.code}-{year}"
                )
        except IntegrityError:
            pass  # another transaction created it first; the update now waits for its lock
    raise ReceiptError(f"could not take a receipt number for community {community_id}")


def receipt_issue(
    *,
    company_id: int,
    community_id: int,
    reference: str,
    content: ReceiptContent,
    issued_at: datetime,
    kind: str = "payment",
) -> Receipt:
    """Issue the receipt for ``reference`` with the community's next number and return it.

    Call it inside the transaction that records the payment (or refund): the number is then
    used if and only if that transaction commits. Raises ReceiptAlreadyIssued if a receipt of
    ``kind`` exists for ``reference`` and ReceiptCommunityMismatch if the community is not the
    company's.
    """
    if kind not in Receipt.Kind.values:
        raise ReceiptError(f"unknown receipt kind {kind!r}")
    if not reference:
        raise ReceiptError("a receipt needs the payment's reference")
    year = _receipt_year(issued_at)
    with transaction.atomic():
        seq, prefix = _sequence_next(company_id=company_id, community_id=community_id, year=year)
        try:
            with transaction.atomic():
                return Receipt.objects.create(
                    company_id=company_id,
                    community_id=community_id,
                    number=f"{prefix}-{seq:06d}",
                    year=year,
                    seq=seq,
                    kind=kind,
                    reference=reference,
                    content=content.to_dict(),
                    amount_fen=content.amount_fen,
                    household_label=content.household_label,
                    issued_at=issued_at,
                    verify_token=secrets.token_urlsafe(18),
                )
        except IntegrityError as exc:
            if Receipt.objects.filter(kind=kind, reference=reference).exists():
                raise ReceiptAlreadyIssued(f"{kind} receipt for {reference} exists") from exc
            raise
