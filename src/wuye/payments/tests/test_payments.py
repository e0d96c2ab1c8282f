from datetime import date

import pytest

from wuye.billing.latefees import late_fee_as_of
from wuye.billing.models import Allocation, Bill
from wuye.billing.selectors import prepaid_balance, receivable_mismatches
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.estates.models import Community
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.payments.models import Order, Payment, PaymentAttempt
from wuye.payments.services import (
    InsufficientTender,
    PaymentDeclined,
    PaymentNotFinal,
    cash_pay,
    order_create,
    payment_capture,
)
from wuye.payments.tests.fakes import FAKE_CHANNELS
from wuye.payments.tests.helpers import NOW, household, key
from wuye.receipts.models import Receipt

pytestmark = pytest.mark.django_db


@pytest.fixture
def card(settings):
    settings.WUYE_CHANNELS = FAKE_CHANNELS


def _order(hh, bills, **kw):
    kw.setdefault("channel", "cash")
    kw.setdefault("idempotency_key", key())
    return order_create(
        unit=hh.unit, bill_ids=[b.pk for b in bills], cashier=hh.cashier, now=NOW, **kw
    )


def _lines(entry):
    return sorted(
        (line.account, line.amount_fen, line.household_id, line.fee_item_id, line.cashier_id)
        for line in JournalLine.objects.filter(entry=entry)
    )


def test_cash_settles_the_bills_gives_change_and_posts_cash_against_receivable():
    hh = household()
    first, second = hh.bill(10_000, month=1), hh.bill(20_000, month=2)
    order = _order(hh, [first, second])

    payment = cash_pay(order=order, tendered_fen=50_000, now=NOW)

    assert (payment.amount_fen, payment.tendered_fen, payment.change_fen) == (
        30_000,
        50_000,
        20_000,
    )
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID
    assert [b.outstanding_fen for b in Bill.objects.filter(pk__in=[first.pk, second.pk])] == [0, 0]
    assert _lines(payment.entry) == sorted(
        [
            ("cash", 30_000, None, None, hh.cashier.pk),
            ("receivable", -10_000, hh.unit.pk, hh.item.pk, None),
            ("receivable", -20_000, hh.unit.pk, hh.item.pk, None),
        ]
    )
    assert JournalLine.objects.filter(entry=payment.entry, account="cash").get().channel == "cash"
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=hh.unit.pk) == 0
    assert sorted(
        Allocation.objects.filter(reference=f"payment:{payment.pk}").values_list(
            "bill_id", "amount_fen"
        )
    ) == [(first.pk, 10_000), (second.pk, 20_000)]
    receipt = Receipt.objects.get(number=payment.receipt_number)
    assert receipt.amount_fen == 30_000
    assert receipt.content["change_fen"] == 20_000


def test_tendering_less_than_the_amount_is_refused_and_posts_nothing():
    hh = household()
    order = _order(hh, [hh.bill(10_000)])
    entries = JournalEntry.objects.count()

    with pytest.raises(InsufficientTender):
        cash_pay(order=order, tendered_fen=9_999, now=NOW)

    assert JournalEntry.objects.count() == entries
    assert Payment.objects.count() == 0
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


def test_paying_the_same_order_twice_charges_once():
    hh = household()
    order = _order(hh, [hh.bill(10_000)])

    a = cash_pay(order=order, tendered_fen=10_000, now=NOW)
    b = cash_pay(order=order, tendered_fen=20_000, now=NOW)

    assert a.pk == b.pk
    assert Payment.objects.count() == 1
    assert account_balance(account=AccountKind.CASH, channel="cash") == 10_000


def test_a_partial_amount_goes_oldest_due_first_late_fee_before_principal():
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    jan, feb = hh.bill(10_000, month=1), hh.bill(20_000, month=2)
    on = date(2026, 3, 1)
    jan_fee, feb_fee = late_fee_as_of(bill=jan, as_of=on), late_fee_as_of(bill=feb, as_of=on)
    assert (jan_fee, feb_fee) == (590, 560)  # 59 and 28 days at 0.1 %/day
    full = _order(hh, [jan, feb], idempotency_key="quote")
    assert full.amount_fen == 30_000 + 590 + 560
    from wuye.payments.services import order_cancel

    order_cancel(order=full, now=NOW)

    payment = cash_pay(
        order=_order(hh, [jan, feb], amount_fen=11_500), tendered_fen=11_500, now=NOW
    )

    moved = list(
        Allocation.objects.filter(reference=f"payment:{payment.pk}")
        .order_by("pk")
        .values_list("bill__kind", "bill__parent_id", "bill_id", "amount_fen")
    )
    jan_late = Bill.objects.get(parent=jan, kind=Bill.Kind.LATE_FEE)
    feb_late = Bill.objects.get(parent=feb, kind=Bill.Kind.LATE_FEE)
    assert moved == [
        ("late_fee", jan.pk, jan_late.pk, 590),
        ("regular", None, jan.pk, 10_000),
        ("late_fee", feb.pk, feb_late.pk, 560),
        ("regular", None, feb.pk, 350),
    ]
    assert Bill.objects.get(pk=feb.pk).outstanding_fen == 19_650
    assert payment.allocated_fen == 11_500
    assert receivable_mismatches() == []
    assert unbalanced_entry_ids() == []
    assert "尚欠" in Receipt.objects.get(number=payment.receipt_number).content["allocation_note"]


