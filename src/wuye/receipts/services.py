"""Writes for receipts: issue (with the next gap-free number), print marks and void with approval.

``receipt_issue`` runs inside the caller's transaction (the payment's): the number is taken by
incrementing the community's sequence row, which locks it until that transaction ends, so
concurrent payments get consecutive numbers and a rolled-back payment gives its number back.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.core.services import audit_record
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
    company's; after either the caller's transaction must roll back (no savepoint is taken, to
    keep the payment path at two statements).
    """
    if kind not in Receipt.Kind.values:
        raise ReceiptError(f"unknown receipt kind {kind!r}")
    if not reference:
        raise ReceiptError("a receipt needs the payment's reference")
    year = _receipt_year(issued_at)
    # No savepoints: inside the payment's transaction this is two statements (UPDATE …
    # RETURNING, INSERT); any failure here fails the whole payment, number included.
    with transaction.atomic(savepoint=False):
        seq, prefix = _sequence_next(company_id=company_id, community_id=community_id, year=year)
        try:
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
            # The transaction is aborted on PostgreSQL, so tell the cause from the message.
            text = str(exc)
            if "uniq_receipt_reference" in text or "receipts_receipt.reference" in text:
                raise ReceiptAlreadyIssued(f"{kind} receipt for {reference} exists") from exc
            raise


# --- printing ------------------------------------------------------------------------------


def receipt_print_record(*, receipt_id: int, now: datetime) -> tuple[Receipt, int]:
    """Record that receipt ``receipt_id`` is being printed; return it and its reprint number.

    The first print is the original (reprint number 0) and stamps ``printed_at``; each later
    print increments ``reprint_count`` and returns the new count, which the receipt then shows
    on its face (补打 / REPRINT). Raises Receipt.DoesNotExist.
    """
    with transaction.atomic():
        receipt = Receipt.objects.select_for_update().get(pk=receipt_id)
        if receipt.printed_at is None:
            receipt.printed_at = now
            receipt.save(update_fields=["printed_at"])
            return receipt, 0
        receipt.reprint_count += 1
        receipt.save(update_fields=["reprint_count"])
        return receipt, receipt.reprint_count


# --- void with approval ----------------------------------------------------------------------

VOID_REQUEST_ROLES = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.CASHIER})
# A different person from the requester, with the authority to take a document off the books.
VOID_APPROVE_ROLES = frozenset({Role.ADMIN, Role.FINANCE})


class ReceiptVoidError(ReceiptError):
    """Base class of the refusals to request, approve or reject a void."""


class ReceiptNotIssued(ReceiptVoidError):
    """Only a valid (issued) receipt can be asked to be voided."""


class ReceiptVoidNotPending(ReceiptVoidError):
    """There is no pending void request on the receipt."""


class ReceiptVoidSelfApproval(ReceiptVoidError):
    """The approver of a void must be someone other than its requester."""


class ReceiptVoidNotAllowed(ReceiptVoidError):
    """The user lacks the role for this in the receipt's community."""


class ReceiptVoidReasonMissing(ReceiptVoidError):
    """A void request needs a reason."""


def _lock_receipt(receipt_id: int) -> Receipt:
    return Receipt.objects.select_for_update().get(pk=receipt_id)


def _require(user: Any, roles: frozenset[str], receipt: Receipt, what: str) -> None:
    from wuye.accounts.selectors import AccessDenied, require_role

    try:
        require_role(
            user, set(roles), company_id=receipt.company_id, community_id=receipt.community_id
        )
    except AccessDenied as exc:
        raise ReceiptVoidNotAllowed(
            f"{what}: {user} may not do this for receipt {receipt.number}"
        ) from exc


