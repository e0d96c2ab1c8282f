"""Writes for users and their roles.

An administrator of a company gets the admin site (``is_staff``) and the ``Wuye 管理员``
group, which holds the model permissions the admin needs; the admin's querysets are then
scoped to that administrator's companies (``core.admin``). Other roles use Wuye's own
screens only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from wuye.accounts.models import Membership, Role, User
from wuye.estates.models import Community, Company

ADMIN_GROUP = "Wuye 管理员"
# Apps whose models a company administrator maintains through the admin.
_ADMIN_APPS = ("estates", "merchants", "billing", "ledger", "core", "accounts", "imports")
# Read-only there: the journal and the audit trail are append-only, bills and runs come from
# the billing engine, companies are created by the platform.
_VIEW_ONLY = {
    "ledger.journalentry",
    "ledger.journalline",
    "core.auditevent",
    "core.job",
    "billing.bill",
    "billing.billingrun",
    "billing.allocation",
    "billing.waiver",
}


def admin_group_ensure() -> Group:
    """Create or refresh the administrators' group with its model permissions."""
    group, _created = Group.objects.get_or_create(name=ADMIN_GROUP)
    perms = []
    for perm in Permission.objects.filter(content_type__app_label__in=_ADMIN_APPS).select_related(
        "content_type"
    ):
        label = f"{perm.content_type.app_label}.{perm.content_type.model}"
        action = perm.codename.split("_", 1)[0]
        if label in _VIEW_ONLY and action != "view":
            continue
        if label == "estates.company" and action in ("add", "delete"):
            continue
        perms.append(perm)
    group.permissions.set(perms)
    return group


def user_create(
    *, username: str, password: str, display_name: str = "", phone: str = "", email: str = ""
) -> User:
    """Create a user who can log in. Raises ValidationError if the username is taken or empty,
    or the password fails the configured validators."""
    from django.contrib.auth.password_validation import validate_password

    username = username.strip()
    errors: dict[str, list[str]] = {}
    if not username:
        errors["username"] = ["用户名不能为空"]
    elif User.objects.filter(username=username).exists():
        errors["username"] = [f"用户名已存在: {username}"]
    try:
        validate_password(password)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)
    return User.objects.create_user(
        username=username,
        password=password,
        display_name=display_name.strip(),
        phone=phone.strip(),
        email=email.strip(),
    )


def membership_grant(
    *,
    user: User,
    company: Company,
    role: str,
    communities: Iterable[Community] = (),
) -> Membership:
    """Give ``user`` ``role`` in ``company``, optionally narrowed to some of its communities.

    Granting the administrator role also opens the admin site to the user. Granting a role the
    user already holds replaces its community list. Raises ValidationError for an unknown role
    or a community of another company; nothing is written then.
    """
    if role not in Role.values:
        raise ValidationError({"role": f"未知角色: {role}"})
    community_list = list(communities)
    foreign = [c.name for c in community_list if c.company_id != company.pk]
    if foreign:
        raise ValidationError({"communities": f"小区不属于 {company}: {', '.join(foreign)}"})
    with transaction.atomic():
        membership, _created = Membership.objects.get_or_create(
            user=user, company=company, role=role
        )
        membership.communities.set(community_list)
        if role == Role.ADMIN:
            user_admin_access_sync(user)
    return membership


def membership_revoke(*, user: User, company: Company, role: str) -> None:
    """Take ``role`` in ``company`` away from ``user`` (and the admin site with the last
    administrator role)."""
    with transaction.atomic():
        Membership.objects.filter(user=user, company=company, role=role).delete()
        if role == Role.ADMIN:
            user_admin_access_sync(user)


def user_admin_access_sync(user: Any) -> None:
    """Open the admin site (staff + administrators group) to ``user`` exactly while they hold
    an administrator role somewhere."""
    is_admin = Membership.objects.filter(user=user, role=Role.ADMIN).exists()
    group = admin_group_ensure()
    if is_admin:
        user.groups.add(group)
    else:
        user.groups.remove(group)
    if not user.is_superuser and user.is_staff != is_admin:
        user.is_staff = is_admin
        user.save(update_fields=["is_staff"])
