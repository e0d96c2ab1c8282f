"""The cashier's counter (收费台): find a household, take payment, refunds, shifts and reports.

Each view checks the role, reads through scoped querysets (an id the user may not see is a
404), makes one domain call and turns its exceptions into a message on the same page.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied, user_community_filter
from wuye.counter import selectors, services
from wuye.counter.forms import (
    CashMovementForm,
    DayReportForm,
    PayForm,
    RefundForm,
    ShiftCloseForm,
    ShiftOpenForm,
    new_idempotency_key,
)
from wuye.counter.models import Shift
from wuye.counter.xlsx import day_report_xlsx
from wuye.estates.models import Unit
from wuye.web import access
from wuye.web import selectors as web_selectors

COUNTER = frozenset({Role.CASHIER, Role.FINANCE, Role.ADMIN})
REFUND = frozenset({Role.FINANCE})
REPORTS = frozenset({Role.CASHIER, Role.FINANCE, Role.ADMIN, Role.MANAGER, Role.AUDITOR})
# Who sees every shift of their communities (a cashier sees only their own).
ALL_SHIFTS = frozenset({Role.FINANCE, Role.ADMIN, Role.MANAGER, Role.AUDITOR})


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _units(request: HttpRequest) -> QuerySet[Unit]:
    return access.units_for(request.user, COUNTER).select_related("community", "building")


def _shifts(request: HttpRequest) -> QuerySet[Shift]:
    """Shifts the user may read: all of their communities for finance and up, else their own."""
    user: Any = request.user
    qs = Shift.objects.select_related("cashier", "community", "community__company")
    if access.user_role_set(user) & ALL_SHIFTS:
        return qs.filter(user_community_filter(user, roles=set(ALL_SHIFTS)) | Q(cashier=user))
    return qs.filter(cashier=user)


def _now() -> Any:
    return timezone.now()


# --- the counter page ------------------------------------------------------------------------


def _bar(request: HttpRequest) -> dict[str, Any]:
    """The shift bar: the user's open shift and the cash its drawer should hold now."""
    shift = selectors.shift_current(cashier=request.user)
    drawer = selectors.shift_expected_cash(shift=shift) if shift is not None else None
    return {"shift": shift, "drawer_fen": drawer}


@access.role_required(COUNTER)
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "counter/index.html", {**_bar(request), "q": ""})


SEARCH_ROWS = 20  # households on the search's page


@access.role_required(COUNTER)
def search(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "")
    page = selectors.household_search_page(units=_units(request), text=text, limit=SEARCH_ROWS)
    units = page.units
    owners = web_selectors.primary_residents([u.pk for u in units])
    ctx: dict[str, Any] = {
        "q": text,
        "rows": [(u, owners.get(u.pk)) for u in units],
        "more": page.more,  # more households than the page shows: "type more"
    }
    if _is_htmx(request):
        return render(request, "counter/_results.html", ctx)
    if len(units) == 1 and not page.more:  # Enter on an exact room number or phone: go there
        return redirect("counter:household", pk=units[0].pk)
    return render(request, "counter/index.html", {**ctx, **_bar(request)})


def _household_context(
    request: HttpRequest, unit: Unit, form: PayForm | None = None
) -> dict[str, Any]:
    today = timezone.localdate()
    panel = selectors.household_panel(unit=unit, as_of=today)
    if form is None:
        form = PayForm(bill_ids=[x.bill_id for x in panel.bills if x.due_fen > 0])
    ticked = {int(b) for b in (form["bills"].value() or [])}
    return {
        "unit": unit,
        "panel": panel,
        "form": form,
        "ticked": ticked,
        "today": today,
        **_bar(request),
        "cards": selectors.household_cards(unit_id=unit.pk),
        "can_refund": bool(access.user_role_set(request.user) & REFUND),
    }


@access.role_required(COUNTER)
def household(request: HttpRequest, pk: int) -> HttpResponse:
    unit = get_object_or_404(_units(request), pk=pk)
    return render(request, "counter/household.html", _household_context(request, unit))


