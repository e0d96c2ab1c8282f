"""A counter with a registered terminal, and a client that plays the terminal over the API.

Used by the terminals and card tests and by the browser test's terminal thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.test import Client

from wuye.accounts.models import Role, User
from wuye.billing.models import Bill, FeeItem
from wuye.counter.models import Shift
from wuye.estates.models import Community, Unit
from wuye.merchants.models import Channel, Merchant
from wuye.terminals.models import Terminal
from wuye.terminals.services import terminal_register
from wuye.testing.factories import (
    make_building,
    make_community,
    make_fee_item,
    make_unit,
    make_user,
)

TEST_TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


@dataclass
class Counter:
    community: Community
    unit: Unit
    item: FeeItem
    bills: list[Bill]
    admin: User
    cashier: User
    finance: User
    shift: Shift
    terminal: Terminal
    token: str


def make_counter(
    *, now: datetime, tag: str = "", tid: str = "10000001", open_shift: bool = True
) -> Counter:
    """A community with a household owing two bills, staff, an open shift at 1号窗口 and the
    terminal bound to it (acquirer merchant, published test TMK)."""
    from wuye.billing.tests.helpers import issue_bill
    from wuye.counter.services import shift_open

    community = make_community(name=f"{tag}锦绣苑")
    company = community.company
    unit = make_unit(make_building(community), label=f"1-101{tag}")
    item = make_fee_item(company)
    bills = [
        issue_bill(unit=unit, fee_item=item, amount_fen=12_800, period_start=date(2026, 10, 1)),
        issue_bill(unit=unit, fee_item=item, amount_fen=20_000, period_start=date(2026, 11, 1)),
    ]
    admin = make_user(company, Role.ADMIN, username=f"admin{tag}{tid}")
    cashier = make_user(company, Role.CASHIER, username=f"cashier{tag}{tid}")
    finance = make_user(company, Role.FINANCE, username=f"finance{tag}{tid}")
    merchant = Merchant.objects.create(
        company=company,
        channel=Channel.ACQUIRER,
        name=f"{tag}申和物业",
        merchant_no=f"89831004899{tid[-4:]}",
        bank_name="招商银行",
        bank_account_name=company.name,
        bank_account_no="121900001234",
    )
    merchant.communities.add(community)
    terminal, token = terminal_register(
        community=community,
        counter_name="1号窗口",
        serial_no=f"SN-{tid}",
        tid=tid,
        mid=merchant.merchant_no,
        model="Wuye POS",
        location="服务中心一楼",
        network_cert_no="P-2026-0001",
        tmk=TEST_TMK,
        by=admin,
        now=now,
    )
    shift = (
        shift_open(
            cashier=cashier,
            community=community,
            counter_name="1号窗口",
            opening_float_fen=0,
            now=now,
        )
        if open_shift
        else None
    )
    return Counter(community, unit, item, bills, admin, cashier, finance, shift, terminal, token)  # type: ignore[arg-type]


class TerminalClient:
    """Speak docs/terminal-api.md to a Wuye server through Django's test client."""

    def __init__(self, client: Client, terminal: Terminal, token: str) -> None:
        self.client = client
        self.terminal = terminal
        self.auth = f"Terminal {terminal.tid} {token}"

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(
            f"/api/terminal/v1/{path}",
            data=json.dumps(body or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=self.auth,
        )

    def heartbeat(self, **body: Any) -> Any:
        return self._post("heartbeat", body)

    def poll(self, wait: int = 0) -> Any:
        return self.client.get(
            f"/api/terminal/v1/requests?wait={wait}", HTTP_AUTHORIZATION=self.auth
        )

    def accept(self, request_id: str) -> Any:
        return self._post(f"requests/{request_id}/accept")

    def result(self, body: dict[str, Any]) -> Any:
        return self._post("results", body)

    def settle(self, body: dict[str, Any]) -> Any:
        return self._post("settlements", body)


def result_body(
    terminal: Terminal,
    *,
    stan: int,
    amount_fen: int,
    kind: str = "purchase",
    request_id: str | None = None,
    approved: bool = True,
    batch: str = "000001",
    txn_date: str = "20261122",
    **extra: Any,
) -> dict[str, Any]:
    """A result report as a terminal sends it (docs/terminal-api.md ``POST results``)."""
    body = {
        "report_id": f"{terminal.tid}-{batch}-{stan:06d}-{kind}",
        "request_id": request_id,
        "kind": kind,
        "approved": approved,
        "response_code": "00" if approved else "51",
        "message": "承兑" if approved else "余额不足",
        "amount_fen": amount_fen,
        "rrn": f"{stan:012d}" if approved else "",
        "auth_code": "A1B2C3" if approved else "",
        "masked_pan": "622202*********0017",
        "card_type": "DEBIT",
        "entry_mode": "chip",
        "tid": terminal.tid,
        "mid": terminal.mid,
        "batch": batch,
        "stan": f"{stan:06d}",
        "txn_date": txn_date,
        "txn_time": "093015",
        "settle_date": txn_date,
        "original": None,
        "training": False,
    }
    body.update(extra)
    return body
