import logging

import pytest

from wuye.billing.models import Allocation, Bill
from wuye.billing.prepayments import prepayment_deposit
from wuye.billing.selectors import prepaid_balance, receivable_mismatches
from wuye.ledger.models import JournalEntry
from wuye.payments.models import Order, Payment, PrepaidCard
from wuye.payments.services import (
    PaymentDeclined,
    PrepaidCardError,
    PrepaidCardLocked,
    order_create,
    prepaid_card_issue,
    prepaid_card_password_reset,
    prepaid_pay,
)
from wuye.payments.tests.helpers import NOW, household, key
from wuye.testing.factories import make_fee_item

pytestmark = pytest.mark.django_db


def _deposit(hh, amount, fee_item=None):
    prepayment_deposit(
        unit=hh.unit,
        amount_fen=amount,
        on_date=NOW.date(),
        reference="t",
        idempotency_key=key("dep"),
        fee_item=fee_item,
        cashier_id=hh.cashier.pk,
    )


def _order(hh, bills, **kw):
    return order_create(
        unit=hh.unit,
        bill_ids=[b.pk for b in bills],
        channel="prepaid",
        idempotency_key=key(),
        cashier=hh.cashier,
        now=NOW,
        **kw,
    )


def test_prepaid_balance_pays_bills_earmarked_money_first():
    hh = household()
    parking = make_fee_item(hh.community.company, name="停车费", kind="parking")
    fee, park = hh.bill(10_000), hh.bill(3_000, fee_item=parking)
    _deposit(hh, 2_000, fee_item=parking)
    _deposit(hh, 20_000)

    payment = prepaid_pay(order=_order(hh, [fee, park]), now=NOW)

    assert payment.amount_fen == 13_000
    assert prepaid_balance(unit_id=hh.unit.pk, fee_item_id=parking.pk) == 0
    assert prepaid_balance(unit_id=hh.unit.pk, fee_item_id=None) == 20_000 - 11_000
    assert set(
        Allocation.objects.filter(reference=f"payment:{payment.pk}").values_list(
            "source", flat=True
        )
    ) == {"prepaid"}
    assert receivable_mismatches() == []


def test_a_short_balance_is_declined_and_posts_nothing():
    hh = household(late_fee_enabled=True, late_fee_daily_ppm=1_000)
    bill = hh.bill(10_000)
    _deposit(hh, 5_000)
    order = _order(hh, [bill])
    entries, bills = JournalEntry.objects.count(), Bill.objects.count()

    with pytest.raises(PaymentDeclined):
        prepaid_pay(order=order, now=NOW)

    assert (JournalEntry.objects.count(), Bill.objects.count()) == (entries, bills)
    assert prepaid_balance(unit_id=hh.unit.pk) == 5_000
    assert Order.objects.get(pk=order.pk).state == Order.State.PENDING


def test_the_card_and_its_password_open_the_balance(caplog):
    hh = household()
    bill = hh.bill(10_000)
    _deposit(hh, 10_000)
    card = prepaid_card_issue(unit=hh.unit, card_no="8800 1234 5678", password="246810", now=NOW)
    assert card.password_hash != "246810" and "246810" not in card.password_hash

    with caplog.at_level(logging.DEBUG):
        payment = prepaid_pay(
            order=_order(hh, [bill]), now=NOW, card_no=";880012345678=2612?", password="246810"
        )

    assert payment.amount_fen == 10_000
    assert "246810" not in caplog.text


def test_five_wrong_passwords_lock_the_card_until_finance_resets_it():
    hh = household()
    bill = hh.bill(10_000)
    _deposit(hh, 10_000)
    card = prepaid_card_issue(unit=hh.unit, card_no="880012345678", password="246810", now=NOW)
    order = _order(hh, [bill])

    for left in (4, 3, 2, 1):
        with pytest.raises(PrepaidCardError, match=f"还可尝试 {left} 次") as wrong:
            prepaid_pay(order=order, now=NOW, card_no="880012345678", password="000000")
        assert "000000" not in str(wrong.value)
    with pytest.raises(PrepaidCardLocked):
        prepaid_pay(order=order, now=NOW, card_no="880012345678", password="000000")
    with pytest.raises(PrepaidCardLocked):  # even the right password now
        prepaid_pay(order=order, now=NOW, card_no="880012345678", password="246810")

    assert PrepaidCard.objects.get(pk=card.pk).failed_tries == 5
    assert Payment.objects.count() == 0

    prepaid_card_password_reset(card=card, password="135790", reset_by=hh.finance, now=NOW)
    payment = prepaid_pay(order=order, now=NOW, card_no="880012345678", password="135790")
    assert payment.amount_fen == 10_000


def test_a_right_password_resets_the_count_and_a_cashier_cannot_reset_a_card():
    from wuye.accounts.selectors import AccessDenied

    hh = household()
    card = prepaid_card_issue(unit=hh.unit, card_no="880012345679", password="246810", now=NOW)
    bill = hh.bill(100)
    _deposit(hh, 100)
    order = _order(hh, [bill])
    with pytest.raises(PrepaidCardError):
        prepaid_pay(order=order, now=NOW, card_no="880012345679", password="111111")

    prepaid_pay(order=order, now=NOW, card_no="880012345679", password="246810")

    assert PrepaidCard.objects.get(pk=card.pk).failed_tries == 0
    with pytest.raises(AccessDenied):
        prepaid_card_password_reset(card=card, password="135790", reset_by=hh.cashier, now=NOW)


def test_another_households_card_is_refused():
    hh, other = household(), household()
    prepaid_card_issue(unit=other.unit, card_no="880099998888", password="246810", now=NOW)
    bill = hh.bill(100)
    _deposit(hh, 100)

    with pytest.raises(PrepaidCardError, match="无效"):
        prepaid_pay(order=_order(hh, [bill]), now=NOW, card_no="880099998888", password="246810")


@pytest.mark.parametrize("password", ["12345", "abcdef", "1234567"])
def test_a_card_password_is_six_digits(password):
    hh = household()
    with pytest.raises(PrepaidCardError):
        prepaid_card_issue(unit=hh.unit, card_no="880012345670", password=password, now=NOW)
