"""Terminal-management screens: the fleet, one terminal (keys, token, parameters, history),
registration and application releases. Views translate input and make one service call."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.terminals import selectors, services
from wuye.terminals.forms import FleetFilterForm, ParamsForm, RegisterForm, ReleaseForm, ShareForm
from wuye.terminals.models import Release, Terminal, TerminalParams
from wuye.web import access

READ = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})
MANAGE = frozenset({Role.ADMIN})
KEYS = frozenset({Role.ADMIN, Role.FINANCE})


def _terminals(request: HttpRequest) -> QuerySet[Terminal]:
    return selectors.terminals_for(request.user, READ)


def _may(request: HttpRequest, roles: frozenset[str]) -> bool:
    return bool(access.user_role_set(request.user) & roles)


def _secret(response: HttpResponse) -> HttpResponse:
    # A page showing a token or key components must not be kept by any cache.
    response["Cache-Control"] = "no-store"
    return response


@access.role_required(READ)
def fleet(request: HttpRequest) -> HttpResponse:
    """The fleet with filters (community, online/offline, unsettled batch) and flags."""
    communities = access.communities_for(request.user, READ)
    form = FleetFilterForm(request.GET or None, communities=communities)
    data = form.cleaned_data if form.is_valid() else {}
    community = data.get("community")
    rows = selectors.fleet(
        _terminals(request),
        now=timezone.now(),
        community_id=community.pk if community else None,
        status=data.get("status") or "",
        unsettled_only=bool(data.get("unsettled")),
    )
    ctx = {
        "form": form,
        "rows": rows,
        "unmatched": selectors.unmatched_reports(_terminals(request))[:50],
        "can_manage": _may(request, MANAGE),
    }
    return render(request, "terminals/fleet.html", ctx)


@access.role_required(MANAGE)
def register(request: HttpRequest) -> HttpResponse:
    """Register a terminal; the page then shows its token once and its KCV."""
    form = RegisterForm(
        request.POST or None, communities=access.communities_for(request.user, MANAGE)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            terminal, token = services.terminal_register(
                community=data["community"],
                counter_name=data["counter_name"],
                serial_no=data["serial_no"],
                tid=data["tid"],
                mid=data["mid"],
                model=data["model"],
                kind=data["kind"],
                location=data["location"],
                ip_address=data["ip_address"] or None,
                network_cert_no=data["network_cert_no"],
                by=request.user,
                now=timezone.now(),
            )
        except (services.TerminalError, AccessDenied) as exc:
            form.add_error(None, str(exc))
        else:
            ctx = {"terminal": terminal, "token": token}
            return _secret(render(request, "terminals/issued.html", ctx))
    return render(
        request, "terminals/register.html", {"form": form}, status=422 if form.errors else 200
    )


def _detail_context(request: HttpRequest, terminal: Terminal, **extra: Any) -> dict[str, Any]:
    now = timezone.now()
    params = TerminalParams.objects.filter(terminal=terminal).order_by("-version").first()
    initial = (
        {
            "timeout_s": params.timeout_s,
            "receipt_header": params.receipt_header,
            "entry_modes": params.entry_modes,
            "operators": ",".join(params.operators),
            "training": params.training,
        }
        if params
        else {}
    )
    return {
        "terminal": terminal,
        "online": selectors.terminal_online(terminal, now=now),
        "unsettled": selectors.terminal_unsettled(terminal, now=now),
        "params": params,
        "params_form": extra.pop("params_form", None) or ParamsForm(initial=initial),
        "release": services.release_target(terminal),
        "heartbeats": terminal.heartbeats.all()[:20],
        "requests": terminal.requests.select_related("order")[:20],
        "reports": terminal.reports.select_related("payment", "refund")[:30],
        "settlements": terminal.settlements.all()[:10],
        "can_manage": _may(request, MANAGE),
        "can_keys": _may(request, KEYS),
        **extra,
    }


@access.role_required(READ)
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = get_object_or_404(_terminals(request), pk=pk)
    return render(request, "terminals/detail.html", _detail_context(request, terminal))


@require_POST
@access.role_required(MANAGE)
def params(request: HttpRequest, pk: int) -> HttpResponse:
    """Save a new parameter version (pushed with the terminal's next heartbeat)."""
    terminal = get_object_or_404(_terminals(request), pk=pk)
    form = ParamsForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.params_set(
                terminal=terminal,
                timeout_s=data["timeout_s"],
                receipt_header=data["receipt_header"],
                entry_modes=list(data["entry_modes"]),
                operators=data["operators"].split(","),
                training=data["training"],
                by=request.user,
                now=timezone.now(),
            )
        except (services.TerminalError, AccessDenied) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("参数版本 %(v)s 已保存, 终端下次心跳时生效") % {"v": saved.version}
            )
            return redirect("terminals:detail", terminal.pk)
    ctx = _detail_context(request, terminal, params_form=form)
    return render(request, "terminals/detail.html", ctx, status=422)


