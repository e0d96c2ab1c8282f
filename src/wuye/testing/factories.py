"""Test and demo factories: plain functions with sensible defaults, overridable by keyword."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

from stdnum.cn import uscc

from wuye.accounts.models import Membership, Role, User
from wuye.billing.models import FeeItem, FeeStandard
from wuye.estates.models import Building, Community, Company, Unit

_seq = itertools.count(1)


def make_uscc(n: int) -> str:
    """A valid 统一社会信用代码 derived from ``n``."""
    body = f"91310000{n:09d}"[:17]
    return body + uscc.calc_check_digit(body)


def make_company(**kw: Any) -> Company:
    n = next(_seq)
    kw.setdefault("name", f"测试物业服务有限公司{n}")
    kw.setdefault("uscc", make_uscc(n))
    kw.setdefault("bank_name", "招商银行上海分行")
    kw.setdefault("bank_account_name", kw["name"])
    kw.setdefault("bank_account_no", f"1219{n:08d}")
    return Company.objects.create(**kw)


def make_community(company: Company | None = None, **kw: Any) -> Community:
    n = next(_seq)
    kw.setdefault("code", f"C{n:03d}")
    kw.setdefault("name", f"测试小区{n}")
    return Community.objects.create(company=company or make_company(), **kw)


def make_building(community: Community | None = None, **kw: Any) -> Building:
    n = next(_seq)
    kw.setdefault("code", str(n))
    kw.setdefault("name", f"{kw['code']}号楼")
    return Building.objects.create(community=community or make_community(), **kw)


def make_unit(building: Building | None = None, **kw: Any) -> Unit:
    n = next(_seq)
    building = building or make_building()
    kw.setdefault("room_no", f"{n:04d}")
    kw.setdefault("area_m2", Decimal("89.50"))
    kw.setdefault("handover_date", date(2020, 1, 1))
    kw.setdefault("label", f"{building.code}-{kw['room_no']}")
    return Unit.objects.create(community=building.community, building=building, **kw)


def make_fee_item(company: Company, **kw: Any) -> FeeItem:
    n = next(_seq)
    kw.setdefault("code", f"F{n:03d}")
    kw.setdefault("name", "物业费")
    kw.setdefault("kind", FeeItem.Kind.PROPERTY)
    return FeeItem.objects.create(company=company, **kw)


def make_standard(fee_item: FeeItem, community: Community, **kw: Any) -> FeeStandard:
    kw.setdefault("method", FeeStandard.Method.AREA)
    kw.setdefault("unit_price", Decimal("2.5000"))
    kw.setdefault("effective_from", date(2020, 1, 1))
    return FeeStandard.objects.create(fee_item=fee_item, community=community, **kw)


def make_user(
    company: Company | None = None,
    role: str = Role.ADMIN,
    communities: list[Community] | None = None,
    **kw: Any,
) -> User:
    n = next(_seq)
    kw.setdefault("username", f"user{n}")
    user = User.objects.create_user(password=kw.pop("password", "pw-for-tests-1"), **kw)
    if company is not None:
        m = Membership.objects.create(user=user, company=company, role=role)
        if communities:
            m.communities.set(communities)
    return user
