"""Waivers and discounts (减免): requested by one person, decided by another.

Two targets:

- ``principal``: part of a bill's outstanding. Approval writes ``Allocation(source=waiver)``,
  moves ``Bill.waived_fen`` and posts Dr WAIVER_EXPENSE / Cr RECEIVABLE, in one transaction.
  A late fee already charged into a late-fee bill is waived this way, on that bill.
- ``late_fee``: the late fee accrued on a bill and not yet charged. Nothing was booked for it,
  so nothing is posted: ``late_fee_as_of`` subtracts approved late-fee waivers from their
  effective date. Without an amount it waives the whole late fee, now and later.

Approval needs a different person from the requester, with the finance, admin or manager role
in the bill's company (and community). Every step writes an audit event.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied, require_role
from wuye.billing.latefees import late_fee_as_of, late_fee_charged
from wuye.billing.models import Allocation, Bill, Waiver
from wuye.core.services import audit_record
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post

APPROVER_ROLES = frozenset({Role.FINANCE.value, Role.ADMIN.value, Role.MANAGER.value})
REQUESTER_ROLES = frozenset(
    {Role.FINANCE.value, Role.ADMIN.value, Role.MANAGER.value, Role.CASHIER.value}
)


class WaiverError(Exception):
    """A waiver step was refused; nothing was written. The message says why."""


class WaiverInvalid(WaiverError, ValueError):
    """The request itself is wrong: amount, reason, target or date."""


class WaiverNotAllowed(WaiverError, AccessDenied):
    """The user lacks a role that may request or decide waivers in that company."""


class WaiverSelfApproval(WaiverNotAllowed):
    """The approver is the person who asked for the waiver."""


class WaiverNotPending(WaiverError):
    """The waiver was already approved or rejected."""


class WaiverExceedsOutstanding(WaiverError, ValueError):
    """A principal waiver is larger than what is left to pay on the bill."""


class WaiverExceedsLateFee(WaiverError, ValueError):
    """A late-fee waiver is larger than the late fee accrued and not yet charged."""


def _require(user: Any, roles: frozenset[str], bill: Bill, what: str) -> None:
    try:
        require_role(user, set(roles), company_id=bill.company_id, community_id=bill.community_id)
    except AccessDenied as exc:
        raise WaiverNotAllowed(
            f"{what}: user {user} holds none of {sorted(roles)} in the bill's company"
        ) from exc


def waiver_request(
    *,
    bill: Bill,
    target: str,
    amount_fen: int | None,
    reason: str,
    requested_by: Any,
) -> Waiver:
    """Ask for a waiver on ``bill``; return it pending approval.

    ``target`` is ``Waiver.Target.PRINCIPAL`` (``amount_fen`` required, at most the bill's
    outstanding) or ``Waiver.Target.LATE_FEE`` (``amount_fen`` None waives the whole late fee).
    Raise WaiverInvalid, WaiverExceedsOutstanding or WaiverNotAllowed.
    """
    if target not in Waiver.Target.values:
        raise WaiverInvalid(f"target: must be one of {Waiver.Target.values}, got {target!r}")
    reason = (reason or "").strip()
    if not reason:
        raise WaiverInvalid("reason: a waiver needs a reason")
    if len(reason) > 200:
        raise WaiverInvalid("reason: at most 200 characters")
    if amount_fen is not None and (
        not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0
    ):
        raise WaiverInvalid(
            f"amount_fen: must be a positive whole number of fen, got {amount_fen!r}"
        )
    if target == Waiver.Target.PRINCIPAL:
        bill.refresh_from_db(fields=["amount_fen", "paid_fen", "waived_fen"])
        if amount_fen is None:
            raise WaiverInvalid("amount_fen: required for a principal waiver")
        if amount_fen > bill.outstanding_fen:
            raise WaiverExceedsOutstanding(
                f"amount_fen: {amount_fen} fen exceeds the {bill.outstanding_fen} fen "
                f"outstanding on bill #{bill.pk}"
            )
    elif bill.kind == Bill.Kind.LATE_FEE or not bill.fee_item.late_fee_enabled:
        raise WaiverInvalid(
            f"target: bill #{bill.pk} bears no late fee; waive its principal instead"
        )
    _require(requested_by, REQUESTER_ROLES, bill, "requested_by")
    with transaction.atomic():
        waiver = Waiver.objects.create(
            bill=bill,
            target=target,
            amount_fen=amount_fen,
            reason=reason,
            requested_by=requested_by,
        )
        audit_record(
            actor=requested_by,
            action="waiver.request",
            obj=waiver,
            company=bill.company,
            detail={"bill": bill.pk, "target": target, "amount_fen": amount_fen, "reason": reason},
        )
    return waiver


def _lock(waiver: Waiver) -> tuple[Waiver, Bill]:
    bill = (
        Bill.objects.select_for_update()
        .select_related("fee_item", "company")
        .get(pk=waiver.bill_id)
    )
    locked = Waiver.objects.select_for_update().get(pk=waiver.pk)
    if locked.state != Waiver.State.PENDING:
        raise WaiverNotPending(f"waiver #{waiver.pk} is already {locked.state}")
    return locked, bill


def waiver_approve(
    *, waiver: Waiver, approver: Any, on_date: date, now: datetime | None = None
) -> Waiver:
    """Approve a pending waiver, effective ``on_date``; return it approved.

    A principal waiver settles that much of the bill (allocation, ``waived_fen``, Dr
    WAIVER_EXPENSE / Cr RECEIVABLE); a late-fee waiver reduces ``late_fee_as_of`` from
    ``on_date``. ``now`` is the decision time (default: the clock). Raise WaiverNotPending,
    WaiverSelfApproval, WaiverNotAllowed, WaiverInvalid, WaiverExceedsOutstanding or
    WaiverExceedsLateFee; a refusal writes nothing.
    """
    decided_at = now or timezone.now()
    with transaction.atomic():
        locked, bill = _lock(waiver)
        if getattr(approver, "pk", None) == locked.requested_by_id:
            raise WaiverSelfApproval(
                f"approver: waiver #{locked.pk} needs an approver other than its requester"
            )
        _require(approver, APPROVER_ROLES, bill, "approver")
        if on_date < bill.issued_on:
            raise WaiverInvalid(
                f"on_date: {on_date} is before bill #{bill.pk} was issued on {bill.issued_on}"
            )
        detail: dict[str, Any] = {"bill": bill.pk, "target": locked.target, "on_date": str(on_date)}
        if locked.target == Waiver.Target.PRINCIPAL:
            amount = int(locked.amount_fen or 0)
            if amount > bill.outstanding_fen:
                raise WaiverExceedsOutstanding(
                    f"amount_fen: {amount} fen exceeds the {bill.outstanding_fen} fen "
                    f"outstanding on bill #{bill.pk}"
                )
            dims = {
                "community_id": bill.community_id,
                "household_id": bill.unit_id,
                "fee_item_id": bill.fee_item_id,
            }
            entry = entry_post(
                company_id=bill.company_id,
                kind=JournalEntry.Kind.WAIVER,
                memo=f"减免 账单#{bill.pk}: {locked.reason}",
                effective_date=on_date,
                idempotency_key=f"waiver:{locked.pk}",
                created_by_id=approver.pk,
                lines=[
                    debit(AccountKind.WAIVER_EXPENSE, amount, **dims),
                    credit(AccountKind.RECEIVABLE, amount, **dims),
                ],
            )
            Allocation.objects.create(
                bill=bill,
                source=Allocation.Source.WAIVER,
                amount_fen=amount,
                allocated_on=on_date,
                entry=entry,
                reference=f"waiver:{locked.pk}",
            )
            bill.waived_fen += amount
            bill.save(update_fields=["waived_fen"])
            detail.update(amount_fen=amount, entry=entry.pk)
        else:
            uncharged = late_fee_as_of(bill=bill, as_of=on_date) - late_fee_charged(bill=bill)
            if locked.amount_fen is not None and locked.amount_fen > uncharged:
                raise WaiverExceedsLateFee(
                    f"amount_fen: {locked.amount_fen} fen exceeds the {max(0, uncharged)} fen "
                    f"late fee accrued and not yet charged on bill #{bill.pk} as of {on_date}"
                )
            detail.update(amount_fen=locked.amount_fen, late_fee_before_fen=uncharged)
        locked.state = Waiver.State.APPROVED
        locked.approved_by = approver
        locked.decided_at = decided_at
        locked.effective_date = on_date
        locked.save(update_fields=["state", "approved_by", "decided_at", "effective_date"])
        audit_record(
            actor=approver, action="waiver.approve", obj=locked, company=bill.company, detail=detail
        )
    waiver.refresh_from_db()
    return locked


def waiver_reject(
    *, waiver: Waiver, approver: Any, reason: str = "", now: datetime | None = None
) -> Waiver:
    """Reject a pending waiver; return it rejected. Nothing is posted.

    Raise WaiverNotPending or WaiverNotAllowed.
    """
    decided_at = now or timezone.now()
    with transaction.atomic():
        locked, bill = _lock(waiver)
        _require(approver, APPROVER_ROLES, bill, "approver")
        locked.state = Waiver.State.REJECTED
        locked.approved_by = approver
        locked.decided_at = decided_at
        locked.save(update_fields=["state", "approved_by", "decided_at"])
        audit_record(
            actor=approver,
            action="waiver.reject",
            obj=locked,
            company=bill.company,
            detail={"bill": bill.pk, "reason": reason.strip()},
        )
    waiver.refresh_from_db()
    return locked
