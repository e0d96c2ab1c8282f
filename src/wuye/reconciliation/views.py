"""Finance pages of reconciliation: the day at a glance, uploads, running a day, the exception
queue, an exception with its history and actions, undo of automatic resolutions, reports.

Finance and admin act; manager and auditor read. Every object comes from the companies the
user holds one of those roles in, so an id of another company is a 404. Views translate
input, make one domain call (``resolution``, ``rules``, ``importers.file_import``) and turn
its exceptions into messages.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Sum, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from wuye.accounts.models import Membership, Role, User
from wuye.accounts.selectors import AccessDenied
from wuye.core.models import Job
from wuye.estates.models import Community, Company, Unit
from wuye.ledger.models import JournalEntry
from wuye.reconciliation.clearing import clearing_in_transit
from wuye.reconciliation.forms import (
    CHASING,
    FOLLOW_UP_DUE,
    MAX_UPLOAD_BYTES,
    ActionForm,
    AssignForm,
    QueueFilter,
    RunForm,
    UndoForm,
    UploadForm,
)
from wuye.reconciliation.models import (
    Category,
    Channel,
    ReconException,
    ReconExceptionEntry,
    ReconRun,
    SourceFile,
)
from wuye.reconciliation.report import (
    FORMATS,
    ReportFormatError,
    day_report,
)
from wuye.reconciliation.report import (
    render as render_report,
)
from wuye.reconciliation.resolution import (
    CHASE_DAYS,
    Action,
    ResolutionError,
    actions_for,
    exception_assign,
    exception_note,
    exception_resolve,
    exception_undo,
)
from wuye.reconciliation.rules import ARRIVAL_CATEGORIES, ARRIVED, arrival_undo, auto_arrivals
from wuye.web import access

READ = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})
ACT = frozenset({Role.ADMIN, Role.FINANCE})
TRANSIT_DAYS = 31
"""How many settlement dates back the money-in-transit table and chart look."""

_CONTENT_TYPES = {
    "json": "application/json; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}


def _companies(user: Any, roles: frozenset[str]) -> QuerySet[Company]:
    ids = access.company_ids_for(user, roles)
    qs = Company.objects.order_by("pk")
    return qs if ids is None else qs.filter(pk__in=ids)


def _company(request: HttpRequest, roles: frozenset[str] = READ) -> Company:
    """The company the page is about: ``?company=`` among the user's, else the first."""
    qs = _companies(request.user, roles)
    wanted = request.GET.get("company") or request.POST.get("company")
    if wanted:
        if not str(wanted).isdigit():
            raise Http404
        return get_object_or_404(qs, pk=int(wanted))
    company = qs.first()
    if company is None:
        raise PermissionDenied
    return company


def _exceptions_for(user: Any, roles: frozenset[str]) -> QuerySet[ReconException]:
    ids = access.company_ids_for(user, roles)
    qs = ReconException.objects.all()
    return qs if ids is None else qs.filter(company_id__in=ids)


def _can_act(user: Any, company_id: int) -> bool:
    return _companies(user, ACT).filter(pk=company_id).exists()


def _parse_day(text: str | None) -> date | None:
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _default_day(company: Company) -> date:
    latest = (
        ReconRun.objects.filter(company=company)
        .order_by("-settle_date")
        .values_list("settle_date", flat=True)
    ).first()
    return latest or timezone.localdate() - timedelta(days=1)


def _day_url(company: Company, day: date, **extra: Any) -> str:
    query = {"company": company.pk, "date": f"{day:%Y-%m-%d}", **extra}
    return f"{reverse('reconciliation:day')}?{urlencode(query)}"


# --- the day -------------------------------------------------------------------------------


