"""Wuye's screens. Each view checks the role, reads through scoped querysets, renders.

An id from a company or community the user may not see is a 404, never a 403, so that ids
do not leak which records exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.billing.latefees import late_fees_for_units
from wuye.billing.models import Bill, FeeItem, Waiver
from wuye.billing.selectors import household_statement, prepaid_balance
from wuye.core.models import Job
from wuye.core.money import format_yuan
from wuye.core.periods import add_months
from wuye.estates.models import MeterReading
from wuye.merchants.models import FeeRate, MerchantDocument
from wuye.web import access, selectors
from wuye.web.forms import (
    BillFilterForm,
    BillingRunForm,
    MonthForm,
    StatementForm,
    WaiverDecisionForm,
    WaiverRequestForm,
)
from wuye.web.services import BillingUnavailable, billing_run_launch

DOCUMENT_WARN_DAYS = 60


def _today() -> date:
    return timezone.localdate()


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- dashboard -------------------------------------------------------------------------------


@access.role_required(access.DASHBOARD)
def home(request: HttpRequest) -> HttpResponse:
    today = _today()
    communities = access.communities_for(request.user, access.DASHBOARD)
    bills = access.bills_for(request.user, access.DASHBOARD)
    form = MonthForm(request.GET or None)
    month = form.cleaned_data["month"] if form.is_valid() else None
    if month is None:
        month = selectors.dashboard_month(bills=bills, today=today)
    figures = selectors.dashboard_figures(
        communities=communities, bills=bills, month=month, today=today
    )
    return render(
        request,
        "web/home.html",
        {
            "today": today,
            "month": month,
            "is_this_month": month == today.replace(day=1),
            "prev_month": add_months(month, -1),
            "next_month": add_months(month, 1) if month < today.replace(day=1) else None,
            "figures": figures,
            "totals": selectors.dashboard_totals(figures),
            "chart": selectors.dashboard_chart_data(figures),
        },
    )


# --- estates ---------------------------------------------------------------------------------


@access.role_required(access.ESTATES)
def communities(request: HttpRequest) -> HttpResponse:
    qs = access.communities_for(request.user, access.ESTATES).annotate(
        n_buildings=Count("buildings", distinct=True), n_units=Count("units", distinct=True)
    )
    return render(request, "web/communities.html", {"communities": qs})


@access.role_required(access.ESTATES)
def community_detail(request: HttpRequest, pk: int) -> HttpResponse:
    community = get_object_or_404(access.communities_for(request.user, access.ESTATES), pk=pk)
    buildings = community.buildings.annotate(n_units=Count("units")).order_by("code")
    return render(
        request, "web/community_detail.html", {"community": community, "buildings": buildings}
    )


@access.role_required(access.ESTATES)
def building_detail(request: HttpRequest, pk: int) -> HttpResponse:
    building = get_object_or_404(
        access.buildings_for(request.user, access.ESTATES).select_related("community"), pk=pk
    )
    units = list(building.units.order_by("floor", "room_no"))
    owners = selectors.primary_residents([u.pk for u in units])
    rows = [(u, owners.get(u.pk)) for u in units]
    return render(request, "web/building_detail.html", {"building": building, "rows": rows})


@access.role_required(access.ESTATES)
def unit_search(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")
    units = list(
        selectors.unit_search(units=access.units_for(request.user, access.ESTATES), text=text)
    )
    owners = selectors.primary_residents([u.pk for u in units])
    ctx = {"q": text, "rows": [(u, owners.get(u.pk)) for u in units]}
    template = "web/_unit_results.html" if _is_htmx(request) else "web/unit_search.html"
    return render(request, template, ctx)


@access.role_required(access.ESTATES)
def household(request: HttpRequest, pk: int) -> HttpResponse:
    unit = get_object_or_404(
        access.units_for(request.user, access.ESTATES).select_related("community", "building"),
        pk=pk,
    )
    today = _today()
    form = StatementForm(request.GET or None)
    as_of = today
    if form.is_valid() and form.cleaned_data["as_of"]:
        as_of = form.cleaned_data["as_of"]

    bills = list(
        Bill.objects.filter(unit=unit).select_related("fee_item").order_by("-period_start", "id")
    )
    late_fees = _late_fees_by_bill(unit.pk, today)
    outstanding_fen = sum(b.outstanding_fen for b in bills)
    late_fee_total = sum(late_fees.values())
    meters = unit.meters.prefetch_related(
        Prefetch("readings", queryset=MeterReading.objects.order_by("-read_date"))
    )
    meter_rows = [(m, next(iter(m.readings.all()), None)) for m in meters]
    ctx = {
        "unit": unit,
        "today": today,
        "as_of": as_of,
        "form": form,
        "residents": unit.residents.all(),
        "parking": unit.parking_spaces.all(),
        "meter_rows": meter_rows,
        "bill_rows": [(b, late_fees.get(b.pk, 0)) for b in bills],
        "outstanding_fen": outstanding_fen,
        "late_fee_total": late_fee_total,
        "prepaid_fen": _prepaid_balance(unit.pk, today),
        "statement": _statement(unit.pk, as_of),
        "can_waive": bool(access.user_role_set(request.user) & access.WAIVER_REQUEST),
    }
    return render(request, "web/household.html", ctx)


def _late_fees_by_bill(unit_id: int, as_of: date) -> dict[int, int]:
    """Late fee not yet charged into a late-fee bill, in fen per bill id, as of ``as_of``.

    Charged late fees are bills of their own and show as such; counting them here too would
    double them.
    """
    owed = late_fees_for_units(unit_ids=[unit_id], as_of=as_of, uncharged_only=True)
    return {int(k): int(v) for k, v in owed.items()}


def _prepaid_balance(unit_id: int, as_of: date) -> int:
    """The household's prepaid balance in fen, general and earmarked together."""
    return int(prepaid_balance(unit_id=unit_id, as_of=as_of))


