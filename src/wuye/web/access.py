"""Who may open which screen, and the querysets each screen is allowed to read.

Every screen names the roles it admits; the objects it shows come from querysets scoped by
``accounts.selectors.user_community_filter`` so that an id from another company is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from wuye.accounts.models import Membership, Role
from wuye.accounts.selectors import user_community_filter
from wuye.billing.models import Bill, BillingRun, Waiver
from wuye.core.models import Job
from wuye.estates.models import Building, Community, Unit
from wuye.merchants.models import Merchant

ALL_ROLES: frozenset[str] = frozenset(r.value for r in Role)
# Screens and the roles they admit (see README: roles).
DASHBOARD = ALL_ROLES
ESTATES = ALL_ROLES
BILLS = ALL_ROLES
RUNS_READ = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})
RUNS_LAUNCH = frozenset({Role.ADMIN, Role.FINANCE})
MERCHANTS = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})
JOBS = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.AUDITOR})
IMPORTS = frozenset({Role.ADMIN})
# Waivers (减免): anyone may read them; the roles of billing.waivers may ask and decide.
WAIVERS_READ = ALL_ROLES
WAIVER_REQUEST = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER, Role.CASHIER})
WAIVER_DECIDE = frozenset({Role.ADMIN, Role.FINANCE, Role.MANAGER})


def user_role_set(user: Any) -> frozenset[str]:
    """Every role ``user`` holds in any company (all roles for a platform superuser)."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return ALL_ROLES
    cached = getattr(user, "_wuye_roles", None)
    if cached is None:
        cached = frozenset(Membership.objects.filter(user=user).values_list("role", flat=True))
        user._wuye_roles = cached
    return cached


def role_required(roles: frozenset[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Admit logged-in users holding one of ``roles`` somewhere; others get 403."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not user_role_set(request.user) & roles:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorate


def company_ids_for(user: Any, roles: frozenset[str]) -> list[int] | None:
    """Companies where ``user`` holds one of ``roles``; ``None`` means all (superuser)."""
    if user.is_superuser:
        return None
    return list(
        Membership.objects.filter(user=user, role__in=roles)
        .values_list("company_id", flat=True)
        .distinct()
    )


def communities_for(user: Any, roles: frozenset[str]) -> QuerySet[Community]:
    """Communities ``user`` may see with one of ``roles``."""
    return Community.objects.filter(
        user_community_filter(user, field="", roles=set(roles))
    ).select_related("company")


def buildings_for(user: Any, roles: frozenset[str]) -> QuerySet[Building]:
    return Building.objects.filter(user_community_filter(user, roles=set(roles)))


def units_for(user: Any, roles: frozenset[str]) -> QuerySet[Unit]:
    return Unit.objects.filter(user_community_filter(user, roles=set(roles)))


def bills_for(user: Any, roles: frozenset[str]) -> QuerySet[Bill]:
    return Bill.objects.filter(user_community_filter(user, roles=set(roles)))


def waivers_for(user: Any, roles: frozenset[str]) -> QuerySet[Waiver]:
    return Waiver.objects.filter(
        user_community_filter(user, field="bill__community", roles=set(roles))
    )


def runs_for(user: Any, roles: frozenset[str]) -> QuerySet[BillingRun]:
    return BillingRun.objects.filter(user_community_filter(user, roles=set(roles)))


def merchants_for(user: Any, roles: frozenset[str]) -> QuerySet[Merchant]:
    ids = company_ids_for(user, roles)
    qs = Merchant.objects.all()
    return qs if ids is None else qs.filter(company_id__in=ids)


def jobs_for(user: Any, roles: frozenset[str]) -> QuerySet[Job]:
    """Jobs of the user's companies; a job about one community (``params.community_id``) only
    if the user may see that community. A job without a company is for superusers only."""
    ids = company_ids_for(user, roles)
    qs = Job.objects.select_related("created_by")
    if ids is None:
        return qs
    community_ids = list(communities_for(user, roles).values_list("pk", flat=True))
    return qs.filter(company_id__in=ids).filter(
        Q(params__community_id__isnull=True) | Q(params__community_id__in=community_ids)
    )