@never_cache
@access.role_required(READ)
def day(request: HttpRequest) -> HttpResponse:
    company = _company(request)
    settle_date = _parse_day(request.GET.get("date")) or _default_day(company)
    report = day_report(company=company, settle_date=settle_date)
    transit = clearing_in_transit(
        company_id=company.pk,
        date_from=settle_date - timedelta(days=TRANSIT_DAYS - 1),
        date_to=settle_date,
    )
    channel_names = dict(Channel.choices)
    chart = {
        "labels": [str(channel_names.get(c.channel, c.channel)) for c in report.channels],
        "matched": [c.matched_amount_fen / 100 for c in report.channels],
        "exceptions": [
            sum(abs(e.amount_fen) for e in c.exceptions if e.state == ReconException.State.OPEN)
            / 100
            for c in report.channels
        ],
        "transit": [c.in_transit_fen / 100 for c in report.channels],
    }
    categories = dict(Category.choices)
    states = dict(ReconException.State.choices)

    def name(code: str) -> str:
        return str(channel_names.get(code, code))

    channel_rows = [{**vars(c), "name": name(c.channel)} for c in report.channels]
    exception_rows = [
        {
            **vars(e),
            "channel_name": name(e.channel),
            "category_name": str(categories.get(e.category, e.category)),
            "state_name": str(states.get(e.state, e.state)),
        }
        for e in report.exceptions
    ]
    transit_rows = [
        {
            "settle_date": t.settle_date,
            "channel": t.channel,
            "name": name(t.channel),
            "balance_fen": t.balance_fen,
        }
        for t in transit
    ]
    arrivals = auto_arrivals(company_id=company.pk, settle_date=settle_date)
    reversed_ids = set(
        JournalEntry.objects.filter(reverses_id__in=[e.pk for e in arrivals]).values_list(
            "reverses_id", flat=True
        )
    )
    job = None
    job_id = request.GET.get("job")
    if job_id and job_id.isdigit():
        job = access.jobs_for(request.user, access.JOBS).filter(pk=int(job_id)).first()
    can_act = _can_act(request.user, company.pk)
    return render(
        request,
        "reconciliation/day.html",
        {
            "company": company,
            "companies": _companies(request.user, READ),
            "settle_date": settle_date,
            "prev_date": settle_date - timedelta(days=1),
            "next_date": settle_date + timedelta(days=1),
            "report": report,
            "channel_names": channel_names,
            "transit_rows": transit_rows,
            "channel_rows": channel_rows,
            "exception_rows": exception_rows,
            "reversed_ids": reversed_ids,
            "transit_total": sum(t.balance_fen for t in transit),
            "chart": chart,
            "arrivals": arrivals,
            "files": SourceFile.objects.filter(company=company).select_related("imported_by")[:10],
            "can_act": can_act,
            "upload_form": UploadForm() if can_act else None,
            "run_form": RunForm(initial={"date": settle_date}) if can_act else None,
            "job": job,
            "job_finished": job is not None
            and job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED),
            "formats": FORMATS,
            "follow_ups_due": ReconException.objects.filter(
                company=company,
                state=ReconException.State.OPEN,
                follow_up_on__lte=timezone.localdate(),
            ).count(),
        },
    )


