"""Automatic resolution of the obvious differences, after a matching run.

Three rules, each safe to run again:

1. A channel-only *payment* (not a refund) whose household Wuye can find by itself — our
   order number echoed by the channel, or a terminal attempt that recorded the channel's
   reference — is posted to that household's bills (``resolution.channel_payment_post``); the
   exception becomes ``auto_resolved``.
2. A settlement whose bank credit is exactly the net amount the channel promised is booked as
   arrived (``resolution.arrival_post``: Dr BANK + Dr FEE_EXPENSE at the contracted fee /
   Cr CLEARING). If the matching run had flagged it late, that exception becomes
   ``auto_resolved``. An arrival finance undid is not booked again by the rule.
3. A missing, late or short arrival (often one finance was chasing) that the matching run
   closed because the bank's credit has now come is marked *resolved by arrival*: an
   ``arrived`` event with the credits, shown on its page and in the queue.

Everything a rule does is in the exception's history and the audit trail, shown on the finance
page, and undone by finance with ``resolution.exception_undo`` / ``arrival_undo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django_tasks import task

from wuye.core.models import Job
from wuye.core.money import format_yuan
from wuye.core.services import audit_record, job_finish, job_progress_reporter, job_start
from wuye.estates.models import Company
from wuye.ledger.models import JournalEntry
from wuye.reconciliation.clearing import recon_key
from wuye.reconciliation.models import (
    BankMovement,
    Category,
    ChannelRecord,
    ChannelSettlement,
    ReconException,
    ReconExceptionEvent,
)
from wuye.reconciliation.resolution import (
    Action,
    HouseholdNotFound,
    ResolutionError,
    arrival_post,
    contracted_fee,
    exception_resolve,
    household_find,
    posting_undo,
    resolver_check,
)


@dataclass
class RulesResult:
    """What the rules did for one company and settlement date."""

    payments_posted: list[int] = field(default_factory=list)  # exception ids
    arrivals_booked: list[int] = field(default_factory=list)  # journal entry ids
    left_open: list[int] = field(default_factory=list)  # channel-only exceptions left to people
    arrived: list[int] = field(default_factory=list)  # arrival exceptions closed by the money

    def as_dict(self) -> dict[str, Any]:
        return {
            "payments_posted": len(self.payments_posted),
            "arrivals_booked": len(self.arrivals_booked),
            "left_open": len(self.left_open),
            "arrived": len(self.arrived),
        }

    def lines(self) -> list[str]:
        """One line per thing the rules did (for the command line)."""
        out: list[str] = []
        excs = ReconException.objects.in_bulk([*self.payments_posted, *self.arrived])
        for pk in self.payments_posted:
            e = excs[pk]
            out.append(
                f"rule posted #{e.pk} {e.category} {e.channel} {e.reference} "
                f"{e.amount_fen} fen → payment #{e.payment_id}"
            )
        for entry in JournalEntry.objects.filter(pk__in=self.arrivals_booked).order_by("pk"):
            out.append(f"rule booked arrival: entry #{entry.pk} {entry.memo}")
        for pk in self.arrived:
            e = excs[pk]
            out.append(
                f"rule closed #{e.pk} {e.category} {e.channel} {e.merchant_no}: "
                "the bank's credit arrived"
            )
        for pk in self.left_open:
            out.append(f"left to finance: #{pk} channel_only (household not found)")
        return out


def _channel_only_open(company_id: int, settle_date: date, channel: str | None) -> list[Any]:
    qs = ReconException.objects.filter(
        company_id=company_id,
        settle_date=settle_date,
        category=Category.CHANNEL_ONLY,
        state=ReconException.State.OPEN,
        amount_fen__gt=0,
    ).select_related("channel_record")
    if channel:
        qs = qs.filter(channel=channel)
    return list(qs.order_by("id"))


def rules_apply(
    *, company_id: int, settle_date: date, now: datetime, channel: str | None = None
) -> RulesResult:
    """Apply the automatic rules to one company's settlement date; return what they did.

    Each resolution is its own transaction, so one that fails (a bill held by another
    order…) leaves the others done and itself open for finance.
    """
    result = RulesResult()
    for exc in _channel_only_open(company_id, settle_date, channel):
        record = exc.channel_record
        if record is not None and record.kind != ChannelRecord.Kind.PAYMENT:
            continue
        try:
            household_find(
                company_id=company_id,
                channel=exc.channel,
                reference=exc.reference,
                order_no=exc.order_no or (record.order_no if record else ""),
            )
            exception_resolve(
                exception=exc,
                action=Action.POST_PAYMENT,
                user=None,
                now=now,
                note="规则: 渠道单边收款, 订单号可识别, 自动补记",
                auto=True,
            )
        except (HouseholdNotFound, ResolutionError, ValueError):
            result.left_open.append(exc.pk)
            continue
        result.payments_posted.append(exc.pk)
    result.arrivals_booked = _arrivals_exact(company_id, settle_date, channel, now=now)
    result.arrived = _closed_by_arrival(company_id, settle_date, channel, now=now)
    return result


ARRIVAL_CATEGORIES = (Category.ARRIVAL_MISSING, Category.ARRIVAL_LATE, Category.ARRIVAL_SHORT)
ARRIVED = "arrived"
"""The history event of an arrival exception a re-run closed because the money came."""


def _closed_by_arrival(
    company_id: int, settle_date: date, channel: str | None, *, now: datetime
) -> list[int]:
    """Mark the arrival exceptions the matching run closed (``gone``) now that the bank's
    credits for their settlement are there: an ``arrived`` event (once) and an audit event.
    The state stays ``auto_resolved``/``gone``, so a later run that finds the difference
    again reopens it as before."""
    qs = (
        ReconException.objects.filter(
            company_id=company_id,
            settle_date=settle_date,
            category__in=ARRIVAL_CATEGORIES,
            state=ReconException.State.AUTO_RESOLVED,
            resolution="gone",
            settlement__isnull=False,
        )
        .exclude(events__action=ARRIVED)
        .select_related("settlement")
    )
    if channel:
        qs = qs.filter(channel=channel)
    closed: list[int] = []
    for exc in qs.order_by("id"):
        settlement = exc.settlement
        assert settlement is not None
        credits = list(
            BankMovement.objects.filter(
                company_id=company_id,
                channel=settlement.channel,
                merchant_no=settlement.merchant_no,
                settle_date=settlement.settle_date,
                direction=BankMovement.Direction.CREDIT,
            ).order_by("txn_date", "id")
        )
        if not credits:
            continue  # closed for another reason (the settlement file changed): not arrival
        arrived = sum(c.amount_fen for c in credits)
        data = {
            "bank_movement_ids": [c.pk for c in credits],
            "credit_fen": arrived,
            "value_date": credits[-1].value_date.isoformat(),
        }
        with transaction.atomic():
            ReconExceptionEvent.objects.create(
                exception=exc,
                at=now,
                by=None,
                action=ARRIVED,
                note=_("银行已到账 %(amount)s 元 (%(date)s), 重新对账时自动关闭")
                % {"amount": format_yuan(arrived), "date": credits[-1].value_date.isoformat()},
                data=data,
            )
            audit_record(
                actor=None,
                action="reconciliation.arrived",
                obj=exc,
                company=Company.objects.get(pk=company_id),
                detail={"category": exc.category, "channel": exc.channel, **data},
            )
        closed.append(exc.pk)
    return closed


def _arrivals_exact(
    company_id: int, settle_date: date, channel: str | None, *, now: datetime
) -> list[int]:
    settlements = ChannelSettlement.objects.filter(company_id=company_id, settle_date=settle_date)
    if channel:
        settlements = settlements.filter(channel=channel)
    booked: list[int] = []
    for settlement in settlements:
        movement = (
            BankMovement.objects.filter(
                company_id=company_id,
                channel=settlement.channel,
                merchant_no=settlement.merchant_no,
                settle_date=settlement.settle_date,
                direction=BankMovement.Direction.CREDIT,
                amount_fen=settlement.net_fen,
            )
            .order_by("id")
            .first()
        )
        if movement is None:
            continue
        prefix = recon_key(
            "arrival", settlement.channel, settlement.settle_date, company_id, movement.serial_no
        )
        if JournalEntry.objects.filter(
            Q(idempotency_key=prefix) | Q(idempotency_key__startswith=f"{prefix}~")
        ).exists():
            continue  # booked already, or booked and undone by finance: leave it to them
        late = ReconException.objects.filter(
            company_id=company_id,
            settlement=settlement,
            category=Category.ARRIVAL_LATE,
            state=ReconException.State.OPEN,
        ).first()
        if late is not None and late.bank_movement_id in (None, movement.pk):
            if late.bank_movement_id is None:
                late.bank_movement = movement
                late.save(update_fields=["bank_movement"])
            exc = exception_resolve(
                exception=late,
                action=Action.BOOK_ARRIVAL,
                user=None,
                now=now,
                note="规则: 到账金额与应结净额一致, 自动确认到账",
                auto=True,
            )
            if exc.entry_id:
                booked.append(exc.entry_id)
            continue
        if ReconException.objects.filter(
            company_id=company_id,
            settlement=settlement,
            state=ReconException.State.OPEN,
            category__in=[Category.ARRIVAL_SHORT, Category.ARRIVAL_MISSING],
        ).exists():
            continue
        with transaction.atomic():
            entry = arrival_post(
                company_id=company_id,
                channel=settlement.channel,
                settle_date=settlement.settle_date,
                bank_fen=movement.amount_fen,
                fee_fen=contracted_fee(settlement),
                value_date=movement.value_date,
                bank_reference=movement.serial_no,
            )
            audit_record(
                actor=None,
                action="reconciliation.auto_arrival",
                obj=entry,
                company=Company.objects.get(pk=company_id),
                detail={
                    "channel": settlement.channel,
                    "settle_date": f"{settlement.settle_date:%Y%m%d}",
                    "merchant_no": settlement.merchant_no,
                    "bank_serial": movement.serial_no,
                    "amount_fen": movement.amount_fen,
                },
            )
        booked.append(entry.pk)
    return booked


def auto_arrivals(*, company_id: int, settle_date: date) -> list[JournalEntry]:
    """Arrival entries booked for ``settle_date`` (by a rule or a person), newest first."""
    entries = JournalEntry.objects.filter(
        company_id=company_id,
        kind=JournalEntry.Kind.ARRIVAL,
        idempotency_key__startswith="recon:arrival:",
    ).prefetch_related("lines")
    day = f"{settle_date:%Y%m%d}"
    out = [e for e in entries if (e.idempotency_key or "").split(":")[3:4] == [day]]
    out.sort(key=lambda e: -e.pk)
    return out


def arrival_undo(*, entry: JournalEntry, user: Any, now: datetime, reason: str) -> JournalEntry:
    """Undo an arrival booked without an exception (the exact-match rule): reverse it.

    ``user`` must be finance or admin (AccessDenied). Raise ResolutionError for an empty
    reason, an entry that is not an arrival, or one already reversed."""
    resolver_check(user, company_id=entry.company_id)
    if not reason.strip():
        raise ResolutionError(_("请填写撤销原因"))
    if entry.kind != JournalEntry.Kind.ARRIVAL:
        raise ResolutionError(_("凭证 #%(id)s 不是到账凭证") % {"id": entry.pk})
    with transaction.atomic():
        reversal = posting_undo(entry=entry, user=user, now=now, reason=reason)
        audit_record(
            actor=user,
            action="reconciliation.undo_arrival",
            obj=entry,
            company=Company.objects.get(pk=entry.company_id),
            detail={"reversal_id": reversal.pk, "reason": reason.strip()},
        )
    return reversal


# --- running a day: match, then the rules (a background job) ---------------------------------


def reconcile_day(
    *,
    company: Company,
    settle_date: date,
    now: datetime,
    channel: str | None = None,
    user: Any = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Match ``settle_date`` for each channel (or one), then apply the rules; return a summary.

    A missing arrival is reported only once it is due (``as_of`` = today). Raise what
    ``matching.reconcile_run`` raises.
    """
    from django.utils import timezone

    from wuye.reconciliation.matching import reconcile_run
    from wuye.reconciliation.models import Channel

    codes = [channel] if channel else list(Channel.values)
    summary: dict[str, Any] = {"settle_date": f"{settle_date:%Y%m%d}", "runs": {}}
    steps = len(codes) + 1
    for i, code in enumerate(codes):
        if progress:
            progress(i, steps, code)
        run = reconcile_run(
            company=company,
            settle_date=settle_date,
            channel=code,
            as_of=timezone.localdate(now),
            user=user,
            now=now,
        )
        summary["runs"][run.channel] = {
            "run_id": run.pk,
            "matched": run.matched_count,
            "exceptions": run.exception_count,
        }
    if progress:
        progress(len(codes), steps, "rules")
    result = rules_apply(company_id=company.pk, settle_date=settle_date, now=now, channel=channel)
    summary["rules"] = result.as_dict()
    if progress:
        progress(steps, steps, "")
    return summary