@require_POST
@access.role_required(COUNTER)
def pay(request: HttpRequest, pk: int) -> HttpResponse:
    unit = get_object_or_404(_units(request), pk=pk)
    shift = selectors.shift_current(cashier=request.user)
    done = selectors.payment_for_key(
        idempotency_key=request.POST.get("idempotency_key", ""), unit_id=unit.pk
    )
    if done is not None:  # the same form again (double click, reload): show what was taken
        result = services.CheckoutResult(
            order=done.order, payment=done, change_fen=int(done.change_fen or 0)
        )
        return _paid(request, unit, result)
    panel = selectors.household_panel(unit=unit, as_of=timezone.localdate())
    form = PayForm(request.POST, bill_ids=[x.bill_id for x in panel.bills])
    if shift is None:
        messages.error(request, _("请先开班再收款"))
        return redirect("counter:shift_open")
    if form.is_valid() and form.cleaned_data["channel"] in services.external_channels():
        data = form.cleaned_data
        try:
            order = services.counter_order_start(
                shift=shift,
                unit=unit,
                bill_ids=list(data["bills"]),
                amount_fen=data["amount"],
                channel=data["channel"],
                idempotency_key=data["idempotency_key"],
                now=_now(),
            )
        except (ValueError, AccessDenied) as exc:
            form.add_error(None, _payment_error_text(exc))
        else:
            url = services.external_channels()[data["channel"]].counter_url
            return redirect(url, order.pk)
    elif form.is_valid():
        data = form.cleaned_data
        try:
            result = services.counter_checkout(
                shift=shift,
                unit=unit,
                bill_ids=list(data["bills"]),
                amount_fen=data["amount"],
                channel=data["channel"],
                idempotency_key=data["idempotency_key"],
                tendered_fen=data["tendered"],
                card_no=data["card_no"],
                password=data["password"],
                now=_now(),
            )
        except (ValueError, AccessDenied) as exc:  # payments errors are ValueErrors to show
            form.add_error(None, _payment_error_text(exc))
            # The key is spent on a cancelled order: the next try needs a new one.
            data = request.POST.copy()
            data["idempotency_key"] = new_idempotency_key()
            form.data = data
        else:
            return _paid(request, unit, result)
    ctx = _household_context(request, unit, form)
    return render(request, "counter/household.html", ctx, status=422)


@access.role_required(COUNTER)
def order(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a channel's own page (card terminal, QR) sends the cashier once the order settles:
    the paid page with its receipt, or the order's state while it is still open."""
    from wuye.payments.models import Order, Payment

    found = get_object_or_404(Order, pk=pk, unit__in=_units(request))
    payment = Payment.objects.filter(order=found).order_by("pk").first()
    if payment is not None:
        result = services.CheckoutResult(order=found, payment=payment, change_fen=0)
        return _paid(request, found.unit, result)
    ctx = {"order": found, "unit": found.unit, **_bar(request)}
    return render(request, "counter/order.html", ctx)


def _paid(request: HttpRequest, unit: Unit, result: services.CheckoutResult) -> HttpResponse:
    ctx = {
        "unit": unit,
        "result": result,
        "payment": result.payment,
        "receipt": receipt_links(result.payment),
        **_bar(request),
    }
    return render(request, "counter/paid.html", ctx)


def _payment_error_text(exc: Exception) -> str:
    """The message a cashier reads for a refused payment."""
    bill_id = getattr(exc, "bill_id", None)
    if bill_id is not None:
        return _("账单 %(bill)s 已在另一笔待支付订单中") % {"bill": bill_id}
    return str(exc) or exc.__class__.__name__


def receipt_links(payment: Any) -> dict[str, str] | None:
    """The receipt of ``payment``: its number and the URLs of its PDF and ESC/POS print."""
    number: str = getattr(payment, "receipt_number", "") or ""
    if not number:
        return None
    try:
        from wuye.receipts.models import Receipt
    except ImportError:
        return None
    receipt = Receipt.objects.filter(community_id=payment.community_id, number=number).first()
    if receipt is None:
        return None
    links = {"number": receipt.number}
    for key, name in (("pdf", "receipts:pdf"), ("escpos", "receipts:escpos")):
        try:
            links[key] = reverse(name, args=[receipt.pk])
        except NoReverseMatch:
            continue
    return links


@access.role_required(REFUND)
def refund(request: HttpRequest, pk: int) -> HttpResponse:
    payment = selectors.payment_for(
        pk=pk, units=access.units_for(request.user, REFUND).values("pk")
    )
    if payment is None:
        raise Http404
    if payment.channel == "card":  # voided or refunded on the terminal: the card page does it
        return redirect("card:refund", pk=payment.pk)
    open_shifts = Shift.objects.filter(
        community_id=payment.community_id, state=Shift.State.OPEN
    ).select_related("cashier")
    form = RefundForm(
        request.POST or None, shifts=open_shifts, cash=payment.channel == services.CASH_CHANNEL
    )
    if request.method == "POST" and form.is_valid():
        try:
            done = services.counter_refund(
                payment=payment,
                amount_fen=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                shift=form.cleaned_data["shift"],
                user=request.user,
                now=_now(),
            )
        except (ValueError, AccessDenied) as exc:
            form.add_error(None, str(exc))
        else:
            if getattr(done, "state", "") == "pending":
                messages.success(request, _("退款已提交, 等待支付渠道确认"))
            else:
                messages.success(request, _("已退款"))
            return redirect("counter:household", pk=payment.unit_id)
    return render(
        request,
        "counter/refund.html",
        {
            "payment": payment,
            "form": form,
            "unit": payment.unit,
            "allocations": selectors.payment_allocation_rows(payment=payment),
        },
        status=422 if form.errors else 200,
    )


# --- shifts ----------------------------------------------------------------------------------


@access.role_required(COUNTER)
def shift_open(request: HttpRequest) -> HttpResponse:
    current = selectors.shift_current(cashier=request.user)
    if current is not None:
        return redirect("counter:shift", pk=current.pk)
    communities = access.communities_for(request.user, COUNTER)
    form = ShiftOpenForm(request.POST or None, communities=communities)
    if request.method == "POST" and form.is_valid():
        try:
            services.shift_open(
                cashier=request.user,
                community=form.cleaned_data["community"],
                counter_name=form.cleaned_data["counter_name"],
                opening_float_fen=form.cleaned_data["opening_float"] or 0,
                now=_now(),
            )
        except (services.ShiftError, AccessDenied) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("已开班"))
            return redirect("counter:index")
    return render(request, "counter/shift_open.html", {"form": form})