def receipt_void_request(*, receipt_id: int, user: Any, reason: str, now: datetime) -> Receipt:
    """Ask for receipt ``receipt_id`` to be voided; it stays valid until someone approves.

    Raises ReceiptVoidReasonMissing, ReceiptNotIssued or ReceiptVoidNotAllowed (the user needs
    the admin, finance, manager or cashier role in the receipt's community); a refusal changes
    nothing.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ReceiptVoidReasonMissing("reason: a void request needs a reason")
    with transaction.atomic():
        receipt = _lock_receipt(receipt_id)
        _require(user, VOID_REQUEST_ROLES, receipt, "user")
        if receipt.state != Receipt.State.ISSUED:
            raise ReceiptNotIssued(f"receipt {receipt.number} is {receipt.state}, not issued")
        receipt.state = Receipt.State.VOID_PENDING
        receipt.void_requested_by = user
        receipt.void_requested_at = now
        receipt.void_reason = reason[:200]
        receipt.save(
            update_fields=["state", "void_requested_by", "void_requested_at", "void_reason"]
        )
        audit_record(
            actor=user,
            action="receipt.void_request",
            obj=receipt,
            company=receipt.company,
            detail={"number": receipt.number, "reason": receipt.void_reason},
        )
        return receipt


def receipt_void_approve(*, receipt_id: int, user: Any, now: datetime) -> Receipt:
    """Approve the pending void of receipt ``receipt_id``: it becomes void, its number stays.

    Voiding is a document action: it does not move money (a refund does). Raises
    ReceiptVoidNotPending, ReceiptVoidSelfApproval or ReceiptVoidNotAllowed (finance or admin
    in the receipt's community); a refusal changes nothing.
    """
    with transaction.atomic():
        receipt = _lock_receipt(receipt_id)
        if receipt.state != Receipt.State.VOID_PENDING:
            raise ReceiptVoidNotPending(f"receipt {receipt.number} has no pending void request")
        if getattr(user, "pk", None) == receipt.void_requested_by_id:
            raise ReceiptVoidSelfApproval(
                f"user: the void of {receipt.number} needs an approver other than its requester"
            )
        _require(user, VOID_APPROVE_ROLES, receipt, "user")
        receipt.state = Receipt.State.VOID
        receipt.void_approved_by = user
        receipt.void_approved_at = now
        receipt.save(update_fields=["state", "void_approved_by", "void_approved_at"])
        audit_record(
            actor=user,
            action="receipt.void_approve",
            obj=receipt,
            company=receipt.company,
            detail={"number": receipt.number, "reason": receipt.void_reason},
        )
        return receipt


def receipt_void_reject(*, receipt_id: int, user: Any, now: datetime, reason: str = "") -> Receipt:
    """Turn down the pending void of receipt ``receipt_id``; it is valid again.

    The request stays in the audit trail. Raises ReceiptVoidNotPending or
    ReceiptVoidNotAllowed (finance or admin).
    """
    with transaction.atomic():
        receipt = _lock_receipt(receipt_id)
        if receipt.state != Receipt.State.VOID_PENDING:
            raise ReceiptVoidNotPending(f"receipt {receipt.number} has no pending void request")
        _require(user, VOID_APPROVE_ROLES, receipt, "user")
        detail = {
            "number": receipt.number,
            "requested_by": receipt.void_requested_by_id,
            "request_reason": receipt.void_reason,
            "reason": reason,
            "at": now.isoformat(),
        }
        receipt.state = Receipt.State.ISSUED
        receipt.void_requested_by = None
        receipt.void_requested_at = None
        receipt.void_reason = ""
        receipt.save(
            update_fields=["state", "void_requested_by", "void_requested_at", "void_reason"]
        )
        audit_record(
            actor=user,
            action="receipt.void_reject",
            obj=receipt,
            company=receipt.company,
            detail=detail,
        )
        return receipt


PRINT_OUTPUTS = ("roll80", "a5", "escpos58", "escpos80")


class ReceiptOutputUnknown(ReceiptError):
    """The requested output is not one of PRINT_OUTPUTS."""


def receipt_print(*, receipt_id: int, output: str, now: datetime) -> tuple[Receipt, bytes]:
    """Record a print of receipt ``receipt_id`` and return it with the printable bytes.

    ``output`` is ``roll80`` or ``a5`` (PDF) or ``escpos58``/``escpos80`` (thermal printer
    bytes). The first print is the original; later ones say 补打 / REPRINT with their count on
    the face. If rendering fails the print is not counted. Raises ReceiptOutputUnknown or
    Receipt.DoesNotExist.
    """
    from wuye.receipts.render.escpos import receipt_escpos
    from wuye.receipts.render.layout import receipt_layout
    from wuye.receipts.render.pdf import receipt_pdf

    if output not in PRINT_OUTPUTS:
        raise ReceiptOutputUnknown(f"output: {output!r} is not one of {PRINT_OUTPUTS}")
    with transaction.atomic():
        receipt, reprint_no = receipt_print_record(receipt_id=receipt_id, now=now)
        layout = receipt_layout(receipt, reprint_no=reprint_no)
        if output.startswith("escpos"):
            return receipt, receipt_escpos(layout, paper=output.removeprefix("escpos"))
        return receipt, receipt_pdf(layout, fmt=output)


class ReceiptPrinterUnknown(ReceiptError):
    """No printer of that name is configured (WUYE_RECEIPT_PRINTERS)."""


class ReceiptPrinterFailed(ReceiptError):
    """The network printer could not be reached or refused the data."""


def receipt_print_to(
    *, receipt_id: int, printer_name: str, paper: str, now: datetime, timeout_s: float = 5.0
) -> Receipt:
    """Print receipt ``receipt_id`` on the configured network printer ``printer_name``.

    The print counts (original or numbered reprint) only if the printer took the bytes.
    Raises ReceiptPrinterUnknown, ReceiptPrinterFailed or ReceiptOutputUnknown.
    """
    from escpos.printer import Network

    from wuye.receipts.selectors import receipt_printers

    address = receipt_printers().get(printer_name)
    if address is None:
        raise ReceiptPrinterUnknown(f"printer: {printer_name!r} is not configured")
    host, port = address
    with transaction.atomic():
        receipt, data = receipt_print(receipt_id=receipt_id, output=f"escpos{paper}", now=now)
        printer = Network(host, port=port, timeout=timeout_s)
        try:
            printer.open()
            printer._raw(data)
        except Exception as exc:  # socket errors and python-escpos' own: the print did not happen
            raise ReceiptPrinterFailed(f"printer {printer_name} ({host}:{port}): {exc}") from exc
        finally:
            printer.close()
        return receipt
