"""Notice screens: the staff page that makes notices (one household now, or a community or
building as a background job) and the residents' pay page the notice's QR code opens."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from reportlab.graphics import renderSVG
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing

from wuye.accounts.selectors import AccessDenied
from wuye.core.models import Job
from wuye.core.money import format_yuan
from wuye.notices import services
from wuye.notices.forms import BatchForm, HouseholdForm
from wuye.notices.models import Notice
from wuye.notices.pdf import notices_pdf
from wuye.notices.selectors import notice_lines, notice_page
from wuye.web import access

NOTICES = frozenset(services.NOTICE_ROLES)


def _jobs(request: HttpRequest) -> QuerySet[Job]:
    return access.jobs_for(request.user, NOTICES).filter(kind="notices")


@access.role_required(NOTICES)
def index(request: HttpRequest) -> HttpResponse:
    """The staff page: a household's notice now, or a batch as a background job."""
    communities = access.communities_for(request.user, NOTICES)
    batch = BatchForm(communities=communities, initial={"as_of": timezone.localdate()})
    one = HouseholdForm(communities=communities, initial={"as_of": timezone.localdate()})
    if request.method == "POST":
        batch = BatchForm(request.POST, communities=communities)
        if batch.is_valid():
            d = batch.cleaned_data
            try:
                job = services.notices_batch_launch(
                    community=d["community"],
                    building=d["building"],
                    as_of=d["as_of"],
                    size=d["size"],
                    user=request.user,
                )
            except AccessDenied as exc:
                raise Http404 from exc
            except services.NoticeError as exc:
                batch.add_error(None, str(exc))
            else:
                messages.success(request, _("已提交, 正在生成通知单"))
                return redirect("web:job", pk=job.pk)
    return render(
        request, "notices/index.html", {"batch": batch, "one": one, "jobs": _jobs(request)[:20]}
    )


@access.role_required(NOTICES)
@require_POST
def household_pdf(request: HttpRequest) -> HttpResponse:
    """Make one household's notice now and return its PDF."""
    communities = access.communities_for(request.user, NOTICES)
    form = HouseholdForm(request.POST, communities=communities)
    if not form.is_valid():
        return render(
            request,
            "notices/index.html",
            {
                "batch": BatchForm(
                    communities=communities, initial={"as_of": timezone.localdate()}
                ),
                "one": form,
                "jobs": _jobs(request)[:20],
            },
            status=400,
        )
    d = form.cleaned_data
    try:
        notice = services.notice_create(
            unit=d["unit"], as_of=d["as_of"], user=request.user, now=timezone.now()
        )
    except services.NoticeError as exc:
        form.add_error(None, str(exc))
        return render(
            request,
            "notices/index.html",
            {
                "batch": BatchForm(
                    communities=communities, initial={"as_of": timezone.localdate()}
                ),
                "one": form,
                "jobs": _jobs(request)[:20],
            },
            status=400,
        )
    pdf = notices_pdf(
        [notice_page(notice, pay_url=services.notice_pay_url(notice))], size=d["size"]
    )
    resp = HttpResponse(pdf, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="notice-{notice.pk}.pdf"'
    return resp


@access.role_required(NOTICES)
def job_pdf(request: HttpRequest, pk: int) -> FileResponse:
    """Download a batch's PDF (only a job of a community the user may see)."""
    job = get_object_or_404(_jobs(request), pk=pk)
    if not job.result_file:
        raise Http404
    return FileResponse(
        job.result_file.open("rb"), content_type="application/pdf", filename=f"notices-{job.pk}.pdf"
    )


# --- the residents' pay page (no login: the signed token is the key) -------------------------


def _notice(token: str) -> Notice:
    notice = services.notice_for_token(token)
    if notice is None:
        raise Http404
    return notice


def qr_svg(text: str, *, size: int = 220) -> str:
    """Return an inline SVG of a QR code for ``text``."""
    widget = QrCodeWidget(text, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    svg = renderSVG.drawToString(drawing)
    return svg[svg.index("<svg") :]


def _context(notice: Notice) -> dict:
    return {
        "notice": notice,
        "token": services.notice_token(notice),
        "household": notice.unit.label,
        "community": notice.community.name,
        "lines": notice_lines(notice),
        "status": services.notice_status(notice),
        "channels": services.pay_channels(),
    }


@never_cache
def pay(request: HttpRequest, token: str) -> HttpResponse:
    """The page a notice's QR opens: the bills, the total, WeChat Pay or Alipay."""
    notice = _notice(token)
    return render(request, "notices/pay.html", _context(notice))


@never_cache
@require_POST
def pay_start(request: HttpRequest, token: str) -> HttpResponse:
    """Create (or resume) the order with the chosen channel and show its QR code."""
    notice = _notice(token)
    ctx = _context(notice)
    try:
        started = services.notice_pay_start(
            notice=notice, channel=request.POST.get("channel", ""), now=timezone.now()
        )
    except services.NoticeAlreadyPaid:
        return redirect("notices:pay", token=token)
    except services.NoticeError as exc:
        ctx["error"] = str(exc)
        return render(request, "notices/pay.html", ctx, status=409)
    ctx.update(
        order=started.order,
        amount=format_yuan(started.order.amount_fen),
        channel=started.order.channel,
        # The channel's Chinese name, in the page's language (merchants' catalogue has it).
        channel_name=_(ctx["channels"][started.order.channel].name),
        code_url=started.code.code_url,
        qr=qr_svg(started.code.code_url),
    )
    return render(request, "notices/pay_qr.html", ctx)


@never_cache
def pay_status(request: HttpRequest, token: str) -> JsonResponse:
    """What the pay page polls: ``{"paid": true, ...}`` once the notification has posted."""
    notice = _notice(token)
    return JsonResponse(services.notice_status(notice))
