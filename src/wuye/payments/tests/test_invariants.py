"""Ledger invariants with payments in the mix (hypothesis, stateful).

Extends the billing state machine (``billing/tests/test_invariants.py``: bills, partial
payments, prepaid deposits and offsets, waivers, late fees, and its invariants after every
step) with the payments module's operations: cash payments of chosen bills in full or in part,
with a prepayment on top; prepaid-balance payments; the same channel answer delivered twice and
money arriving twice for a paid order; refunds, full or partial. Added invariants:

- a payment's parts add up (allocated + prepaid + refund due) and refunds never exceed it;
- a payment's allocations, net of the reversals pointing at them, are never negative, and
  the refunds recorded add up to ``Payment.refunded_fen``;
- the cash on hand is never negative; no bill is ever in two pending orders.
"""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.db.models import Count, Sum
from hypothesis import HealthCheck, event
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)
from hypothesis.stateful import invariant as state_invariant

from wuye.billing.models import Allocation, Bill
from wuye.billing.prepayments import prepayment_deposit
from wuye.billing.tests.helpers import issue_bill
from wuye.billing.tests.test_invariants import START, BillingLedger, amounts
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.ledger.models import AccountKind
from wuye.ledger.selectors import account_balance
from wuye.payments.models import OrderBill, Payment, Refund
from wuye.payments.services import (
    PaymentDeclined,
    PaymentError,
    RefundError,
    cash_pay,
    order_cancel,
    order_create,
    payment_capture,
    prepaid_pay,
    refund_create,
)
from wuye.payments.tests.fakes import FAKE_CHANNELS

fractions = st.integers(min_value=1, max_value=100)