@access.role_required(REPORTS)
def shift_detail(request: HttpRequest, pk: int) -> HttpResponse:
    shift = get_object_or_404(_shifts(request), pk=pk)
    own_open = shift.state == Shift.State.OPEN and shift.cashier_id == request.user.pk
    close_form = ShiftCloseForm() if own_open else None
    return render(request, "counter/shift.html", _shift_context(shift, close_form))


def _shift_context(shift: Shift, close_form: ShiftCloseForm | None) -> dict[str, Any]:
    report = selectors.shift_report(shift=shift)
    return {
        "shift": shift,
        "report": report,
        "problems": report.check(),
        "close_form": close_form,
        "movement_form": CashMovementForm() if shift.state == Shift.State.OPEN else None,
        "expected_now": selectors.shift_expected_cash(shift=shift),
    }


@require_POST
@access.role_required(COUNTER)
def shift_close(request: HttpRequest, pk: int) -> HttpResponse:
    shift = get_object_or_404(_shifts(request), pk=pk)
    if shift.cashier_id != request.user.pk:
        raise PermissionDenied
    form = ShiftCloseForm(request.POST)
    if form.is_valid():
        try:
            services.shift_close(
                shift=shift,
                counted_cash_fen=form.cleaned_data["counted"],
                note=form.cleaned_data["note"],
                now=_now(),
            )
        except services.ShiftDifferenceNeedsNote:
            form.add_error("note", _("实点现金与应有现金不符, 请填写差异说明"))
        except services.ShiftError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("已交班"))
            return redirect("counter:shift", pk=shift.pk)
    return render(request, "counter/shift.html", _shift_context(shift, form), status=422)


@require_POST
@access.role_required(COUNTER)
def movement(request: HttpRequest, pk: int) -> HttpResponse:
    shift = get_object_or_404(_shifts(request), pk=pk)
    form = CashMovementForm(request.POST)
    if form.is_valid():
        try:
            services.cash_movement_record(
                shift=shift,
                kind=form.cleaned_data["kind"],
                amount_fen=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                user=request.user,
                now=_now(),
            )
        except (services.ShiftError, AccessDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("已记录现金存取"))
    else:
        messages.error(request, "; ".join(str(e) for errs in form.errors.values() for e in errs))
    return redirect("counter:shift", pk=shift.pk)


@access.role_required(REPORTS)
def shifts(request: HttpRequest) -> HttpResponse:
    rows = list(_shifts(request).order_by("-opened_at")[:100])
    return render(request, "counter/shifts.html", {"shifts": rows})


# --- end of day ------------------------------------------------------------------------------


def _day_report(request: HttpRequest) -> tuple[DayReportForm, Any]:
    communities = access.communities_for(request.user, REPORTS)
    today = timezone.localdate()
    form = DayReportForm(request.GET or None, communities=communities, today=today)
    community = communities.first()
    day: date = today
    if form.is_valid():
        community = form.cleaned_data["community"]
        day = form.cleaned_data["day"]
    if community is None:
        raise Http404
    return form, selectors.day_report(community=community, day=day)


@access.role_required(REPORTS)
def day(request: HttpRequest) -> HttpResponse:
    form, report = _day_report(request)
    return render(
        request, "counter/day.html", {"form": form, "report": report, "problems": report.check()}
    )


@access.role_required(REPORTS)
def day_xlsx(request: HttpRequest) -> HttpResponse:
    _form, report = _day_report(request)
    data = day_report_xlsx(report)
    response = HttpResponse(
        data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    name = f"day-report-{report.community.code}-{report.day:%Y%m%d}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