def _statement(unit_id: int, as_of: date) -> dict[str, Any]:
    """Billed, paid, waived, owed, late fee and prepaid balance as of ``as_of``, with lines."""
    st = household_statement(unit_id=unit_id, as_of=as_of)
    return {
        "billed_fen": st.billed_fen,
        "paid_fen": st.paid_fen,
        "waived_fen": st.waived_fen,
        "owed_fen": st.outstanding_fen,
        "late_fee_fen": st.late_fee_fen,
        "prepaid_fen": st.prepaid_fen,
        "lines": st.lines,
    }


# --- bills -----------------------------------------------------------------------------------


def _bill_list(request: HttpRequest) -> tuple[BillFilterForm, Any]:
    user = request.user
    communities = access.communities_for(user, access.BILLS)
    company_ids = access.company_ids_for(user, access.BILLS)
    fee_items = (
        FeeItem.objects.all()
        if company_ids is None
        else FeeItem.objects.filter(company_id__in=company_ids)
    )
    form = BillFilterForm(request.GET or None, communities=communities, fee_items=fee_items)
    data = form.cleaned_data if form.is_valid() else {}
    community = data.get("community")
    fee_item = data.get("fee_item")
    qs = selectors.bills_filtered(
        bills=access.bills_for(user, access.BILLS),
        today=_today(),
        community_id=community.pk if community else None,
        period=data.get("period"),
        fee_item_id=fee_item.pk if fee_item else None,
        status=data.get("status") or "",
    )
    return form, qs


@access.role_required(access.BILLS)
def bills(request: HttpRequest) -> HttpResponse:
    form, qs = _bill_list(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "web/bills.html",
        {
            "form": form,
            "page": page,
            "summary": selectors.bills_summary(qs),
            "query": query.urlencode(),
            "today": _today(),
        },
    )