class PaymentsLedger(BillingLedger):
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    @initialize(target=BillingLedger.bills, amounts=st.lists(amounts, min_size=4, max_size=4))
    def some_bills(self, amounts):
        """Start with two bills per household, so payments have something to settle."""
        issued = []
        for i, amount in enumerate(amounts):
            self.revision += 1
            issued.append(
                issue_bill(
                    unit=self.units[i % 2],
                    fee_item=self.fee_items[i // 2],
                    amount_fen=amount,
                    period_start=START,
                    issued_on=self.today,
                    due_date=self.today + timedelta(days=15),
                    revision=self.revision,
                )
            )
        return multiple(*issued)

    def _now(self) -> datetime:
        return datetime.combine(self.today, time(4, 0), tzinfo=UTC)  # noon in Shanghai

    def _key(self) -> str:
        self.n += 1
        return f"inv-{self.n}"

    def _unit(self, picks: list[Bill], unit: int) -> int:
        """The household of the first picked bill (so picks mostly match), else ``unit``."""
        ids = [u.pk for u in self.units]
        return ids.index(picks[0].unit_id) if picks else unit

    def _open(self, unit: int, picks: list[Bill]) -> list[int]:
        ids = {b.pk for b in picks if b.unit_id == self.units[unit].pk}
        return sorted(
            b.pk
            for b in Bill.objects.filter(pk__in=ids, issued_on__lte=self.today)
            if b.outstanding_fen > 0
        )

    def _order(self, unit: int, bill_ids: list[int], channel: str, **kw):
        try:
            return order_create(
                unit=self.units[unit],
                bill_ids=bill_ids,
                channel=channel,
                idempotency_key=self._key(),
                cashier=self.cashier,
                now=self._now(),
                **kw,
            )
        except PaymentError as exc:
            event(f"order refused: {type(exc).__name__}")
            return None

    @rule(
        target=payments,
        unit=st.integers(0, 1),
        picks=st.lists(BillingLedger.bills, max_size=3),
        fraction=st.none() | fractions,
        prepay=st.sampled_from([0, 0, 1_000, 25_000]),
    )
    def cash_payment(self, unit, picks, fraction, prepay):
        unit = self._unit(picks, unit)
        ids = self._open(unit, picks)
        quote = self._order(unit, ids, "cash", prepay_fen=prepay)
        if quote is None:
            return None
        amount = None
        if fraction is not None and fraction < 100:
            order_cancel(order=quote, now=self._now())
            amount = max(1, quote.amount_fen * fraction // 100)
            quote = self._order(
                unit, ids, "cash", amount_fen=amount, prepay_fen=min(prepay, amount)
            )
            if quote is None:
                return None
        payment = cash_pay(order=quote, tendered_fen=quote.amount_fen + 50, now=self._now())
        event("partial cash payment" if amount else "cash payment in full")
        assert payment.change_fen == 50
        return payment

    @rule(
        target=payments,
        unit=st.integers(0, 1),
        picks=st.lists(BillingLedger.bills, max_size=3),
        top_up=st.booleans(),
    )
    def prepaid_payment(self, unit, picks, top_up):
        unit = self._unit(picks, unit)
        order = self._order(unit, self._open(unit, picks), "prepaid")
        if order is None:
            return None
        if top_up:
            self.deposits += 1
            prepayment_deposit(
                unit=self.units[unit],
                amount_fen=order.amount_fen,
                on_date=self.today,
                reference="",
                idempotency_key=f"dep-{self.deposits}",
            )
        try:
            payment = prepaid_pay(order=order, now=self._now())
        except (PaymentDeclined, PaymentError):
            event("prepaid payment declined")
            order_cancel(order=order, now=self._now())
            return None
        event("prepaid payment")
        return payment

    @rule(
        target=payments,
        unit=st.integers(0, 1),
        picks=st.lists(BillingLedger.bills, min_size=1, max_size=2),
        twice=st.booleans(),
    )
    def card_payment_delivered_twice(self, unit, picks, twice):
        unit = self._unit(picks, unit)
        order = self._order(unit, self._open(unit, picks), "fakecard")
        if order is None:
            return None
        first = PaymentResponse(ChannelResult.PROCESSED, order.amount_fen, self._key())
        payment = payment_capture(order=order, response=first, now=self._now())
        assert payment_capture(order=order, response=first, now=self._now()).pk == payment.pk
        if twice:  # the payer paid again: a second, different answer for the same order
            again = PaymentResponse(ChannelResult.PROCESSED, order.amount_fen, self._key())
            double = payment_capture(order=order, response=again, now=self._now())
            assert double.allocated_fen == 0
            event("money arrived twice")
        return payment

    @rule(payment=payments, fraction=fractions, over=st.booleans())
    def refund(self, payment, fraction, over):
        if payment is None:
            return
        payment.refresh_from_db()
        if over:
            before = self._snapshot()
            with pytest.raises(RefundError):
                self._refund(payment, payment.refundable_fen + 1)
            assert self._snapshot() == before
            return
        amount = -(-payment.refundable_fen * fraction // 100)
        if amount <= 0:
            return
        try:
            self._refund(payment, amount)
            event("refund")
        except RefundError:
            event("refund refused: surplus already spent")

    def _refund(self, payment, amount):
        refund_create(
            payment=payment,
            amount_fen=amount,
            reason="测试",
            requested_by=self.cashier,
            approved_by=self.finance,
            now=self._now(),
        )

    # --- invariants -------------------------------------------------------------------

    @state_invariant()
    def payments_add_up_and_refunds_stay_within_them(self):
        refunded = dict(
            Refund.objects.values("payment_id")
            .annotate(s=Sum("amount_fen"))
            .values_list("payment_id", "s")
        )
        for p in Payment.objects.all():
            assert p.amount_fen == p.allocated_fen + p.prepaid_fen + p.refund_due_fen
            assert 0 <= p.refunded_fen <= p.amount_fen
            assert refunded.get(p.pk, 0) == p.refunded_fen
        for a in Allocation.objects.filter(reverses__isnull=True, reference__startswith="payment:"):
            undone = a.reversals.aggregate(s=Sum("amount_fen"))["s"] or 0
            assert 0 <= a.amount_fen + undone <= a.amount_fen

    @state_invariant()
    def cash_on_hand_is_never_negative_and_no_bill_is_in_two_pending_orders(self):
        assert account_balance(account=AccountKind.CASH) >= 0
        assert not (
            OrderBill.objects.filter(pending=True)
            .values("bill_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
            .exists()
        )


@pytest.mark.django_db
def test_ledger_invariants_hold_with_payments_and_refunds(settings):
    settings.WUYE_CHANNELS = FAKE_CHANNELS
    run_state_machine_as_test(
        PaymentsLedger,
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        ),
    )
