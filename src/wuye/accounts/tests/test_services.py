"""Users and roles: granting, narrowing, revoking, and what that opens."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from wuye.accounts.models import Membership, Role
from wuye.accounts.selectors import user_roles
from wuye.accounts.services import (
    ADMIN_GROUP,
    membership_grant,
    membership_revoke,
    user_create,
)
from wuye.testing.factories import make_community, make_company

pytestmark = pytest.mark.django_db


def test_user_create_makes_a_user_who_can_log_in():
    user = user_create(username=" zhang ", password="a-long-pass-9921", display_name="张三")

    assert user.username == "zhang"
    assert user.check_password("a-long-pass-9921")
    assert str(user) == "张三"


def test_user_create_refuses_a_taken_username_and_a_weak_password_naming_both():
    user_create(username="li", password="a-long-pass-9921")

    with pytest.raises(ValidationError) as exc:
        user_create(username="li", password="123")

    assert set(exc.value.message_dict) == {"username", "password"}


def test_granting_administrator_opens_the_admin_site_and_revoking_closes_it():
    company = make_company()
    user = user_create(username="wang", password="a-long-pass-9921")

    membership_grant(user=user, company=company, role=Role.ADMIN)
    user.refresh_from_db()
    opened = (user.is_staff, user.groups.filter(name=ADMIN_GROUP).exists())
    membership_revoke(user=user, company=company, role=Role.ADMIN)
    user.refresh_from_db()

    assert opened == (True, True)
    assert user.is_staff is False
    assert not user.groups.filter(name=ADMIN_GROUP).exists()


def test_administrators_group_cannot_change_the_journal_or_bills():
    from wuye.accounts.services import admin_group_ensure

    codenames = set(admin_group_ensure().permissions.values_list("codename", flat=True))

    assert "view_journalentry" in codenames
    assert "change_journalentry" not in codenames
    assert "delete_journalline" not in codenames
    assert "change_bill" not in codenames
    assert "add_company" not in codenames
    assert "change_unit" in codenames


def test_a_role_narrowed_to_one_community_applies_only_there():
    company = make_company()
    east, west = make_community(company), make_community(company)
    user = user_create(username="zhao", password="a-long-pass-9921")

    membership_grant(user=user, company=company, role=Role.CASHIER, communities=[east])

    assert user_roles(user, company_id=company.pk, community_id=east.pk) == {"cashier"}
    assert user_roles(user, company_id=company.pk, community_id=west.pk) == set()


def test_granting_a_community_of_another_company_is_refused_and_writes_nothing():
    company, other = make_company(), make_company()
    foreign = make_community(other, name="别家小区")
    user = user_create(username="qian", password="a-long-pass-9921")

    with pytest.raises(ValidationError, match="别家小区"):
        membership_grant(user=user, company=company, role=Role.FINANCE, communities=[foreign])

    assert not Membership.objects.filter(user=user).exists()


def test_granting_an_unknown_role_is_refused():
    with pytest.raises(ValidationError, match="boss"):
        membership_grant(
            user=user_create(username="sun", password="a-long-pass-9921"),
            company=make_company(),
            role="boss",
        )


def test_deleting_the_last_administrator_membership_in_the_admin_closes_the_admin_site(client):
    from django.urls import reverse

    company = make_company()
    boss = user_create(username="boss", password="a-long-pass-9921")
    membership_grant(user=boss, company=company, role=Role.ADMIN)
    other = user_create(username="deputy", password="a-long-pass-9921")
    membership = membership_grant(user=other, company=company, role=Role.ADMIN)
    client.force_login(boss)

    resp = client.post(
        reverse("admin:accounts_membership_delete", args=[membership.pk]), {"post": "yes"}
    )

    other.refresh_from_db()
    assert resp.status_code == 302
    assert other.is_staff is False
