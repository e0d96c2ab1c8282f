"""A day of WeChat Pay payments through the WeChat Pay simulator, reconciled end to end.

Residents pay Wuye's QR codes in the simulator's wallet and the notifications reach Wuye's
notify view, as in production. Differences are injected at the source: one notification is
lost (Wuye's order stays pending), someone pays the merchant for an order Wuye never made, one
payment Wuye recorded is left out of the simulator's exported bill, and the bank credits 1.00
less than the bill's net. The simulator's exporter writes the trade bill and the bank credit;
they are imported, the day is run, the rules post the lost notification, finance resolves the
rest, and the clearing account keeps exactly the 1.00 that never arrived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.channels.qrpay import services as qr
from wuye.channels.qrpay.models import QrTrade
from wuye.channels.qrpay.tests.helpers import deliver
from wuye.payments.models import Payment
from wuye.payments.services import order_create
from wuye.payments.tests.helpers import staff
from wuye.reconciliation.clearing import clearing_balance
from wuye.reconciliation.importers import file_import
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.resolution import Action, exception_resolve
from wuye.reconciliation.rules import reconcile_day
from wuye.reconciliation.tests.conftest import ACCOUNT, WECHAT_MCH
from wuye.reconciliation.tests.test_e2e import Estate
from wuye.sims.wechat import sim_from_settings
from wuye.sims.wechat.bills import bank_credit, trade_bill
from wuye.sims.wechat.server import WechatSim

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechat_sim(settings: Any, tmp_path: Path) -> Iterator[WechatSim]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WUYE_WECHAT_KEY_DIR = str(tmp_path / "wechat-keys")
    settings.WUYE_WECHAT_MCHID = WECHAT_MCH
    sim = sim_from_settings(deliver="manual", persist=False)
    port = sim.start()
    settings.WUYE_WECHAT_BASE_URL = f"http://127.0.0.1:{port}"
    settings.WUYE_WECHAT_TIMEOUT_S = 2.0
    yield sim
    sim.stop()


def _qr_order(estate: Estate, amount_fen: int, key: str):  # type: ignore[no-untyped-def]
    bill = estate.household_bill(amount_fen)
    order = order_create(
        unit=bill.unit,
        bill_ids=[bill.pk],
        channel="wechat",
        idempotency_key=key,
        cashier=None,
        now=timezone.now(),
    )
    return order, bill, qr.qr_start(order, now=timezone.now())


def test_a_wechat_day_through_the_simulator(company, wechat_sim):
    estate = Estate(company)
    finance = staff(estate.community, Role.FINANCE)

    # A: paid and notified — matched.
    _a, bill_a, code_a = _qr_order(estate, 10_000, "WY-E2E-A")
    assert wechat_sim.wallet_pay(code_a.code_url, "balance")[0] == 200
    # B: paid, but every notification is lost: Wuye's order stays pending.
    _b, bill_b, code_b = _qr_order(estate, 25_000, "WY-E2E-B")
    wechat_sim.faults.lose_notifications = 1
    assert wechat_sim.wallet_pay(code_b.code_url, "balance")[0] == 200
    # C: paid and notified, but left out of the exported bill below.
    order_c, bill_c, code_c = _qr_order(estate, 5_000, "WY-E2E-C")
    assert wechat_sim.wallet_pay(code_c.code_url, "balance")[0] == 200
    # D: the merchant is paid for an order Wuye never made; its notification goes nowhere.
    status, data = wechat_sim.native(
        {
            "appid": wechat_sim.appid,
            "mchid": wechat_sim.mchid,
            "description": "物业费",
            "out_trade_no": "STRANGER-0001",
            "notify_url": "http://127.0.0.1:9/nowhere/",
            "amount": {"total": 20_000, "currency": "CNY"},
        }
    )
    assert status == 200
    assert wechat_sim.wallet_pay(str(data["code_url"]), "balance")[0] == 200

    outbox = wechat_sim.outbox_take()
    for_wuye = [o for o in outbox if "nowhere" not in o.url]
    from wuye.channels.qrpay.tests.helpers import post

    assert all(post(o).status_code == 200 for o in for_wuye)
    assert deliver(wechat_sim) == []
    bill_a.refresh_from_db()
    bill_c.refresh_from_db()
    assert (bill_a.outstanding_fen, bill_c.outstanding_fen) == (0, 0)
    bill_b.refresh_from_db()
    assert bill_b.outstanding_fen == 25_000

    # The simulator's files for the day, with C dropped and the bank credit 1.00 short.
    day = timezone.localdate()
    settle = day + timedelta(days=1)
    dropped = QrTrade.objects.get(order=order_c).out_trade_no
    orders = {k: v for k, v in wechat_sim.state.orders.items() if k != dropped}
    bill = trade_bill({"orders": orders}, mchid=WECHAT_MCH, appid=wechat_sim.appid, day=day)
    bank_lines = bank_credit(bill, mchid=WECHAT_MCH, day=day, balance_fen=0).splitlines()
    row = bank_lines[1].split(",")
    short = bill.net_fen - 100
    row[4] = f"{short // 100}.{short % 100:02d}"
    row[5] = row[4]
    # The simulator's memo names the settlement date (D+1), as the contract's card example does.
    assert f"{settle:%Y%m%d}" in row[8]
    bank_lines[1] = ",".join(row)
    file_import(bill.text.encode(), company=company, name="wx-bill.csv")
    file_import(
        ("\n".join(bank_lines) + "\n").encode(),
        company=company,
        name="wx-bank.csv",
        account_no=ACCOUNT,
    )

    now = timezone.now() + timedelta(days=3)
    reconcile_day(company=company, settle_date=settle, channel="wechat", now=now)

    found = {
        e.category: e
        for e in ReconException.objects.filter(company=company, settle_date=settle)
        if e.category != "channel_only"
    }
    b_trade = QrTrade.objects.get(order__idempotency_key="WY-E2E-B").out_trade_no
    channel_only = {
        e.order_no: e
        for e in ReconException.objects.filter(
            company=company, settle_date=settle, category="channel_only"
        )
    }
    c_payment = Payment.objects.get(order__idempotency_key="WY-E2E-C")
    assert set(found) == {"internal_only", "arrival_short"}
    assert found["internal_only"].reference == c_payment.reference
    assert found["arrival_short"].amount_fen == -100
    assert set(channel_only) == {b_trade, "STRANGER-0001"}
    # The rule posted the lost notification to the order it was for.
    b_exc = channel_only[b_trade]
    assert b_exc.state == ReconException.State.AUTO_RESOLVED
    bill_b.refresh_from_db()
    assert bill_b.outstanding_fen == 0
    assert channel_only["STRANGER-0001"].state == ReconException.State.OPEN

    # Finance resolves the rest.
    exception_resolve(
        exception=found["internal_only"],
        action=Action.REVERSE_PAYMENT,
        user=finance,
        now=now,
        note="微信无此交易",
    )
    exception_resolve(
        exception=channel_only["STRANGER-0001"],
        action=Action.REFUND_DUE,
        user=finance,
        now=now,
        note="非本公司订单, 原路退回",
    )
    exception_resolve(
        exception=found["arrival_short"], action=Action.BOOK_ARRIVAL, user=finance, now=now
    )
    bill_c.refresh_from_db()
    assert bill_c.outstanding_fen == 5_000  # reopened: the resident never paid it

    out = StringIO()
    call_command("ledger_check", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"]
    # Exactly the 1.00 the bank did not credit is still in transit.
    assert clearing_balance(company_id=company.pk, channel="wechat", settle_date=settle) == 100
