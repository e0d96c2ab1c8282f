"""Reads that decide what a user may see. Every query of company data goes through these."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from wuye.accounts.models import Membership, Role


class AccessDenied(PermissionError):
    """The user has no role that allows this in that company or community."""


def user_memberships(user: Any) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).prefetch_related("communities")


def user_company_ids(user: Any) -> set[int] | None:
    """Company ids the user may see; ``None`` means all (platform superuser)."""
    if user.is_superuser:
        return None
    return set(Membership.objects.filter(user=user).values_list("company_id", flat=True))


def user_community_filter(
    user: Any, *, field: str = "community", roles: set[str] | None = None
) -> Q:
    """A ``Q`` restricting a queryset to the communities ``user`` may see.

    ``field`` is the path to the community from the queried model (``"community"``,
    ``"unit__community"``, or ``""`` when querying communities themselves).
    """
    if user.is_superuser:
        return Q()
    prefix = f"{field}__" if field else ""
    q = Q(pk__in=[])
    for m in user_memberships(user):
        if roles is not None and m.role not in roles:
            continue
        ids = [c.pk for c in m.communities.all()]
        if ids:
            q |= Q(**{f"{prefix}pk__in": ids})
        else:
            q |= Q(**{f"{prefix}company_id": m.company_id})
    return q


def user_roles(user: Any, *, company_id: int, community_id: int | None = None) -> set[str]:
    """Roles ``user`` holds for the company (and, if given, that community)."""
    if user.is_superuser:
        return {r.value for r in Role}
    roles: set[str] = set()
    for m in user_memberships(user).filter(company_id=company_id):
        ids = {c.pk for c in m.communities.all()}
        if community_id is None or not ids or community_id in ids:
            roles.add(m.role)
    return roles


def require_role(
    user: Any, roles: set[str], *, company_id: int, community_id: int | None = None
) -> None:
    """Raise AccessDenied unless ``user`` holds one of ``roles`` there."""
    if not (user_roles(user, company_id=company_id, community_id=community_id) & roles):
        raise AccessDenied(f"user {user} lacks {sorted(roles)} in company {company_id}")