def test_principal_first_when_configured(settings):
    settings.WUYE_ALLOCATE_LATE_FEE_FIRST = False
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    jan = hh.bill(10_000, month=1)

    payment = cash_pay(order=_order(hh, [jan], amount_fen=10_000), tendered_fen=10_000, now=NOW)

    assert list(
        Allocation.objects.filter(reference=f"payment:{payment.pk}")
        .order_by("pk")
        .values_list("bill__kind", "amount_fen")
    ) == [("regular", 10_000)]
    assert Bill.objects.get(parent=jan).outstanding_fen == 590


def test_an_amount_above_the_bills_becomes_earmarked_prepaid_balance():
    hh = household()
    bill = hh.bill(10_000)
    order = _order(hh, [bill], amount_fen=15_000, prepay_fee_item_id=hh.item.pk)

    payment = cash_pay(order=order, tendered_fen=15_000, now=NOW)

    assert (payment.allocated_fen, payment.prepaid_fen, payment.surplus_to) == (10_000, 5_000, "")
    assert prepaid_balance(unit_id=hh.unit.pk, fee_item_id=hh.item.pk) == 5_000
    receipt = Receipt.objects.get(number=payment.receipt_number)
    assert receipt.content["prepaid_credit_fen"] == 5_000


def test_capture_is_idempotent_on_the_channel_reference(card):
    hh = household()
    order = _order(hh, [hh.bill(10_000)], channel="fakecard")
    answer = PaymentResponse(
        ChannelResult.PROCESSED,
        10_000,
        "RRN1",
        details={"rrn": "RRN1", "masked_pan": "622848******1234", "pin_block": "SECRET"},
    )

    a = payment_capture(order=order, response=answer, now=NOW)
    b = payment_capture(order=order, response=answer, now=NOW)

    assert a.pk == b.pk
    assert (a.masked_pan, a.rrn) == ("622848******1234", "RRN1")
    assert "SECRET" not in str(list(PaymentAttempt.objects.values_list("details", flat=True)))
    assert account_balance(account=AccountKind.CLEARING, channel="fakecard") == 10_000


@pytest.mark.parametrize(
    ("policy", "prepaid", "refund_due"),
    [(Community.SurplusPolicy.PREPAY, 10_000, 0), (Community.SurplusPolicy.REFUND, 0, 10_000)],
)
def test_money_arriving_twice_for_a_paid_order_follows_the_surplus_policy(
    card, policy, prepaid, refund_due
):
    hh = household()
    Community.objects.filter(pk=hh.community.pk).update(surplus_policy=policy)
    bill = hh.bill(10_000)
    order = _order(hh, [bill], channel="fakecard")
    payment_capture(
        order=order, response=PaymentResponse(ChannelResult.PROCESSED, 10_000, "A"), now=NOW
    )

    second = payment_capture(
        order=order, response=PaymentResponse(ChannelResult.PROCESSED, 10_000, "B"), now=NOW
    )

    assert (second.allocated_fen, second.prepaid_fen, second.refund_due_fen) == (
        0,
        prepaid,
        refund_due,
    )
    assert second.surplus_to == ("refund" if refund_due else "prepaid")
    assert Bill.objects.get(pk=bill.pk).paid_fen == 10_000
    assert prepaid_balance(unit_id=hh.unit.pk) == prepaid
    assert -account_balance(account=AccountKind.REFUND_PAYABLE, household_id=hh.unit.pk) == (
        refund_due
    )
    assert account_balance(account=AccountKind.CLEARING, channel="fakecard") == 20_000


def test_a_bill_paid_elsewhere_meanwhile_turns_the_payment_into_surplus(card):
    hh = household()
    bill = hh.bill(10_000)
    order = _order(hh, [bill], channel="fakecard")
    from wuye.billing.tests.helpers import pay_bill

    pay_bill(bill=bill, amount_fen=10_000, on_date=date(2026, 2, 1))

    payment = payment_capture(
        order=order, response=PaymentResponse(ChannelResult.PROCESSED, 10_000, "X"), now=NOW
    )

    assert (payment.allocated_fen, payment.prepaid_fen) == (0, 10_000)
    assert receivable_mismatches() == []


