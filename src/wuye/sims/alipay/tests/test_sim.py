"""The simulator on its own: gateway refusals, the wallet over HTTP, bills, bank credit, CLI."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuye.channels.alipay.client import CHINA
from wuye.sims.alipay import cli
from wuye.sims.alipay.bills import (
    bank_credit_csv,
    bill_csv,
    next_working_day,
    refund_fee_backs,
)
from wuye.sims.alipay.notifier import RETRY_AFTER_S, Notifier
from wuye.sims.alipay.testing import RunningSim, running_sim


@pytest.fixture
def alipay(settings: Any) -> Any:
    with running_sim(settings, transport=lambda url, body: (200, b"success")) as running:
        yield running


def _post(url: str, form: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_a_request_signed_with_another_key_is_refused_unsigned(alipay: RunningSim) -> None:
    status, text = _post(
        alipay.server.url + "/gateway.do",
        {
            "app_id": "2021000000000001",
            "method": "alipay.trade.query",
            "sign_type": "RSA2",
            "sign": "AAAA",
            "biz_content": "{}",
        },
    )
    assert status == 200
    body = json.loads(text)["alipay_trade_query_response"]
    assert body["sub_code"] == "isv.invalid-signature" and "sign" not in json.loads(text)


def test_the_wallet_pays_a_code_from_its_web_page_and_confirms_a_waiting_one(
    alipay: RunningSim,
) -> None:
    status, code = _post(alipay.server.url + "/wallet/paycode", {"funding": "huabei"})
    assert status == 200 and len(code) == 18 and code.startswith("28")
    assert _post(alipay.server.url + "/wallet/paycode", {"funding": "gold"})[0] == 400
    assert _post(alipay.server.url + "/wallet/confirm", {"code": code})[0] == 404
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(alipay.server.url + "/qr/nope", timeout=5)
    assert refused.value.code == 404


def test_notifications_are_retried_on_alipays_schedule_until_success() -> None:
    clock = [0.0]
    answers = [b"fail"] * 3 + [b"success"]
    sent: list[float] = []

    def transport(url: str, body: bytes) -> tuple[int, bytes]:
        sent.append(clock[0])
        return 200, answers[len(sent) - 1]

    n = Notifier(transport=transport, clock=lambda: clock[0])
    n.add("http://x/", {"a": "1"})
    for _ in range(100):
        n.run_due()
        clock[0] += 60
    assert sent == [0, 240, 840, 1440]
    assert n.pending() == 0
    assert RETRY_AFTER_S == (240, 600, 600, 3600, 7200, 21600, 54000)


def test_the_bill_and_the_bank_credit_agree_on_the_net(alipay: RunningSim) -> None:
    sim = alipay.sim
    sim.clock = lambda: datetime(2026, 11, 20, 10, 0, tzinfo=CHINA)
    code = sim.payment_code(funding="balance")
    from wuye.channels.alipay.adapter import AlipayChannel
    from wuye.channels.base import PaymentRequest, RefundRequest

    chan = AlipayChannel()
    paid = chan.pay(
        PaymentRequest(
            order_id=1,
            amount_fen=100_000,
            idempotency_key="WYB1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
            extra={"auth_code": code},
        )
    )
    chan.refund(
        RefundRequest(
            payment_id=1,
            payment_reference=paid.reference,
            amount_fen=40_000,
            idempotency_key="R1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
        )
    )

    def fee(t: Any, amount_fen: int, on: date) -> int:
        return amount_fen * 38 // 10_000  # 0.38 %

    day = date(2026, 11, 20)
    text = bill_csv(sim, day, fee, exported_at=sim.now())
    rows = [r for r in csv.reader(io.StringIO(text)) if not r[0].startswith("#")][1:]
    assert [(r[2], r[12], r[21], r[22]) for r in rows] == [
        ("交易", "1000.00", "", "-3.80"),
        ("退款", "-400.00", "R1", "1.52"),
    ]
    bank = list(csv.DictReader(io.StringIO(bank_credit_csv(sim, day, fee, account_no="1"))))
    assert bank[0]["direction"] == "C" and bank[0]["amount"] == "597.72"
    assert bank[0]["txn_date"] == f"{next_working_day(day):%Y%m%d}" == "20261123"


def test_the_command_line_refuses_a_bad_date_clearly(capsys: Any) -> None:
    assert cli.main(["export", "--date", "2026-11-20", "--out", "/tmp/x"]) == 2
    assert "YYYYMMDD" in capsys.readouterr().err


@given(
    amount=st.integers(min_value=1, max_value=10_000_000),
    rate_ppm=st.integers(min_value=0, max_value=10_000),
    cuts=st.lists(st.integers(min_value=1, max_value=1_000), min_size=1, max_size=8),
)
def test_fees_given_back_never_exceed_the_fee_and_a_full_refund_returns_it_all(
    amount: int, rate_ppm: int, cuts: list[int]
) -> None:
    fee = amount * rate_ppm // 1_000_000
    # Split the amount into refunds in the proportions of ``cuts`` (the last takes the rest).
    total_cut = sum(cuts)
    parts = [amount * c // total_cut for c in cuts[:-1]]
    parts.append(amount - sum(parts))
    parts = [p for p in parts if p > 0]

    backs = refund_fee_backs(fee, amount, parts)

    assert all(b >= 0 for b in backs)
    for k in range(1, len(backs) + 1):
        assert sum(backs[:k]) <= fee
    assert sum(backs) == fee


def test_the_bill_imports_through_wuyes_reconciliation_reader(alipay: RunningSim) -> None:
    from wuye.channels.alipay.adapter import AlipayChannel
    from wuye.channels.base import PaymentRequest, RefundRequest
    from wuye.reconciliation.importers import alipay as reader
    from wuye.sims.alipay.bills import bill_zip

    sim = alipay.sim
    sim.clock = lambda: datetime(2026, 11, 20, 10, 0, tzinfo=CHINA)
    chan = AlipayChannel()
    paid = chan.pay(
        PaymentRequest(
            order_id=1,
            amount_fen=100_000,
            idempotency_key="WYR1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
            extra={"auth_code": sim.payment_code(funding="huabei")},
        )
    )
    chan.refund(
        RefundRequest(
            payment_id=1,
            payment_reference=paid.reference,
            amount_fen=30_000,
            idempotency_key="RR1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
        )
    )

    def fee(t: Any, amount_fen: int, on: date) -> int:
        return amount_fen * 6 // 1000  # 0.6 % (花呗: the credit rate)

    data = bill_zip(sim, date(2026, 11, 20), fee, exported_at=sim.now())
    parsed = reader.parse(data, "bill.zip")

    assert [(r[1], r[4], r[6], r[7], r[8] // 1000) for r in parsed.records] == [
        ("2088000012345678", paid.reference, "payment", 100_000, 600),
        ("2088000012345678", "RR1", "refund", -30_000, -180),
    ]
    assert parsed.total_fen == 70_000


def test_the_bank_credit_imports_and_names_the_merchant_and_settlement_date(
    alipay: RunningSim,
) -> None:
    from wuye.reconciliation.importers import bank

    sim = alipay.sim
    sim.clock = lambda: datetime(2026, 11, 20, 10, 0, tzinfo=CHINA)
    from wuye.channels.alipay.adapter import AlipayChannel
    from wuye.channels.base import PaymentRequest

    AlipayChannel().pay(
        PaymentRequest(
            order_id=1,
            amount_fen=50_000,
            idempotency_key="WYK1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
            extra={"auth_code": sim.payment_code(funding="balance")},
        )
    )

    text = bank_credit_csv(
        sim, date(2026, 11, 20), lambda t, a, on: a * 38 // 10_000, account_no="1001"
    )
    parsed = bank.parse_csv(text.encode(), "bank.csv", account_no="31000000000000001")

    (row,) = parsed.movements
    assert row[4] == "C" and row[5] == 50_000 - 190
    assert bank.recognise(row[9], {"2088000012345678": "alipay"}) == (
        "alipay",
        "2088000012345678",
        date(2026, 11, 21),
    )