@require_POST
@access.role_required(ACT)
def upload(request: HttpRequest) -> HttpResponse:
    from wuye.reconciliation.importers import FileRejected, file_import

    company = _company(request, ACT)
    settle_date = _parse_day(request.POST.get("date")) or _default_day(company)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_day_url(company, settle_date))
    for upload in form.cleaned_data["uploads"]:
        if upload.size > MAX_UPLOAD_BYTES:
            messages.error(
                request,
                _("%(name)s: 文件过大 (%(mb)s MB)")
                % {"name": upload.name, "mb": upload.size // (1024 * 1024)},
            )
            continue
        try:
            result = file_import(
                upload.read(),
                company=company,
                kind=form.cleaned_data["kind"] or None,
                user=request.user,
                name=upload.name,
                account_no=form.cleaned_data["account_no"],
            )
        except FileRejected as exc:
            messages.error(request, _("导入失败, 未导入任何数据: %(e)s") % {"e": exc})
            continue
        source = result.source
        if result.created:
            messages.success(
                request,
                _("%(name)s: 已导入 %(rows)s 行 (%(kind)s)")
                % {
                    "name": upload.name,
                    "rows": source.row_count,
                    "kind": source.get_kind_display(),
                },
            )
        else:
            messages.info(
                request,
                _("%(name)s: 该文件已于 %(at)s 导入过, 未重复导入")
                % {
                    "name": upload.name,
                    "at": timezone.localtime(source.imported_at).strftime("%Y-%m-%d %H:%M"),
                },
            )
    return redirect(_day_url(company, settle_date))


@require_POST
@access.role_required(ACT)
def run(request: HttpRequest) -> HttpResponse:
    from wuye.reconciliation.rules import reconcile_day_launch

    company = _company(request, ACT)
    form = RunForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(_day_url(company, _default_day(company)))
    settle_date = form.cleaned_data["date"]
    job = reconcile_day_launch(
        company=company,
        settle_date=settle_date,
        channel=form.cleaned_data["channel"] or None,
        user=request.user,
    )
    return redirect(_day_url(company, settle_date, job=job.pk))


@never_cache
@access.role_required(READ)
def report(request: HttpRequest, ymd: str, fmt: str) -> HttpResponse:
    company = _company(request)
    settle_date = _parse_day(ymd)
    if settle_date is None or fmt not in FORMATS:
        raise Http404
    try:
        data = render_report(day_report(company=company, settle_date=settle_date), fmt)
    except ReportFormatError as exc:  # pragma: no cover - guarded above
        raise Http404 from exc
    response = HttpResponse(data, content_type=_CONTENT_TYPES[fmt])
    disposition = "inline" if fmt in ("json", "pdf") else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="recon-{settle_date:%Y%m%d}.{fmt}"'
    return response


@require_POST
@access.role_required(ACT)
def arrival_undo_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    ids = access.company_ids_for(request.user, ACT)
    entries = JournalEntry.objects.filter(kind=JournalEntry.Kind.ARRIVAL)
    if ids is not None:
        entries = entries.filter(company_id__in=ids)
    entry = get_object_or_404(entries, pk=entry_id)
    company = Company.objects.get(pk=entry.company_id)
    back = _parse_day(request.POST.get("date")) or _default_day(company)
    form = UndoForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请填写撤销原因"))
        return redirect(_day_url(company, back))
    try:
        arrival_undo(
            entry=entry, user=request.user, now=timezone.now(), reason=form.cleaned_data["reason"]
        )
    except (ResolutionError, AccessDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已撤销到账凭证 #%(id)s") % {"id": entry.pk})
    return redirect(_day_url(company, back))


# --- the queue -----------------------------------------------------------------------------


def _owners(company_ids: list[int] | None) -> list[tuple[str, str]]:
    members = Membership.objects.filter(role__in=list(ACT)).select_related("user")
    if company_ids is not None:
        members = members.filter(company_id__in=company_ids)
    seen: dict[int, str] = {}
    for m in members.order_by("user__username"):
        seen.setdefault(m.user_id, m.user.display_name or m.user.username)
    return [(str(pk), name) for pk, name in seen.items()]


@never_cache
@access.role_required(READ)
def queue(request: HttpRequest) -> HttpResponse:
    ids = access.company_ids_for(request.user, READ)
    form = QueueFilter(request.GET or None, owners=_owners(ids))
    qs = _exceptions_for(request.user, READ).select_related("owner", "company", "chased_by")
    if request.GET.get("company", "").isdigit():
        qs = qs.filter(company_id=int(request.GET["company"]))
    today = timezone.localdate()
    open_ = ReconException.State.OPEN
    if not request.GET:
        qs = qs.filter(state=open_)  # the working queue by default
    elif form.is_valid():
        f = form.cleaned_data
        if f["channel"]:
            qs = qs.filter(channel=f["channel"])
        if f["category"]:
            qs = qs.filter(category=f["category"])
        if f["state"] == CHASING:
            qs = qs.filter(state=open_, chasing_since__isnull=False)
        elif f["state"] == FOLLOW_UP_DUE:
            qs = qs.filter(state=open_, follow_up_on__lte=today)
        elif f["state"]:
            qs = qs.filter(state=f["state"])
        if f["chaser"] == "me":
            qs = qs.filter(chased_by_id=request.user.pk)
        elif f["chaser"]:
            qs = qs.filter(chased_by_id=int(f["chaser"]))
        if f["owner"] == "me":
            qs = qs.filter(owner_id=request.user.pk)
        elif f["owner"] == "none":
            qs = qs.filter(owner__isnull=True)
        elif f["owner"]:
            qs = qs.filter(owner_id=int(f["owner"]))
        if f["date_from"]:
            qs = qs.filter(settle_date__gte=f["date_from"])
        if f["date_to"]:
            qs = qs.filter(settle_date__lte=f["date_to"])
    totals = qs.aggregate(n=Count("id"), fen=Sum("amount_fen"))
    # Open exceptions whose follow-up date has come lead the queue, the most overdue first.
    qs = qs.annotate(
        due_first=Case(
            When(Q(state=open_, follow_up_on__lte=today), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )
    ordered = qs.order_by("due_first", "follow_up_on", "-settle_date", "channel", "category", "id")
    page = Paginator(ordered, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reconciliation/queue.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "total_count": totals["n"] or 0,
            "total_fen": totals["fen"] or 0,
            "default_open": not request.GET,
            "today": today,
        },
    )


# --- one exception -------------------------------------------------------------------------


def _exception(request: HttpRequest, pk: int, roles: frozenset[str]) -> ReconException:
    return get_object_or_404(
        _exceptions_for(request.user, roles).select_related(
            "owner",
            "resolved_by",
            "company",
            "payment",
            "refund",
            "channel_record",
            "settlement",
            "bank_movement",
            "entry",
            "chased_by",
        ),
        pk=pk,
    )


def _communities(company_id: int) -> list[tuple[str, str]]:
    return [
        (str(c.pk), c.name)
        for c in Community.objects.filter(company_id=company_id).order_by("name")
    ]


@never_cache
@access.role_required(READ)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    exc = _exception(request, pk, READ)
    can_act = _can_act(request.user, exc.company_id)
    actions = actions_for(exc) if can_act else []
    action_names: dict[str, Any] = {
        **dict(Action.choices),
        "found": _("对账发现"),
        "gone": _("重新对账不再出现"),
        "reopened": _("重新对账再次发现"),
        ARRIVED: _("已到账"),
    }
    events = list(exc.events.select_related("by"))
    arrived = any(ev.action == ARRIVED for ev in events)
    if exc.resolution == "gone" and exc.category in ARRIVAL_CATEGORIES and arrived:
        action_names["gone"] = _("已到账 (重新对账时关闭)")
    # The entries its resolutions posted and undos reversed; rows resolved before the links
    # existed name them in their events' data.
    roles: dict[int, str] = {
        link.entry_id: link.get_role_display() for link in exc.entry_links.all()
    }
    if not roles:
        undo_ids: set[int] = set()
        for event in events:
            ids = [int(i) for i in (event.data or {}).get("entry_ids", []) if str(i).isdigit()]
            for i in ids:
                roles.setdefault(i, "")
                if event.action == Action.UNDO:
                    undo_ids.add(i)
        labels = dict(ReconExceptionEntry.Role.choices)
        for i in roles:
            kind = ReconExceptionEntry.Role.REVERSAL if i in undo_ids else "posted"
            roles[i] = str(labels[kind])
    entries = list(
        JournalEntry.objects.filter(pk__in=list(roles), company_id=exc.company_id)
        .prefetch_related("lines")
        .order_by("pk")
    )
    for en in entries:
        en.role_name = roles.get(en.pk, "")  # type: ignore[attr-defined]
    return render(
        request,
        "reconciliation/detail.html",
        {
            "exc": exc,
            "events": [
                {
                    "at": ev.at,
                    "by": ev.by,
                    "action": ev.action,
                    "action_name": str(action_names.get(ev.action, ev.action)),
                    "note": ev.note,
                }
                for ev in events
            ],
            "resolution_name": str(action_names.get(exc.resolution, exc.resolution)),
            "can_act": can_act,
            "actions": [(a, action_names.get(a, a)) for a in actions if a != Action.UNDO],
            "can_undo": Action.UNDO in actions,
            "action_form": ActionForm(communities=_communities(exc.company_id)),
            "owners": _owners([exc.company_id]),
            "entries": entries,
            "channel_names": dict(Channel.choices),
            "needs_household": exc.category == Category.CHANNEL_ONLY
            or Action.RECORD_DUPLICATE in actions,
            "offers_surplus": bool({Action.ADJUST_SURPLUS, Action.RECORD_DUPLICATE} & set(actions)),
            "offers_chase": Action.CHASE in actions,
            "chasing": exc.state == ReconException.State.OPEN and exc.chasing_since is not None,
            "follow_up_due": exc.state == ReconException.State.OPEN
            and exc.follow_up_on is not None
            and exc.follow_up_on <= timezone.localdate(),
            "default_follow_up": timezone.localdate() + timedelta(days=CHASE_DAYS),
            "surplus_policy": exc.payment.community.get_surplus_policy_display()
            if exc.payment_id and exc.payment
            else "",
        },
    )


def _unit_from(form: ActionForm, company_id: int) -> int | None:
    community = form.cleaned_data.get("community")
    room = (form.cleaned_data.get("room") or "").strip()
    if not room:
        return None
    unit = Unit.objects.filter(
        community__company_id=company_id, community_id=int(community or 0), label=room
    ).first()
    if unit is None:
        raise ResolutionError(_("找不到房屋 %(room)s (请先选择小区)") % {"room": room})
    return unit.pk


@require_POST
@access.role_required(ACT)
def act(request: HttpRequest, pk: int) -> HttpResponse:
    exc = _exception(request, pk, ACT)
    form = ActionForm(request.POST, communities=_communities(exc.company_id))
    if not form.is_valid():
        messages.error(request, _("无效的操作"))
        return redirect("reconciliation:detail", pk=exc.pk)
    action = form.cleaned_data["action"]
    try:
        with transaction.atomic():
            if action == Action.UNDO:
                exception_undo(
                    exception=exc,
                    user=request.user,
                    now=timezone.now(),
                    reason=form.cleaned_data["note"] or "",
                )
            else:
                exception_resolve(
                    exception=exc,
                    action=action,
                    user=request.user,
                    now=timezone.now(),
                    note=form.cleaned_data["note"] or "",
                    unit_id=_unit_from(form, exc.company_id),
                    surplus_to=form.cleaned_data.get("surplus_to") or "",
                    follow_up_on=form.cleaned_data.get("follow_up_on"),
                )
    except (ResolutionError, AccessDenied, ValueError) as exc_error:
        messages.error(request, str(exc_error))
    else:
        messages.success(
            request, _("已处理: %(a)s") % {"a": dict(Action.choices).get(action, action)}
        )
    return redirect("reconciliation:detail", pk=exc.pk)


@require_POST
@access.role_required(ACT)
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    exc = _exception(request, pk, ACT)
    form = AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("无效的负责人"))
        return redirect("reconciliation:detail", pk=exc.pk)
    owner = None
    if form.cleaned_data["owner"]:
        owner = User.objects.filter(pk=form.cleaned_data["owner"]).first()
    try:
        exception_assign(
            exception=exc,
            owner=owner,
            user=request.user,
            now=timezone.now(),
            note=form.cleaned_data["note"] or "",
        )
    except (ResolutionError, AccessDenied):
        messages.error(request, _("该用户不能负责本公司的对账差异"))
    else:
        messages.success(request, _("已指派"))
    return redirect("reconciliation:detail", pk=exc.pk)


@require_POST
@access.role_required(ACT)
def note(request: HttpRequest, pk: int) -> HttpResponse:
    exc = _exception(request, pk, ACT)
    try:
        exception_note(
            exception=exc, user=request.user, now=timezone.now(), note=request.POST.get("note", "")
        )
    except (ResolutionError, AccessDenied) as error:
        messages.error(request, str(error))
    return redirect("reconciliation:detail", pk=exc.pk)