@require_POST
@access.role_required(MANAGE)
def token_reset(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = get_object_or_404(_terminals(request), pk=pk)
    try:
        token = services.terminal_token_reset(
            terminal=terminal, by=request.user, now=timezone.now()
        )
    except AccessDenied:
        raise Http404 from None
    return _secret(render(request, "terminals/issued.html", {"terminal": terminal, "token": token}))


@require_POST
@access.role_required(MANAGE)
def enable(request: HttpRequest, pk: int) -> HttpResponse:
    terminal = get_object_or_404(_terminals(request), pk=pk)
    try:
        services.terminal_enable(
            terminal=terminal,
            enabled=request.POST.get("enabled") == "1",
            by=request.user,
            now=timezone.now(),
        )
    except (services.TerminalError, AccessDenied) as exc:
        messages.error(request, str(exc))
    return redirect("terminals:detail", terminal.pk)


@require_POST
@access.role_required(KEYS)
def key_export(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the TMK as two XOR components with their check values (audited, not cached)."""
    terminal = get_object_or_404(selectors.terminals_for(request.user, KEYS), pk=pk)
    try:
        parts = services.terminal_key_export(terminal=terminal, by=request.user, now=timezone.now())
    except AccessDenied:
        raise Http404 from None
    return _secret(
        render(request, "terminals/key_export.html", {"terminal": terminal, "parts": parts})
    )


@require_POST
@access.role_required(KEYS)
def settle(request: HttpRequest, pk: int) -> HttpResponse:
    """Push an end-of-day settlement request to the terminal."""
    terminal = get_object_or_404(selectors.terminals_for(request.user, KEYS), pk=pk)
    try:
        req = services.settlement_request(terminal=terminal, by=request.user, now=timezone.now())
    except (services.TerminalError, AccessDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已推送结算请求 %(id)s") % {"id": req.public_id})
    return redirect("terminals:detail", terminal.pk)


def _releases(request: HttpRequest) -> QuerySet[Release]:
    ids = access.company_ids_for(request.user, READ)
    qs = Release.objects.all()
    return qs if ids is None else qs.filter(company_id__in=ids)


@access.role_required(READ)
def releases(request: HttpRequest) -> HttpResponse:
    """Application releases: create one for a share of the fleet, widen it, roll it back."""
    form = ReleaseForm(request.POST or None)
    if request.method == "POST":
        if not _may(request, MANAGE):
            raise Http404
        ids = access.company_ids_for(request.user, MANAGE)
        company_id = ids[0] if ids else None
        if company_id is None:
            form.add_error(None, _("平台管理员请在后台为具体公司创建版本"))
        elif form.is_valid():
            data = form.cleaned_data
            try:
                services.release_create(
                    company_id=company_id,
                    version=data["version"],
                    url=data["url"],
                    sha256=data["sha256"],
                    share_pct=data["share_pct"],
                    notes=data["notes"],
                    by=request.user,
                    now=timezone.now(),
                )
            except (services.TerminalError, AccessDenied) as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("已开始分批推送"))
                return redirect("terminals:releases")
    terminals = list(_terminals(request))
    rows = []
    for release in _releases(request):
        mine = [t for t in terminals if t.company_id == release.company_id]
        rows.append(
            {
                "release": release,
                "selected": sum(services.release_selects(release, t) for t in mine),
                "running": sum(t.app_version == release.version for t in mine),
                "fleet": len(mine),
            }
        )
    ctx = {
        "form": form,
        "rows": rows,
        "can_manage": _may(request, MANAGE),
        "share_form": ShareForm(),
    }
    return render(request, "terminals/releases.html", ctx, status=422 if form.errors else 200)


@require_POST
@access.role_required(MANAGE)
def release_change(request: HttpRequest, pk: int) -> HttpResponse:
    release = get_object_or_404(_releases(request), pk=pk)
    try:
        if request.POST.get("action") == "rollback":
            services.release_rollback(release=release, by=request.user, now=timezone.now())
            messages.success(request, _("版本 %(v)s 已回滚") % {"v": release.version})
        else:
            form = ShareForm(request.POST)
            if not form.is_valid():
                messages.error(request, _("推送比例须在1到100之间"))
            else:
                services.release_share_set(
                    release=release,
                    share_pct=form.cleaned_data["share_pct"],
                    by=request.user,
                    now=timezone.now(),
                )
    except (services.TerminalError, AccessDenied) as exc:
        messages.error(request, str(exc))
    return redirect("terminals:releases")
