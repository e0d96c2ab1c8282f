"""Template helpers: money from integer fen, rates in per-mille, the nav for a user's roles."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from wuye.accounts.models import Role
from wuye.core.money import format_yuan
from wuye.receipts.views import RECEIPTS_READ
from wuye.web import access

register = template.Library()


@register.filter
def yuan(amount_fen: Any) -> str:
    """Show integer fen as ``¥1,234.56``; empty for None."""
    if amount_fen is None or amount_fen == "":
        return ""
    return format_yuan(int(amount_fen), symbol=True, grouping=True)


@register.filter
def permille(value: int | None) -> str:
    """Show a per-mille integer as a percentage with one decimal: ``987`` → ``98.7%``."""
    if value is None:
        return "—"
    sign = "-" if value < 0 else ""
    v = abs(int(value))
    return f"{sign}{v // 10}.{v % 10}%"


# Reconciliation and terminal management: finance and admin act, managers and auditors read.
_BACK_OFFICE_READ = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})

NAV = [
    ("web:home", _("首页"), access.DASHBOARD),
    ("counter:index", _("收费台"), frozenset({Role.CASHIER, Role.FINANCE, Role.ADMIN})),
    ("receipts:list", _("收据"), RECEIPTS_READ),
    ("notices:index", _("缴费通知单"), frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER})),
    ("web:communities", _("小区/房屋"), access.ESTATES),
    ("web:bills", _("账单"), access.BILLS),
    ("web:waivers", pgettext_lazy("nav", "减免"), access.WAIVERS_READ),
    ("web:runs", _("出账"), access.RUNS_READ),
    ("reconciliation:day", _("对账"), _BACK_OFFICE_READ),
    ("imports:index", _("导入导出"), access.IMPORTS),
    ("web:merchants", _("商户"), access.MERCHANTS),
    ("terminals:list", _("终端管理"), _BACK_OFFICE_READ),
    ("web:jobs", _("任务"), access.JOBS),
]


@register.simple_tag(takes_context=True)
def nav_items(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The navigation entries the current user's roles admit, with the active one marked."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return []
    roles = access.user_role_set(request.user)
    path = request.path
    items = []
    for name, label, admitted in NAV:
        if not roles & admitted:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:  # a part not installed yet (imports) is left out
            continue
        active = path == url if url == "/" else path.startswith(url)
        items.append({"url": url, "label": label, "active": active})
    return items


@register.filter
def ppm_percent(rate_ppm: int | None) -> str:
    """Show parts per million as a percentage: ``6000`` → ``0.60%``, ``3800`` → ``0.38%``."""
    if rate_ppm is None:
        return "—"
    whole, frac = divmod(int(rate_ppm), 10_000)
    text = f"{whole}.{frac:04d}".rstrip("0")
    if len(text.split(".")[1]) < 2:
        text = f"{whole}.{frac:04d}"[: len(str(whole)) + 3]
    return f"{text}%"
