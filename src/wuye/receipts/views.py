"""Receipt screens: list and detail, PDF and ESC/POS prints, void request and approval, and
the public verification page that the QR code opens (no login, no personal data).

As elsewhere, a receipt of a community the user may not see is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from wuye.accounts.models import Role
from wuye.receipts import services
from wuye.receipts.models import Receipt
from wuye.receipts.selectors import (
    receipt_content,
    receipt_printers,
    receipt_verification,
    receipt_verify_url,
    receipts_for,
)
from wuye.web import access

RECEIPTS_READ = access.ALL_ROLES
# Printing counts as issuing a copy (reprints are numbered), so auditors read but do not print.
RECEIPTS_PRINT = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.CASHIER})
VOID_REQUEST = services.VOID_REQUEST_ROLES
VOID_APPROVE = services.VOID_APPROVE_ROLES

_PDF_FORMATS = {"roll80", "a5"}
_PAPERS = {"58", "80"}


@access.role_required(RECEIPTS_READ)
def receipt_list(request: HttpRequest) -> HttpResponse:
    qs = receipts_for(request.user, RECEIPTS_READ)
    state = request.GET.get("state", "")
    if state in Receipt.State.values:
        qs = qs.filter(state=state)
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(number__icontains=q) | Q(household_label__icontains=q) | Q(reference=q))
    page = Paginator(qs.order_by("-issued_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "receipts/list.html",
        {
            "page": page,
            "state": state,
            "states": Receipt.State.choices,
            "q": q,
            "query": f"state={state}&q={q}",
        },
    )


@access.role_required(RECEIPTS_READ)
def receipt_detail(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = get_object_or_404(
        receipts_for(request.user, RECEIPTS_READ).select_related(
            "void_requested_by", "void_approved_by"
        ),
        pk=pk,
    )
    roles = access.user_role_set(request.user)
    can_approve = (
        receipt.state == Receipt.State.VOID_PENDING
        and receipts_for(request.user, VOID_APPROVE).filter(pk=pk).exists()
        and receipt.void_requested_by_id != request.user.pk
    )
    return render(
        request,
        "receipts/detail.html",
        {
            "receipt": receipt,
            "content": receipt_content(receipt),
            "verify_url": receipt_verify_url(receipt),
            "can_print": bool(roles & RECEIPTS_PRINT),
            "can_request_void": receipt.state == Receipt.State.ISSUED
            and receipts_for(request.user, VOID_REQUEST).filter(pk=pk).exists(),
            "can_approve": can_approve,
            "printers": sorted(receipt_printers()),
        },
    )


def _print(request: HttpRequest, pk: int, output: str) -> tuple[Receipt, bytes]:
    receipt = get_object_or_404(receipts_for(request.user, RECEIPTS_PRINT), pk=pk)
    return services.receipt_print(receipt_id=receipt.pk, output=output, now=timezone.now())


@never_cache
@access.role_required(RECEIPTS_PRINT)
def receipt_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    fmt = request.GET.get("format", "roll80")
    if fmt not in _PDF_FORMATS:
        raise Http404(fmt)
    receipt, data = _print(request, pk, fmt)
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{receipt.number}-{fmt}.pdf"'
    return response


@never_cache
@access.role_required(RECEIPTS_PRINT)
def receipt_escpos(request: HttpRequest, pk: int) -> HttpResponse:
    paper = request.GET.get("paper", "80")
    if paper not in _PAPERS:
        raise Http404(paper)
    receipt, data = _print(request, pk, f"escpos{paper}")
    response = HttpResponse(data, content_type="application/vnd.escpos")
    response["Content-Disposition"] = f'attachment; filename="{receipt.number}-{paper}mm.bin"'
    return response


@require_POST
@access.role_required(RECEIPTS_PRINT)
def receipt_print_network(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = get_object_or_404(receipts_for(request.user, RECEIPTS_PRINT), pk=pk)
    paper = request.POST.get("paper", "80")
    name = request.POST.get("printer", "")
    try:
        services.receipt_print_to(
            receipt_id=receipt.pk,
            printer_name=name,
            paper=paper if paper in _PAPERS else "80",
            now=timezone.now(),
        )
        messages.success(request, _("已发送到打印机 %(p)s") % {"p": name})
    except services.ReceiptPrinterUnknown:
        messages.error(request, _("未配置该打印机"))
    except services.ReceiptPrinterFailed:
        messages.error(request, _("打印机 %(p)s 无法连接，未打印") % {"p": name})
    return redirect("receipts:detail", pk=receipt.pk)


@require_POST
@access.role_required(VOID_REQUEST)
def void_request(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = get_object_or_404(receipts_for(request.user, VOID_REQUEST), pk=pk)
    try:
        services.receipt_void_request(
            receipt_id=receipt.pk,
            user=request.user,
            reason=request.POST.get("reason", ""),
            now=timezone.now(),
        )
        messages.success(request, _("已提交作废申请，待财务审批"))
    except services.ReceiptVoidError as exc:
        messages.error(request, _("未能申请作废: %(why)s") % {"why": _void_error(exc)})
    return redirect("receipts:detail", pk=receipt.pk)


@require_POST
@access.role_required(VOID_APPROVE)
def void_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    receipt = get_object_or_404(receipts_for(request.user, VOID_APPROVE), pk=pk)
    try:
        if decision == "approve":
            services.receipt_void_approve(
                receipt_id=receipt.pk, user=request.user, now=timezone.now()
            )
            messages.success(request, _("收据 %(n)s 已作废") % {"n": receipt.number})
        else:
            services.receipt_void_reject(
                receipt_id=receipt.pk,
                user=request.user,
                now=timezone.now(),
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, _("已驳回收据 %(n)s 的作废申请") % {"n": receipt.number})
    except services.ReceiptVoidError as exc:
        messages.error(request, _("未处理: %(why)s") % {"why": _void_error(exc)})
    next_url = request.POST.get("next") or ""
    if next_url == "voids":
        return redirect("receipts:voids")
    return redirect("receipts:detail", pk=receipt.pk)


@access.role_required(VOID_APPROVE)
def void_list(request: HttpRequest) -> HttpResponse:
    qs = receipts_for(request.user, VOID_APPROVE).filter(state=Receipt.State.VOID_PENDING)
    page = Paginator(
        qs.select_related("void_requested_by").order_by("void_requested_at", "id"), 50
    ).get_page(request.GET.get("page"))
    return render(request, "receipts/voids.html", {"page": page, "query": ""})


def _void_error(exc: services.ReceiptVoidError) -> str:
    messages_by_type: dict[type, str] = {
        services.ReceiptVoidReasonMissing: _("请填写作废原因"),
        services.ReceiptNotIssued: _("只有有效的收据可以申请作废"),
        services.ReceiptVoidNotPending: _("该收据没有待审批的作废申请"),
        services.ReceiptVoidSelfApproval: _("不能审批自己的申请"),
        services.ReceiptVoidNotAllowed: _("没有权限"),
    }
    return messages_by_type.get(type(exc), str(exc))


@never_cache
def verify(request: HttpRequest, token: str) -> HttpResponse:
    """Public: anyone with the QR code may check that the receipt exists and is valid."""
    verification = receipt_verification(token=token)
    status = 200 if verification is not None else 404
    response = render(request, "receipts/verify.html", {"v": verification}, status=status)
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"
    return response
