"""Alipay end to end against the simulator in-process, through the shared QR services.

The simulator speaks the real gateway (signed form in, signed JSON out) on a local port; its
notifications reach ``/pay/alipay/notify/`` through the test client.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.channels.alipay.adapter import AlipayChannel
from wuye.channels.base import ChannelResult, PaymentRequest
from wuye.channels.qrpay import services as qr
from wuye.channels.qrpay.base import ChannelUnavailable
from wuye.payments.models import Order, Payment
from wuye.payments.services import order_create
from wuye.payments.tests.helpers import household, key
from wuye.receipts.models import Receipt
from wuye.receipts.selectors import receipt_content
from wuye.sims.alipay.bills import bill_zip
from wuye.sims.alipay.testing import RunningSim

pytestmark = pytest.mark.django_db


def _order(amount_fen: int = 12_345) -> tuple[Order, object]:
    h = household()
    bill = h.bill(amount_fen)
    order = order_create(
        unit=h.unit,
        bill_ids=[bill.pk],
        channel="alipay",
        idempotency_key=key("ali"),
        cashier=h.cashier,
        now=timezone.now(),
    )
    return order, h


def _paid(order: Order) -> Payment:
    return Payment.objects.get(order_id=order.pk)


def test_a_resident_pays_the_counter_qr_with_huabei_and_the_receipt_says_so(
    alipay: RunningSim,
) -> None:
    order, _h = _order()
    code = qr.qr_start(order, now=timezone.now())
    assert code.code_url.startswith(alipay.server.url + "/qr/")

    alipay.sim.qr_pay(code.code_url, funding="huabei")
    assert alipay.deliver() == 1

    order.refresh_from_db()
    assert order.state == Order.State.PAID
    payment = _paid(order)
    assert payment.amount_fen == 12_345
    assert payment.funding_source == "花呗/PCREDIT"
    assert payment.reference == alipay.sim.trades[code.out_trade_no].trade_no
    receipt = Receipt.objects.get(number=payment.receipt_number)
    assert receipt_content(receipt).funding_source == "花呗/PCREDIT"
    assert alipay.notifier.log[-1].answer == b"success"


def test_the_same_notification_ten_times_posts_once(alipay: RunningSim) -> None:
    order, _h = _order()
    code = qr.qr_start(order, now=timezone.now())
    alipay.sim.faults.duplicate_notifications = 10
    alipay.sim.qr_pay(code.code_url, funding="balance")

    assert alipay.deliver() == 10

    assert Payment.objects.filter(order_id=order.pk).count() == 1
    assert all(d.answer == b"success" for d in alipay.notifier.log)
    assert _paid(order).funding_source == "余额/ALIPAYACCOUNT"


def test_a_forged_notification_is_refused_and_posts_nothing(alipay: RunningSim) -> None:
    order, _h = _order()
    code = qr.qr_start(order, now=timezone.now())
    alipay.sim.faults.bad_notification_signature = 1
    alipay.sim.qr_pay(code.code_url, funding="huabei")

    alipay.deliver()

    assert alipay.notifier.log[-1].status == 401
    assert not Payment.objects.filter(order_id=order.pk).exists()
    assert alipay.notifier.pending() == 1  # Alipay retries it on its back-off schedule
    assert alipay.advance(3 * 60) == 0  # not before 4 minutes
    assert alipay.advance(60) == 1


def test_a_lost_notification_is_recovered_by_the_query_job(alipay: RunningSim) -> None:
    order, _h = _order()
    now = timezone.now()
    code = qr.qr_start(order, now=now)
    alipay.sim.faults.lose_notifications = 1
    alipay.sim.qr_pay(code.code_url, funding="bankcard")
    assert alipay.deliver() == 0

    counts = qr.qr_poll_due(now=now + timedelta(minutes=5))

    assert counts["recovered"] == 1
    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert _paid(order).funding_source == "银行卡/BANKCARD"


def test_notifications_out_of_order_and_late_still_post_each_order_once(
    alipay: RunningSim,
) -> None:
    first, _ = _order(1_000)
    second, _ = _order(2_000)
    codes = [qr.qr_start(o, now=timezone.now()) for o in (first, second)]
    alipay.sim.faults.reorder_notifications = True
    alipay.sim.faults.delay_notifications_s = 30
    for c in codes:
        alipay.sim.qr_pay(c.code_url, funding="balance")

    assert alipay.deliver() == 0  # held back
    assert alipay.advance(30) == 2

    assert [_paid(o).amount_fen for o in (first, second)] == [1_000, 2_000]


def test_a_payment_code_waiting_for_the_buyer_is_polled_until_paid(alipay: RunningSim) -> None:
    order, _h = _order()
    auth = alipay.sim.payment_code(funding="huabei", confirm=True)
    polls: list[float] = []

    def buyer_confirms(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 2:
            alipay.sim.code_confirm(auth)

    payment = qr.qr_scan(order, auth, now=timezone.now(), sleep=buyer_confirms)

    assert len(polls) == 2
    assert payment.funding_source == "花呗/PCREDIT"
    alipay.deliver()  # the notification that follows changes nothing
    assert Payment.objects.filter(order_id=order.pk).count() == 1


def test_a_payment_code_never_confirmed_is_reversed_after_the_timeout(
    alipay: RunningSim, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.WUYE_QR_MICROPAY_TIMEOUT_S = 5
    order, _h = _order()
    auth = alipay.sim.payment_code(funding="balance", confirm=True)
    clock = [0.0]

    def tick(seconds: float) -> None:
        clock[0] += seconds

    with pytest.raises(qr.QrDeclined):
        qr.qr_scan(order, auth, now=timezone.now(), sleep=tick, clock=lambda: clock[0])

    trade = next(t for t in alipay.sim.trades.values() if t.status != "PRECREATED")
    assert trade.status == "TRADE_CLOSED"
    assert not Payment.objects.filter(order_id=order.pk).exists()


def test_a_payment_that_succeeds_while_our_request_times_out_is_found_by_query(
    alipay: RunningSim,
) -> None:
    order, _h = _order()
    auth = alipay.sim.payment_code(funding="bankcard")
    alipay.sim.faults.timeout_next = 1
    alipay.sim.faults.timeout_s = 1.5  # longer than the client's 1 s

    payment = qr.qr_scan(order, auth, now=timezone.now(), sleep=lambda s: None)

    assert payment.amount_fen == order.amount_fen
    assert payment.funding_source == "银行卡/BANKCARD"


def test_an_unknown_trade_is_cancelled_and_a_late_payment_with_it_is_refused(
    alipay: RunningSim,
) -> None:
    chan = AlipayChannel()
    assert chan.close("WY-NEVER-SEEN-1") == ChannelResult.PROCESSED  # close → cancel
    auth = alipay.sim.payment_code(funding="balance")
    late = chan.pay(
        PaymentRequest(
            order_id=1,
            amount_fen=100,
            idempotency_key="WY-NEVER-SEEN-1",
            community_id=1,
            unit_id=1,
            cashier_id=None,
            extra={"auth_code": auth},
        )
    )
    assert late.result == ChannelResult.DECLINED


def test_cancel_gives_back_a_payment_that_went_through(alipay: RunningSim) -> None:
    chan = AlipayChannel()
    auth = alipay.sim.payment_code(funding="balance")
    req = PaymentRequest(
        order_id=1,
        amount_fen=500,
        idempotency_key="WY-CANCEL-1",
        community_id=1,
        unit_id=1,
        cashier_id=None,
        extra={"auth_code": auth},
    )
    assert chan.pay(req).result == ChannelResult.PROCESSED

    assert chan.cancel("WY-CANCEL-1") == ChannelResult.PROCESSED

    assert alipay.sim.trades["WY-CANCEL-1"].refunded_fen == 500
    assert chan.query("WY-CANCEL-1").result == ChannelResult.DECLINED


def test_an_answer_with_a_bad_signature_is_never_trusted(alipay: RunningSim) -> None:
    order, _h = _order()
    alipay.sim.faults.bad_response_signature = 1
    with pytest.raises(ChannelUnavailable, match="signature"):
        qr.qr_start(order, now=timezone.now())


def test_a_partial_refund_goes_back_through_alipay(alipay: RunningSim) -> None:
    order, h = _order(10_000)
    code = qr.qr_start(order, now=timezone.now())
    alipay.sim.qr_pay(code.code_url, funding="huabei")
    alipay.deliver()
    payment = _paid(order)

    row = qr.qr_refund(
        payment=payment,
        amount_fen=2_500,
        reason="多收",
        requested_by=h.finance,
        approved_by=h.finance,
        now=timezone.now(),
    )

    assert row.state == "succeeded"
    assert alipay.sim.trades[code.out_trade_no].refunded_fen == 2_500
    payment.refresh_from_db()
    assert payment.refundable_fen == 7_500
    alipay.deliver()  # Alipay's refund notification: already done, posts nothing more
    payment.refresh_from_db()
    assert payment.refundable_fen == 7_500
    assert AlipayChannel().refund_query(row.out_refund_no).result == ChannelResult.PROCESSED
    assert h.finance.memberships.filter(role=Role.FINANCE).exists()


def test_the_daily_bill_reads_back_through_a_gbk_reader(alipay: RunningSim) -> None:
    order, _h = _order(10_000)
    code = qr.qr_start(order, now=timezone.now())
    alipay.sim.qr_pay(code.code_url, funding="huabei")
    trade = alipay.sim.trades[code.out_trade_no]

    def fee(t, amount_fen, on):  # type: ignore[no-untyped-def]
        return amount_fen * 6 // 1000  # 0.6 %

    data = bill_zip(alipay.sim, alipay.sim.now().date(), fee, exported_at=alipay.sim.now())

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (name,) = zf.namelist()
        text = zf.read(name).decode("gbk")
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询"
    table = [ln for ln in lines if not ln.startswith("#")]
    assert table[0].startswith("支付宝交易号,商户订单号,业务类型")
    row = table[1].split(",")
    assert row[0] == trade.trade_no and row[1] == code.out_trade_no and row[2] == "交易"
    assert row[11] == "100.00" and row[12] == "100.00" and row[22] == "-0.60"
    assert lines[-3] == "#交易合计：1笔，商家实收共100.00元，商家优惠共0.00元"
    assert lines[-2] == "#退款合计：0笔，商家实收共0.00元，商家优惠共0.00元"