@pytest.mark.parametrize(
    ("result", "error"),
    [
        (ChannelResult.DECLINED, PaymentDeclined),
        (ChannelResult.UNDEFINED, PaymentNotFinal),
        (ChannelResult.PENDING, PaymentNotFinal),
    ],
)
def test_an_answer_other_than_processed_records_the_attempt_and_posts_nothing(card, result, error):
    hh = household()
    order = _order(hh, [hh.bill(10_000)], channel="fakecard")
    entries = JournalEntry.objects.count()

    with pytest.raises(error) as raised:
        payment_capture(
            order=order, response=PaymentResponse(result, 10_000, "", message="超时"), now=NOW
        )

    attempt = PaymentAttempt.objects.get(pk=raised.value.attempt_id)
    assert attempt.result == result
    assert JournalEntry.objects.count() == entries
    assert Payment.objects.count() == 0
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


@pytest.mark.parametrize(
    "target",
    [
        "wuye.payments.services.Allocation.objects.bulk_create",
        "wuye.payments.services.Bill.objects.bulk_update",
        "wuye.payments.services.PaymentAttempt.objects.create",
        "wuye.payments.services.receipt_issue_for_tests",
    ],
)
def test_a_failure_after_the_ledger_write_leaves_nothing_behind(monkeypatch, target):
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    bill = hh.bill(10_000)
    order = _order(hh, [bill], amount_fen=15_000)
    before = {
        "entries": JournalEntry.objects.count(),
        "lines": JournalLine.objects.count(),
        "bills": Bill.objects.count(),
        "allocations": Allocation.objects.count(),
        "receipts": Receipt.objects.count(),
    }

    def boom(*args, **kwargs):
        raise RuntimeError("injected")

    if target.endswith("receipt_issue_for_tests"):
        monkeypatch.setattr("wuye.receipts.services.receipt_issue", boom)
    else:
        obj, _, attr = target.rpartition(".")
        monkeypatch.setattr(f"{obj}.{attr}", boom)

    with pytest.raises(RuntimeError, match="injected"):
        cash_pay(order=order, tendered_fen=20_000, now=NOW)

    assert {
        "entries": JournalEntry.objects.count(),
        "lines": JournalLine.objects.count(),
        "bills": Bill.objects.count(),
        "allocations": Allocation.objects.count(),
        "receipts": Receipt.objects.count(),
    } == before
    assert Payment.objects.count() == 0
    assert Bill.objects.get(pk=bill.pk).paid_fen == 0
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


def test_an_undefined_answer_is_queued_and_an_inquiry_posts_it_once(card, monkeypatch):
    from wuye.payments.selectors import attempts_unresolved
    from wuye.payments.services import payment_inquire
    from wuye.payments.tests.fakes import FakeCardChannel

    hh = household()
    order = _order(hh, [hh.bill(10_000)], channel="fakecard")
    with pytest.raises(PaymentNotFinal):
        payment_capture(
            order=order, response=PaymentResponse(ChannelResult.UNDEFINED, 10_000, ""), now=NOW
        )
    [attempt] = attempts_unresolved()
    monkeypatch.setattr(
        FakeCardChannel,
        "query",
        lambda self, ref: PaymentResponse(ChannelResult.PROCESSED, 10_000, "RRN-LATE"),
    )

    first = payment_inquire(attempt=attempt, now=NOW)
    second = payment_inquire(attempt=attempt, now=NOW)

    assert first is not None and second is not None and first.pk == second.pk
    assert attempts_unresolved() == []
    assert Payment.objects.count() == 1
    assert Order.objects.get(pk=order.pk).state == Order.State.PAID


def test_a_full_card_number_from_a_channel_is_masked_before_it_is_stored(card):
    hh = household()
    order = _order(hh, [hh.bill(10_000)], channel="fakecard")
    answer = PaymentResponse(
        ChannelResult.PROCESSED, 10_000, "RRN7", details={"masked_pan": "6228480402564890018"}
    )

    payment = payment_capture(order=order, response=answer, now=NOW)

    assert payment.masked_pan == "622848*********0018"
    assert "6228480402564890018" not in str(
        list(PaymentAttempt.objects.values_list("details", flat=True))
    )
    assert "6228480402564890018" not in str(Receipt.objects.get().content)


def test_the_generic_capture_refuses_the_prepaid_channel():
    from wuye.payments.services import PaymentError

    hh = household()
    order = _order(hh, [hh.bill(10_000)], channel="prepaid")
    with pytest.raises(PaymentError):
        payment_capture(
            order=order, response=PaymentResponse(ChannelResult.PROCESSED, 10_000, "P"), now=NOW
        )
