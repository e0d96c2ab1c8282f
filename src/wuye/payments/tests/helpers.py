"""Helpers for payments tests: a household with bills, a cashier and a finance user."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from wuye.accounts.models import Membership, Role, User
from wuye.billing.models import Bill, FeeItem
from wuye.billing.tests.helpers import issue_bill
from wuye.estates.models import Community, Unit
from wuye.testing.factories import make_building, make_community, make_fee_item, make_unit

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    """A fresh idempotency key."""
    return f"{prefix}-{next(_keys)}"


def staff(community: Community, role: str) -> User:
    """A user with ``role`` in the community's company, without hashing a password (fast)."""
    user = User.objects.create(username=f"{role}-{community.pk}-{next(_keys)}")
    Membership.objects.create(user=user, company=community.company, role=role)
    return user


@dataclass
class Household:
    community: Community
    unit: Unit
    item: FeeItem
    cashier: User
    finance: User

    def bill(self, amount_fen: int, *, month: int = 1, **kw: Any) -> Bill:
        start = date(2026, month, 1)
        kw.setdefault("due_date", start)
        kw.setdefault("issued_on", start)
        return issue_bill(
            unit=self.unit,
            fee_item=kw.pop("fee_item", self.item),
            amount_fen=amount_fen,
            period_start=start,
            **kw,
        )


def household(**item_kw: Any) -> Household:
    community = make_community()
    unit = make_unit(make_building(community))
    item = make_fee_item(community.company, **item_kw)
    return Household(
        community=community,
        unit=unit,
        item=item,
        cashier=staff(community, Role.CASHIER),
        finance=staff(community, Role.FINANCE),
    )