@access.role_required(access.BILLS)
def bills_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered bill list as CSV (UTF-8 with BOM so Excel opens the Chinese)."""
    _form, qs = _bill_list(request)
    header = [
        _("小区"),
        _("房屋"),
        _("收费项目"),
        _("账期开始"),
        _("账期结束(不含)"),
        _("类型"),
        _("版本"),
        _("应收"),
        _("已收"),
        _("减免"),
        _("欠费"),
        _("到期日"),
    ]

    kinds = {k: str(label) for k, label in Bill.Kind.choices}
    fields = (
        "community__name",
        "unit__label",
        "fee_item__name",
        "period_start",
        "period_end",
        "kind",
        "revision",
        "amount_fen",
        "paid_fen",
        "waived_fen",
        "due_date",
    )

    def rows() -> Iterator[str]:
        yield "\ufeff" + ",".join(str(h) for h in header) + "\r\n"
        batch: list[str] = []
        for (
            community,
            label,
            item,
            start,
            end,
            kind,
            rev,
            amount,
            paid,
            waived,
            due,
        ) in qs.values_list(*fields).iterator(chunk_size=5000):
            batch.append(
                f"{_csv_cell(community)},{_csv_cell(label)},{_csv_cell(item)},{start},{end},"
                f"{kinds.get(kind, kind)},{rev},{format_yuan(amount)},{format_yuan(paid)},"
                f"{format_yuan(waived)},{format_yuan(amount - paid - waived)},{due}\r\n"
            )
            if len(batch) >= 5000:
                yield "".join(batch)
                batch = []
        yield "".join(batch)

    resp = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    resp["Content-Disposition"] = f'attachment; filename="bills-{_today():%Y%m%d}.csv"'
    return resp


def _csv_cell(text: str) -> str:
    # Quote what CSV needs quoted, and defuse spreadsheet formulas.
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not text[1:2].isdigit()):
        text = "'" + text
    if any(ch in text for ch in ',"\r\n'):
        text = '"' + text.replace('"', '""') + '"'
    return text


# --- waivers ---------------------------------------------------------------------------------


@access.role_required(access.WAIVER_REQUEST)
def waiver_new(request: HttpRequest, bill_pk: int) -> HttpResponse:
    bill = get_object_or_404(
        access.bills_for(request.user, access.WAIVER_REQUEST).select_related(
            "unit", "fee_item", "community"
        ),
        pk=bill_pk,
    )
    form = WaiverRequestForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            from wuye.billing.waivers import WaiverError, waiver_request

            d = form.cleaned_data
            try:
                waiver_request(
                    bill=bill,
                    target=d["target"],
                    amount_fen=d["amount"],
                    reason=d["reason"],
                    requested_by=request.user,
                )
            except WaiverError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("减免申请已提交, 等待审批"))
                return redirect("web:household", pk=bill.unit_id)
        status = 400
    late_fees = _late_fees_by_bill(bill.unit_id, _today()) or {}
    return render(
        request,
        "web/waiver_new.html",
        {"bill": bill, "form": form, "late_fee_fen": late_fees.get(bill.pk, 0)},
        status=status,
    )


@access.role_required(access.WAIVERS_READ)
def waivers(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "pending")
    qs = access.waivers_for(request.user, access.WAIVERS_READ).select_related(
        "bill__unit", "bill__fee_item", "bill__community", "requested_by", "approved_by"
    )
    if state in Waiver.State.values:
        qs = qs.filter(state=state)
    page = Paginator(qs.order_by("-id"), 50).get_page(request.GET.get("page"))
    decidable = set(
        access.waivers_for(request.user, access.WAIVER_DECIDE)
        .filter(pk__in=[w.pk for w in page], state=Waiver.State.PENDING)
        .values_list("pk", flat=True)
    )
    return render(
        request,
        "web/waivers.html",
        {
            "page": page,
            "state": state,
            "states": Waiver.State.choices,
            "decidable": decidable,
            "query": f"state={state}",
            "today": _today(),
        },
    )


@access.role_required(access.WAIVER_DECIDE)
def waiver_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    if request.method != "POST":
        return redirect("web:waivers")
    waiver = get_object_or_404(access.waivers_for(request.user, access.WAIVER_DECIDE), pk=pk)
    from wuye.billing.waivers import WaiverError, waiver_approve, waiver_reject

    form = WaiverDecisionForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        if decision == "approve":
            waiver_approve(waiver=waiver, approver=request.user, on_date=_today())
            messages.success(request, _("已批准减免 #%(n)s") % {"n": waiver.pk})
        else:
            waiver_reject(waiver=waiver, approver=request.user, reason=reason)
            messages.success(request, _("已驳回减免 #%(n)s") % {"n": waiver.pk})
    except WaiverError as exc:
        messages.error(request, _("减免 #%(n)s 未处理: %(why)s") % {"n": waiver.pk, "why": exc})
    return redirect(f"{reverse('web:waivers')}?state=pending")


# --- billing runs ----------------------------------------------------------------------------


@access.role_required(access.RUNS_READ)
def runs(request: HttpRequest) -> HttpResponse:
    user = request.user
    can_launch = bool(access.user_role_set(user) & access.RUNS_LAUNCH)
    form = None
    if can_launch:
        communities = access.communities_for(user, access.RUNS_LAUNCH)
        today = _today()
        form = BillingRunForm(
            communities=communities,
            initial={"period": f"{today:%Y-%m}", "issued_on": today, "cycle_months": 1},
        )
    run_list = access.runs_for(user, access.RUNS_READ).select_related("community")[:50]
    jobs = access.jobs_for(user, access.RUNS_READ).filter(kind="billing_run")[:20]
    return render(
        request,
        "web/runs.html",
        {"form": form, "runs": run_list, "jobs": jobs, "can_launch": can_launch},
    )


@access.role_required(access.RUNS_LAUNCH)
def run_launch(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("web:runs")
    user = request.user
    communities = access.communities_for(user, access.RUNS_LAUNCH)
    form = BillingRunForm(request.POST, communities=communities)
    if form.is_valid():
        d = form.cleaned_data
        try:
            job = billing_run_launch(
                community=d["community"],
                period_start=d["period"],
                cycle_months=d["cycle_months"],
                issued_on=d["issued_on"],
                user=user,
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                for err in errs:
                    form.add_error(field if field in form.fields else None, err)
        except BillingUnavailable:
            form.add_error(None, _("出账引擎尚未安装 (wuye.billing.tasks)"))
        else:
            messages.success(request, _("出账任务已提交"))
            return redirect("web:job", pk=job.pk)
    run_list = access.runs_for(user, access.RUNS_READ).select_related("community")[:50]
    jobs = access.jobs_for(user, access.RUNS_READ).filter(kind="billing_run")[:20]
    return render(
        request,
        "web/runs.html",
        {"form": form, "runs": run_list, "jobs": jobs, "can_launch": True},
        status=400,
    )


@access.role_required(access.RUNS_READ)
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(
        access.runs_for(request.user, access.RUNS_READ).select_related("community", "job"), pk=pk
    )
    summary = selectors.bills_summary(Bill.objects.filter(run=run))
    by_item = (
        Bill.objects.filter(run=run)
        .values("fee_item__name")
        .annotate(n=Count("id"))
        .order_by("fee_item__name")
    )
    return render(
        request, "web/run_detail.html", {"run": run, "summary": summary, "by_item": by_item}
    )


# --- jobs ------------------------------------------------------------------------------------


@access.role_required(access.JOBS)
def jobs(request: HttpRequest) -> HttpResponse:
    page = Paginator(access.jobs_for(request.user, access.JOBS), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "web/jobs.html", {"page": page})


@access.role_required(access.JOBS)
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(access.jobs_for(request.user, access.JOBS), pk=pk)
    run = None
    if job.kind == "billing_run":
        from wuye.billing.models import BillingRun

        run = BillingRun.objects.filter(job=job).first()
        if run is None and job.result.get("run_id"):
            run = BillingRun.objects.filter(pk=job.result["run_id"]).first()
    ctx = {
        "job": job,
        "run": run,
        "finished": job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED),
    }
    template = "web/_job_progress.html" if _is_htmx(request) else "web/job_detail.html"
    return render(request, template, ctx)


# --- merchants -------------------------------------------------------------------------------


@access.role_required(access.MERCHANTS)
def merchants(request: HttpRequest) -> HttpResponse:
    today = _today()
    warn_before = today + timedelta(days=DOCUMENT_WARN_DAYS)
    qs = (
        access.merchants_for(request.user, access.MERCHANTS)
        .select_related("company")
        .prefetch_related(
            "communities",
            "fee_items",
            Prefetch(
                "fee_rates", queryset=FeeRate.objects.order_by("card_type", "-effective_from")
            ),
            Prefetch("documents", queryset=MerchantDocument.objects.order_by("expires_on")),
        )
        .order_by("company_id", "channel", "merchant_no")
    )
    rows = []
    for m in qs:
        current: dict[str, FeeRate] = {}
        for r in m.fee_rates.all():
            if r.effective_from <= today and r.card_type not in current:
                current[r.card_type] = r
        upcoming = [r for r in m.fee_rates.all() if r.effective_from > today]
        rows.append(
            {
                "merchant": m,
                "rates": list(current.values()),
                "upcoming": upcoming,
                "documents": list(m.documents.all()),
            }
        )
    company_ids = access.company_ids_for(request.user, access.MERCHANTS)
    docs = MerchantDocument.objects.select_related("merchant", "community").filter(
        expires_on__isnull=False, expires_on__lte=warn_before
    )
    if company_ids is not None:
        docs = docs.filter(company_id__in=company_ids)
    return render(
        request,
        "web/merchants.html",
        {
            "rows": rows,
            "expiring": docs.order_by("expires_on"),
            "today": today,
            "warn_before": warn_before,
            "warn_days": DOCUMENT_WARN_DAYS,
        },
    )


__all__ = [
    "bills",
    "bills_export",
    "building_detail",
    "communities",
    "community_detail",
    "home",
    "household",
    "job_detail",
    "jobs",
    "merchants",
    "run_detail",
    "run_launch",
    "runs",
    "unit_search",
    "waiver_decide",
    "waiver_new",
    "waivers",
]
