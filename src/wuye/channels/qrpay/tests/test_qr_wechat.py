"""QR payments through the real WeChat Pay simulator, with fault injection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from wuye.billing.models import Bill
from wuye.channels.qrpay import services
from wuye.channels.qrpay.models import QrException, QrNotification, QrRefund, QrTrade
from wuye.channels.wechat.adapter import WechatPayChannel
from wuye.estates.models import Community
from wuye.ledger.models import JournalEntry
from wuye.payments.models import Order, Payment, Refund
from wuye.payments.tests.helpers import household
from wuye.sims.wechat.server import WechatSim

from .helpers import deliver, post, wechat_order

pytestmark = pytest.mark.django_db(transaction=False)


def _paid_qr(sim: WechatSim, funding: str = "balance") -> tuple[Any, Order, Bill]:
    h = household()
    bill = h.bill(12800)
    order = wechat_order(h, [bill.pk])
    code = services.qr_start(order, now=timezone.now())
    status, _data = sim.wallet_pay(code.code_url, funding)
    assert status == 200
    return h, order, bill


def test_a_qr_paid_by_debit_card_settles_the_bill_on_the_notification(
    wechat_sim: WechatSim,
) -> None:
    h, order, bill = _paid_qr(wechat_sim, "debit")

    responses = deliver(wechat_sim)

    assert [r.status_code for r in responses] == [200]
    assert responses[0].json()["code"] == "SUCCESS"
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    payment = Payment.objects.get(order=order)
    assert payment.amount_fen == order.amount_fen
    assert payment.funding_source == "储蓄卡/CMB_DEBIT"
    assert payment.reference.startswith("4200") and len(payment.reference) == 28
    from wuye.receipts.models import Receipt

    receipt = Receipt.objects.get(community=h.community, number=payment.receipt_number)
    assert "储蓄卡/CMB_DEBIT" in str(receipt.content)


def test_a_lost_notification_is_recovered_by_the_poll_job(wechat_sim: WechatSim) -> None:
    wechat_sim.faults.lose_notifications = 1
    _h, order, bill = _paid_qr(wechat_sim)
    assert deliver(wechat_sim) == []
    assert services.qr_poll_due(now=timezone.now())["recovered"] == 0  # not overdue yet

    counts = services.qr_poll_due(now=timezone.now() + timedelta(seconds=61))

    assert counts["recovered"] == 1
    bill.refresh_from_db()
    assert bill.outstanding_fen == 0
    trade = QrTrade.objects.get(order=order)
    assert trade.state == QrTrade.State.PAID and trade.recovered_by_query


def test_the_same_notification_ten_times_posts_once(wechat_sim: WechatSim) -> None:
    wechat_sim.faults.duplicate_notifications = 1
    _h, order, _bill = _paid_qr(wechat_sim)
    entries_before = JournalEntry.objects.count()

    responses = deliver(wechat_sim)

    assert len(responses) == 10 and {r.status_code for r in responses} == {200}
    assert Payment.objects.filter(order=order).count() == 1
    assert JournalEntry.objects.count() == entries_before + 1
    note = QrNotification.objects.get(out_trade_no=QrTrade.objects.get(order=order).out_trade_no)
    assert note.times == 10 and note.outcome == QrNotification.Outcome.POSTED


def test_a_forged_notification_is_rejected_and_posts_nothing(wechat_sim: WechatSim) -> None:
    wechat_sim.faults.bad_signature_notifications = 1
    _h, order, bill = _paid_qr(wechat_sim)

    responses = deliver(wechat_sim)

    assert [r.status_code for r in responses] == [401]
    assert not Payment.objects.filter(order=order).exists()
    bill.refresh_from_db()
    assert bill.outstanding_fen == 12800
    assert QrNotification.objects.filter(outcome=QrNotification.Outcome.REJECTED).count() == 1


def test_a_tampered_notification_body_is_rejected(wechat_sim: WechatSim) -> None:
    _h, order, _bill = _paid_qr(wechat_sim)
    (item,) = wechat_sim.outbox_take()
    item.body = item.body.replace(b'"summary":"', b'"summary":"x')

    assert post(item).status_code == 401
    assert not Payment.objects.filter(order=order).exists()


def test_a_notification_whose_amount_differs_posts_nothing_and_is_an_exception(
    wechat_sim: WechatSim,
) -> None:
    h = household()
    bill = h.bill(12800)
    order = wechat_order(h, [bill.pk])
    code = services.qr_start(order, now=timezone.now())
    wechat_sim.faults.lose_notifications = 1
    wechat_sim.wallet_pay(code.code_url)
    real = wechat_sim.transaction(wechat_sim.state.orders[code.out_trade_no])
    real["amount"] = {"total": 1, "payer_total": 1, "currency": "CNY"}
    headers, body = wechat_sim.notification("TRANSACTION.SUCCESS", "transaction", real, "支付成功")
    from wuye.sims.wechat.server import Outgoing

    response = post(Outgoing("", headers, body))

    assert response.status_code == 200  # acknowledged: recorded for reconciliation
    assert not Payment.objects.filter(order=order).exists()
    exc = QrException.objects.get(out_trade_no=code.out_trade_no)
    assert (exc.kind, exc.expected_fen, exc.reported_fen) == ("amount", 12800, 1)


def _double_payment(sim: WechatSim, policy: str) -> tuple[Order, list[Payment]]:
    h = household()
    Community.objects.filter(pk=h.community.pk).update(surplus_policy=policy)
    bill = h.bill(12800)
    order = wechat_order(h, [bill.pk])
    now = timezone.now()
    first = services.qr_start(order, now=now)
    second = services.qr_start(order, now=now + timedelta(minutes=16))  # first one expired here
    assert first.out_trade_no != second.out_trade_no
    sim.wallet_pay(first.code_url)
    sim.wallet_pay(second.code_url)
    deliver(sim)
    return order, list(Payment.objects.filter(order=order).order_by("pk"))


def test_a_double_payment_becomes_prepaid_balance_by_policy(wechat_sim: WechatSim) -> None:
    _order, (first, second) = _double_payment(wechat_sim, Community.SurplusPolicy.PREPAY)

    assert first.allocated_fen == 12800
    assert (second.allocated_fen, second.prepaid_fen, second.refund_due_fen) == (0, 12800, 0)
    assert not QrRefund.objects.exists()


def test_a_double_payment_is_refunded_through_wechat_by_policy(wechat_sim: WechatSim) -> None:
    _order, (first, second) = _double_payment(wechat_sim, Community.SurplusPolicy.REFUND)

    second.refresh_from_db()
    assert second.refund_due_fen == 12800
    assert second.state == Payment.State.REFUNDED
    auto = QrRefund.objects.get(payment=second)
    assert auto.automatic and auto.state == QrRefund.State.SUCCEEDED
    assert Refund.objects.get(payment=second).amount_fen == 12800
    sim_refund = next(iter(wechat_sim.state.refunds.values()))
    assert sim_refund["transaction_id"] == second.reference and sim_refund["refund"] == 12800
    first.refresh_from_db()
    assert first.state == Payment.State.SUCCEEDED


def test_a_payment_code_left_userpaying_is_polled_until_paid(wechat_sim: WechatSim) -> None:
    wechat_sim.faults.userpaying_queries = 2
    h = household()
    bill = h.bill(5000)
    order = wechat_order(h, [bill.pk])
    code = wechat_sim.paycode("credit", "password")

    payment = services.qr_scan(order, code, now=timezone.now(), sleep=lambda s: None)

    assert payment.amount_fen == 5000
    assert payment.funding_source == "信用卡/CMB_CREDIT"
    assert QrTrade.objects.get(order=order).kind == QrTrade.Kind.MICROPAY


def test_a_payment_code_never_confirmed_is_reversed_after_the_timeout(
    wechat_sim: WechatSim, settings: Any
) -> None:
    settings.WUYE_QR_MICROPAY_TIMEOUT_S = 0.3
    h = household()
    bill = h.bill(5000)
    order = wechat_order(h, [bill.pk])
    code = wechat_sim.paycode("balance", "password")

    with pytest.raises(services.QrDeclined):
        services.qr_scan(order, code, now=timezone.now())

    trade = QrTrade.objects.get(order=order)
    assert trade.state == QrTrade.State.CLOSED
    assert wechat_sim.state.orders[trade.out_trade_no]["trade_state"] == "REVOKED"
    assert not Payment.objects.filter(order=order).exists()
    order.refresh_from_db()
    assert order.state == Order.State.PENDING  # the cashier may try again


def test_a_payment_code_that_succeeds_while_the_request_times_out_is_posted(
    wechat_sim: WechatSim, settings: Any
) -> None:
    settings.WUYE_WECHAT_TIMEOUT_S = 0.5
    wechat_sim.faults.timeout_requests = 1
    wechat_sim.faults.timeout_s = 1.5
    h = household()
    bill = h.bill(5000)
    order = wechat_order(h, [bill.pk])

    payment = services.qr_scan(order, wechat_sim.paycode(), now=timezone.now())

    assert payment.amount_fen == 5000
    assert Payment.objects.filter(order=order).count() == 1


def test_a_refused_payment_code_posts_nothing(wechat_sim: WechatSim) -> None:
    h = household()
    bill = h.bill(5000)
    order = wechat_order(h, [bill.pk])

    with pytest.raises(services.QrDeclined, match="NOTENOUGH"):
        services.qr_scan(order, wechat_sim.paycode("balance", "poor"), now=timezone.now())
    assert not Payment.objects.filter(order=order).exists()


def test_a_malformed_payment_code_is_refused_before_calling_wechat(wechat_sim: WechatSim) -> None:
    h = household()
    order = wechat_order(h, [h.bill(5000).pk])

    with pytest.raises(services.QrError, match="16-24"):
        services.qr_scan(order, "12ab", now=timezone.now())
    assert not QrTrade.objects.exists()


def test_a_partial_refund_goes_through_wechat_and_its_notification_posts_nothing_more(
    wechat_sim: WechatSim,
) -> None:
    h, order, _bill = _paid_qr(wechat_sim)
    deliver(wechat_sim)
    payment = Payment.objects.get(order=order)

    row = services.qr_refund(
        payment=payment,
        amount_fen=2800,
        reason="多收",
        requested_by=h.finance,
        approved_by=h.finance,
        now=timezone.now(),
    )
    refunds_after = Refund.objects.count()
    responses = deliver(wechat_sim)  # REFUND.SUCCESS

    assert row.state == QrRefund.State.SUCCEEDED and row.refund is not None
    assert [r.status_code for r in responses] == [200]
    assert Refund.objects.count() == refunds_after == 1
    payment.refresh_from_db()
    assert (payment.state, payment.refunded_fen) == (Payment.State.PARTIALLY_REFUNDED, 2800)
    with pytest.raises(services.QrError, match="最多可退"):
        services.qr_refund(
            payment=payment,
            amount_fen=10001,
            reason="x",
            requested_by=h.finance,
            approved_by=h.finance,
            now=timezone.now(),
        )


def test_an_expired_unpaid_qr_is_closed_and_its_order_cancelled(wechat_sim: WechatSim) -> None:
    h = household()
    bill = h.bill(5000)
    order = wechat_order(h, [bill.pk])
    code = services.qr_start(order, now=timezone.now())

    counts = services.qr_poll_due(now=timezone.now() + timedelta(minutes=16))

    assert counts["closed"] == 1
    assert wechat_sim.state.orders[code.out_trade_no]["trade_state"] == "CLOSED"
    order.refresh_from_db()
    assert order.state == Order.State.CANCELLED


def test_cancel_at_the_counter_closes_the_qr(wechat_sim: WechatSim) -> None:
    h = household()
    order = wechat_order(h, [h.bill(5000).pk])
    code = services.qr_start(order, now=timezone.now())

    after = services.qr_cancel(order, now=timezone.now())

    assert after.state == Order.State.CANCELLED
    assert wechat_sim.state.orders[code.out_trade_no]["trade_state"] == "CLOSED"


def test_cancel_of_a_qr_paid_meanwhile_posts_it_instead(wechat_sim: WechatSim) -> None:
    wechat_sim.faults.lose_notifications = 1
    _h, order, _bill = _paid_qr(wechat_sim)

    after = services.qr_cancel(order, now=timezone.now())

    assert after.state == Order.State.PAID
    assert Payment.objects.filter(order=order).count() == 1


def test_the_same_page_twice_shows_the_same_code(wechat_sim: WechatSim) -> None:
    h = household()
    order = wechat_order(h, [h.bill(5000).pk])
    now = timezone.now()

    assert services.qr_start(order, now=now) == services.qr_start(order, now=now)
    assert QrTrade.objects.filter(order=order).count() == 1


def test_an_unreachable_wechat_is_a_clear_error_and_leaves_nothing_open(
    wechat_sim: WechatSim, settings: Any
) -> None:
    settings.WUYE_WECHAT_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    h = household()
    order = wechat_order(h, [h.bill(5000).pk])

    with pytest.raises(services.ChannelUnavailable):
        services.qr_start(order, now=timezone.now())
    assert QrTrade.objects.get(order=order).state == QrTrade.State.FAILED


def test_a_request_signed_with_another_key_is_refused_by_the_simulator(
    wechat_sim: WechatSim,
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    chan = WechatPayChannel()
    client = chan.client()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    object.__setattr__(
        client, "keys", type(client.keys)(**{**client.keys.__dict__, "merchant_key": other})
    )

    reply = client.v3("GET", "/v3/pay/transactions/out-trade-no/WYX?mchid=1900000109")

    assert reply.status == 401 and reply.body["code"] == "SIGN_ERROR"


def test_a_refund_wuye_did_not_record_is_an_exception_for_finance(wechat_sim: WechatSim) -> None:
    _h, order, _bill = _paid_qr(wechat_sim)
    deliver(wechat_sim)
    payment = Payment.objects.get(order=order)
    status, _r = wechat_sim.refund(
        {
            "transaction_id": payment.reference,
            "out_refund_no": "RF-ELSEWHERE",
            "notify_url": "http://testserver/pay/wechat/notify/",
            "amount": {"refund": 500, "total": payment.amount_fen, "currency": "CNY"},
        }
    )
    assert status == 200

    assert [r.status_code for r in deliver(wechat_sim)] == [200]

    exc = QrException.objects.get(kind=QrException.Kind.UNRECORDED_REFUND)
    assert exc.reported_fen == 500 and "RF-ELSEWHERE" in exc.message
    assert not Refund.objects.exists()


def test_the_client_certificate_is_used_only_for_secapi_calls(
    wechat_sim: WechatSim, tmp_path: Any
) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    client = WechatPayChannel().client()
    key = client.keys.merchant_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1900012345")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "apiclient_cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    client.client_cert = str(path)

    assert client._tls("/secapi/pay/reverse") is not None
    assert client._tls("/v3/pay/transactions/native") is None
    assert list(tmp_path.iterdir()) == [path]  # the key's temporary file is gone


def test_a_refund_wechat_made_but_wuye_cannot_post_is_put_before_finance(
    wechat_sim: WechatSim, monkeypatch: Any
) -> None:
    from wuye.payments.services import RefundError

    h, order, _bill = _paid_qr(wechat_sim)
    deliver(wechat_sim)
    payment = Payment.objects.get(order=order)

    def refuse(**kw: Any) -> None:
        raise RefundError("最多可退 0.00 元 (预存余额已被使用的部分不能退)")

    monkeypatch.setattr(services, "refund_create", refuse)
    row = services.qr_refund(
        payment=payment,
        amount_fen=1000,
        reason="多收",
        requested_by=h.finance,
        approved_by=h.finance,
        now=timezone.now(),
    )

    assert row.state == QrRefund.State.FAILED and "预存余额" in row.message
    assert QrException.objects.get(kind=QrException.Kind.UNRECORDED_REFUND).reported_fen == 1000
    assert not Refund.objects.exists()


def _processing_refund(sim: WechatSim) -> tuple[Any, Payment, QrRefund]:
    h, order, _bill = _paid_qr(sim)
    deliver(sim)
    payment = Payment.objects.get(order=order)
    sim.faults.processing_refunds = 1
    row = services.qr_refund(
        payment=payment,
        amount_fen=12800,
        reason="重复缴费",
        requested_by=h.finance,
        approved_by=h.finance,
        now=timezone.now(),
    )
    return h, payment, row


def test_a_refund_left_processing_is_finished_by_its_notification(wechat_sim: WechatSim) -> None:
    _h, payment, row = _processing_refund(wechat_sim)
    assert row.state == QrRefund.State.PENDING and not Refund.objects.exists()
    assert services.qr_poll_due(now=timezone.now())["refunds"] == 0  # still processing

    wechat_sim.refund_complete(row.out_refund_no)
    assert [r.status_code for r in deliver(wechat_sim)] == [200]

    row.refresh_from_db()
    payment.refresh_from_db()
    assert row.state == QrRefund.State.SUCCEEDED and row.refund is not None
    assert payment.state == Payment.State.REFUNDED


def test_a_refund_left_processing_is_finished_by_the_poll_job_when_its_notification_is_lost(
    wechat_sim: WechatSim,
) -> None:
    _h, payment, row = _processing_refund(wechat_sim)
    wechat_sim.faults.lose_notifications = 1
    wechat_sim.refund_complete(row.out_refund_no)

    assert services.qr_poll_due(now=timezone.now())["refunds"] == 1

    row.refresh_from_db()
    assert row.state == QrRefund.State.SUCCEEDED
    assert Refund.objects.get(payment=payment).amount_fen == 12800


def test_the_days_trade_bill_downloads_with_its_hash_checked(wechat_sim: WechatSim) -> None:
    _h, order, _bill = _paid_qr(wechat_sim)
    day = timezone.localdate()

    data = WechatPayChannel().trade_bill(day)

    text = data.decode()
    assert text.startswith("交易时间,公众账号ID,商户号")
    assert QrTrade.objects.get(order=order).out_trade_no in text