def reconcile_day_launch(
    *, company: Company, settle_date: date, channel: str | None, user: Any
) -> Job:
    """Queue matching + rules for ``settle_date`` as a background job and return the job.

    The task is enqueued on commit (in-process by default, ``wuye worker`` with the database
    queue). ``user`` must be finance or admin (AccessDenied).
    """
    resolver_check(user, company_id=company.pk)
    params = {
        "company_id": company.pk,
        "settle_date": settle_date.isoformat(),
        "channel": channel or "",
    }
    with transaction.atomic():
        job = Job.objects.create(
            kind="reconcile_day",
            title=_("对账 %(date)s %(channel)s")
            % {"date": f"{settle_date:%Y-%m-%d}", "channel": channel or _("全部渠道")},
            company_id=company.pk,
            params=params,
            created_by=user if getattr(user, "pk", None) else None,
        )
        audit_record(
            actor=user, action="reconciliation.run", obj=job, company=company, detail=params
        )
        job_id = job.pk
        transaction.on_commit(lambda: reconcile_day_task.enqueue(job_id))
    return job


@task()
def reconcile_day_task(job_id: int) -> dict[str, Any]:
    """Run a queued ``reconcile_day`` job and record its outcome (failed with the error)."""
    from django.utils import timezone

    from wuye.reconciliation.models import Channel

    job = Job.objects.get(pk=job_id)
    job_start(job)
    p = job.params
    try:
        summary = reconcile_day(
            company=Company.objects.get(pk=p["company_id"]),
            settle_date=date.fromisoformat(p["settle_date"]),
            channel=p.get("channel") or None,
            now=timezone.now(),
            user=job.created_by,
            progress=job_progress_reporter(job.pk),
        )
    except Exception as exc:
        job_finish(job, error=f"{type(exc).__name__}: {exc}")
        raise
    names = dict(Channel.choices)
    rule_names = {
        "payments_posted": _("规则补记收款"),
        "arrivals_booked": _("规则确认到账"),
        "left_open": _("待人工处理的渠道单边"),
        "arrived": _("已到账自动关闭"),
    }
    flat: dict[str, Any] = {_("结算日期"): summary["settle_date"]}
    for code, r in summary["runs"].items():
        label = _("%(channel)s 已匹配 / 差异") % {"channel": names.get(code, code)}
        flat[label] = f"{r['matched']} / {r['exceptions']}"
    for key, value in summary["rules"].items():
        flat[str(rule_names.get(key, key))] = value
    job_finish(job, result=flat)
    return flat
