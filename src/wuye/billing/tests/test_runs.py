"""Billing runs: amounts issued, idempotent re-runs, adjustment bills and the ledger."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import F, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.billing.engine import calculation as calc
from wuye.billing.models import Allocation, Bill, BillingRun, FeeItem, FeeStandard, PriceTier
from wuye.billing.services import BillingRunError, billing_run_execute
from wuye.core.models import Job
from wuye.core.periods import cycle_period
from wuye.estates.models import Meter, MeterReading, Unit
from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance, unbalanced_entry_ids
from wuye.ledger.services import credit, debit, entry_post
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_fee_item,
    make_standard,
    make_unit,
)

pytestmark = pytest.mark.django_db

JAN = date(2026, 1, 1)
ISSUED = date(2026, 1, 1)


@pytest.fixture
def estate():
    community = make_community()
    building = make_building(community)
    units = [
        make_unit(building, area_m2=Decimal("89.50")),
        make_unit(building, area_m2=Decimal("120.00"), handover_date=date(2026, 1, 16)),
        make_unit(building, area_m2=Decimal("100.00"), state=Unit.State.VACANT),
        make_unit(building, area_m2=Decimal("60.00"), state=Unit.State.UNSOLD, handover_date=None),
    ]
    fee = make_fee_item(community.company, due_days=15)
    standard = make_standard(fee, community, unit_price=Decimal("2.5000"), vacant_percent=50)
    return community, units, fee, standard


def run(community, period=JAN, **kw):
    kw.setdefault("issued_on", ISSUED)
    return billing_run_execute(community_id=community.pk, period_start=period, **kw)


def amounts(community):
    return {
        (b.unit_id, b.revision): b.amount_fen
        for b in Bill.objects.filter(community=community)
    }


def assert_ledger_matches_bills(community):
    assert unbalanced_entry_ids() == []
    for unit in Unit.objects.filter(community=community):
        outstanding = (
            Bill.objects.filter(unit=unit)
            .aggregate(s=Sum(F("amount_fen") - F("paid_fen") - F("waived_fen")))["s"] or 0
        )
        assert account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk) == outstanding


def test_a_run_bills_each_household_for_the_month(estate):
    community, (full, half, vacant, _unsold), _fee, _ = estate

    billing_run = run(community)

    assert amounts(community) == {
        (full.pk, 0): 22375,  # 89.50 × 2.50
        (half.pk, 0): 15484,  # 120 × 2.50 × 16/31 = 154.838
        (vacant.pk, 0): 12500,  # 100 × 2.50 × 50%
    }
    bill = Bill.objects.get(unit=full)
    assert bill.kind == Bill.Kind.REGULAR
    assert bill.due_date == date(2026, 1, 16)
    assert bill.period_end == date(2026, 2, 1)
    assert bill.quantity == Decimal("89.50")
    assert bill.run == billing_run
    assert billing_run.status == BillingRun.Status.DONE
    assert (billing_run.bills_created, billing_run.total_fen) == (3, 22375 + 15484 + 12500)


def test_a_run_posts_one_balanced_entry_receivable_per_household_revenue_per_fee_item(estate):
    community, (full, half, vacant, _unsold), fee, _ = estate

    billing_run = run(community)

    entry = JournalEntry.objects.get(idempotency_key=f"billing-run:{billing_run.pk}")
    lines = list(entry.lines.order_by("account", "household_id"))
    assert [(ln.account, ln.amount_fen, ln.household_id, ln.fee_item_id) for ln in lines] == [
        ("receivable", 22375, full.pk, None),
        ("receivable", 15484, half.pk, None),
        ("receivable", 12500, vacant.pk, None),
        ("revenue", -(22375 + 15484 + 12500), None, fee.pk),
    ]
    assert all(ln.community_id == community.pk for ln in lines)
    assert_ledger_matches_bills(community)


def test_running_the_same_period_again_creates_nothing(estate):
    community, *_ = estate
    run(community)
    bills, entries = Bill.objects.count(), JournalEntry.objects.count()

    again = run(community)

    assert (Bill.objects.count(), JournalEntry.objects.count()) == (bills, entries)
    assert (again.bills_created, again.adjustments_created, again.unchanged) == (0, 0, 3)
    assert again.total_fen == 0


def test_a_corrected_standard_adds_one_adjustment_bill_per_changed_line(estate):
    community, (full, _half, _vacant, _), _fee, standard = estate
    run(community)
    FeeStandard.objects.filter(pk=standard.pk).update(unit_price=Decimal("3.0000"))

    again = run(community)

    assert again.adjustments_created == 3
    adj = Bill.objects.get(unit=full, revision=1)
    assert (adj.kind, adj.amount_fen) == (Bill.Kind.ADJUSTMENT, 26850 - 22375)
    assert Bill.objects.get(unit=full, revision=0).amount_fen == 22375  # never edited
    assert assert_ledger_matches_bills(community) is None
    assert run(community).adjustments_created == 0


def test_a_lower_standard_nets_a_credit_note_against_the_outstanding_bill(estate):
    community, (full, *_), _fee, standard = estate
    run(community)
    FeeStandard.objects.filter(pk=standard.pk).update(unit_price=Decimal("2.0000"))

    run(community)

    original = Bill.objects.get(unit=full, revision=0)
    note = Bill.objects.get(unit=full, revision=1)
    assert note.amount_fen == 17900 - 22375
    assert (note.paid_fen, original.paid_fen) == (-4475, 4475)
    assert original.outstanding_fen == 17900
    allocations = Allocation.objects.filter(source=Allocation.Source.CREDIT_NOTE)
    assert sorted(a.amount_fen for a in allocations if a.bill_id in (note.pk, original.pk)) == [
        -4475, 4475,
    ]
    assert_ledger_matches_bills(community)


def test_a_credit_note_beyond_what_is_owed_becomes_prepaid_balance(estate):
    community, (full, *_), _fee, standard = estate
    run(community)
    original = Bill.objects.get(unit=full)
    _pay(original, 20000)
    FeeStandard.objects.filter(pk=standard.pk).update(unit_price=Decimal("2.0000"))

    run(community)

    original.refresh_from_db()
    note = Bill.objects.get(unit=full, revision=1)
    assert original.outstanding_fen == 0  # 2375 left was netted
    assert note.paid_fen == note.amount_fen == -4475
    # 4475 - 2375 = 2100 already paid goes to the household's prepaid balance (a credit).
    assert account_balance(account=AccountKind.PREPAID, household_id=full.pk) == -2100
    assert Allocation.objects.get(bill=note, source=Allocation.Source.PREPAID).amount_fen == -2100
    assert_ledger_matches_bills(community)


def _pay(bill, amount):
    entry = entry_post(
        company_id=bill.company_id, kind=JournalEntry.Kind.PAYMENT, memo="pay",
        effective_date=ISSUED,
        lines=[
            debit(AccountKind.CASH, amount, community_id=bill.community_id),
            credit(AccountKind.RECEIVABLE, amount, community_id=bill.community_id,
                   household_id=bill.unit_id),
        ],
    )
    Allocation.objects.create(bill=bill, source=Allocation.Source.PAYMENT, amount_fen=amount,
                              allocated_on=ISSUED, entry=entry)
    Bill.objects.filter(pk=bill.pk).update(paid_fen=F("paid_fen") + amount)


def _waive(bill, amount):
    dims = {"community_id": bill.community_id, "household_id": bill.unit_id,
            "fee_item_id": bill.fee_item_id}
    entry = entry_post(
        company_id=bill.company_id, kind=JournalEntry.Kind.WAIVER, memo="waive",
        effective_date=ISSUED,
        lines=[debit(AccountKind.WAIVER_EXPENSE, amount, **dims),
               credit(AccountKind.RECEIVABLE, amount, **dims)],
    )
    Allocation.objects.create(bill=bill, source=Allocation.Source.WAIVER, amount_fen=amount,
                              allocated_on=ISSUED, entry=entry)
    Bill.objects.filter(pk=bill.pk).update(waived_fen=F("waived_fen") + amount)


def test_a_credit_note_releases_a_waiver_no_longer_needed_instead_of_crediting_prepaid(estate):
    community, (full, *_), _, standard = estate
    run(community)
    original = Bill.objects.get(unit=full)
    _pay(original, 10_000)
    _waive(original, 12_375)
    FeeStandard.objects.filter(pk=standard.pk).update(unit_price=Decimal("2.0000"))

    run(community)

    original.refresh_from_db()
    # New amount 17900: the household paid 10000, so only 7900 stays waived; nothing prepaid.
    assert (original.paid_fen, original.waived_fen, original.outstanding_fen) == (14_475, 7_900, 0)
    assert account_balance(account=AccountKind.PREPAID, household_id=full.pk) == 0
    assert account_balance(account=AccountKind.WAIVER_EXPENSE, household_id=full.pk) == 7_900
    assert Allocation.objects.filter(bill=original, source=Allocation.Source.WAIVER).aggregate(
        s=Sum("amount_fen"))["s"] == 7_900
    assert_ledger_matches_bills(community)


def test_a_unit_that_became_unsold_gets_a_credit_note_for_the_whole_line(estate):
    community, (full, *_), *_ = estate
    run(community)
    Unit.objects.filter(pk=full.pk).update(state=Unit.State.UNSOLD)

    run(community)

    assert Bill.objects.get(unit=full, revision=1).amount_fen == -22375
    assert_ledger_matches_bills(community)


def test_a_period_brought_in_as_opening_arrears_is_not_billed_again(estate):
    community, (full, *_), fee, _ = estate
    Bill.objects.create(
        company=community.company, community=community, unit=full, fee_item=fee,
        period_start=JAN, period_end=date(2026, 2, 1), kind=Bill.Kind.OPENING, amount_fen=5000,
        due_date=JAN, issued_on=JAN,
    )

    billing_run = run(community)

    assert list(Bill.objects.filter(unit=full).values_list("kind", flat=True)) == ["opening"]
    assert (billing_run.bills_created, billing_run.unchanged) == (2, 1)


def test_a_quarterly_run_bills_three_months_in_one_line(estate):
    community, (full, *_), *_ = estate

    run(community, cycle_months=3)

    bill = Bill.objects.get(unit=full)
    assert (bill.amount_fen, bill.period_end) == (3 * 22375, date(2026, 4, 1))


def test_a_monthly_run_over_a_quarter_already_billed_is_refused(estate):
    community, *_ = estate
    run(community, cycle_months=3)

    with pytest.raises(BillingRunError, match="另一周期"):
        run(community, cycle_months=1)


def test_a_metered_fee_bills_the_reading_delta_at_tiered_prices():
    community = make_community()
    unit = make_unit(make_building(community))
    water = make_fee_item(community.company, name="水费", kind=FeeItem.Kind.WATER)
    standard = make_standard(water, community, method=FeeStandard.Method.METERED)
    PriceTier.objects.create(standard=standard, up_to=Decimal("10"), unit_price=Decimal("3.00"))
    PriceTier.objects.create(standard=standard, up_to=None, unit_price=Decimal("5.00"))
    meter = Meter.objects.create(community=community, unit=unit, kind=Meter.Kind.WATER,
                                 serial_no="W1", multiplier=2)
    MeterReading.objects.create(meter=meter, read_date=date(2025, 12, 28), value=Decimal("100"))
    MeterReading.objects.create(meter=meter, read_date=date(2026, 1, 28), value=Decimal("107.5"))

    run(community)

    bill = Bill.objects.get(unit=unit)
    # (107.5 - 100) × 2 = 15: 10 × 3.00 + 5 × 5.00 = 55.00 元
    assert (bill.kind, bill.amount_fen, bill.quantity) == (Bill.Kind.METERED, 5500, Decimal("15"))


def test_a_one_off_standard_is_billed_once_in_the_period_it_takes_effect():
    community = make_community()
    unit = make_unit(make_building(community))
    item = make_fee_item(community.company, name="装修押金", kind=FeeItem.Kind.ONE_OFF)
    make_standard(item, community, method=FeeStandard.Method.ONE_OFF, fixed_fen=50_000,
                  effective_from=date(2026, 1, 10))

    run(community)
    run(community, period=date(2026, 2, 1))

    assert list(Bill.objects.filter(unit=unit).values_list("kind", "amount_fen")) == [
        (Bill.Kind.ONE_OFF, 50_000)
    ]


def test_a_price_change_mid_month_splits_the_bill_by_days(estate):
    community, (full, *_), fee, _ = estate
    make_standard(fee, community, unit_price=Decimal("3.1000"), effective_from=date(2026, 1, 11))

    run(community)

    # 89.50 × (2.50 × 10 + 3.10 × 21) / 31 = 260.127
    assert Bill.objects.get(unit=full).amount_fen == 26013


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"period": date(2026, 1, 15)}, "1日"),
        ({"cycle_months": 2}, "1、3、6 或 12"),
        ({"fee_item_ids": [999_999]}, "999999"),
    ],
)
def test_bad_parameters_are_refused_and_write_nothing(estate, kwargs, message):
    community, *_ = estate
    with pytest.raises(BillingRunError, match=message):
        run(community, **kwargs)
    assert (Bill.objects.count(), BillingRun.objects.count(), JournalLine.objects.count()) == (
        0, 0, 0,
    )


def test_a_fee_item_of_another_company_is_refused(estate):
    community, *_ = estate
    foreign = make_fee_item(make_company())
    with pytest.raises(BillingRunError, match=str(foreign.pk)):
        run(community, fee_item_ids=[foreign.pk])


def test_progress_is_reported_up_to_done(estate):
    community, *_ = estate
    seen = []

    run(community, progress=lambda done, total, msg: seen.append((done, total)))

    assert seen[-1][0] == seen[-1][1]
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_the_cli_runs_a_period_and_prints_a_summary(estate):
    community, *_ = estate
    out = StringIO()

    call_command("bill", "run", "--community", community.code, "--period", "2026-01",
                 "--issued-on", "2026-01-01", "--quiet", stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (summary["bills"], summary["total"]) == (3, "503.59")
    listing = StringIO()
    call_command("bill", "runs", stdout=listing)
    assert community.code in listing.getvalue()


def test_the_cli_asks_for_the_company_when_a_community_code_is_ambiguous(estate):
    community, *_ = estate
    make_community(make_company(), code=community.code)
    with pytest.raises(CommandError, match="--company"):
        call_command("bill", "run", "--community", community.code, "--period", "2026-01")
    out = StringIO()

    call_command("bill", "run", "--community", community.code, "--company",
                 community.company.uscc, "--period", "2026-01", "--quiet", stdout=out)

    assert json.loads(out.getvalue())["bills"] == 3


def test_the_cli_names_a_bad_period():
    with pytest.raises(CommandError, match="--period"):
        call_command("bill", "run", "--community", make_community().code, "--period", "jan")


def test_the_task_runs_the_jobs_params_and_records_the_result(estate):
    from wuye.billing.tasks import billing_run_task

    community, *_ = estate
    job = Job.objects.create(kind="billing_run", title="t", params={
        "community_id": community.pk, "period_start": "2026-01-01", "cycle_months": 1,
        "issued_on": "2026-01-01",
    })

    billing_run_task.call(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.result["bills_created"] == 3
    assert BillingRun.objects.get().job_id == job.pk


def test_a_households_prepaid_balance_is_spent_on_its_new_bills(estate):
    from wuye.billing.prepayments import prepayment_deposit

    community, (full, *_), *_ = estate
    prepayment_deposit(unit=full, amount_fen=10_000, on_date=date(2025, 12, 20),
                       reference="R1", idempotency_key="dep-1")

    run(community)

    bill = Bill.objects.get(unit=full)
    assert (bill.paid_fen, bill.outstanding_fen) == (10_000, 12_375)
    assert_ledger_matches_bills(community)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["price", "pay", "waive", "vacate", "occupy"]), st.integers(0, 60_000)
    ),
    min_size=1, max_size=6,
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_after_any_corrections_and_payments_each_line_sums_to_its_amount_and_ledger_matches(ops):
    with transaction.atomic():
        community = make_community()
        building = make_building(community)
        units = [make_unit(building, area_m2=Decimal("77.77")),
                 make_unit(building, area_m2=Decimal("120.05"), handover_date=date(2026, 1, 9))]
        fee = make_fee_item(community.company)
        standard = make_standard(fee, community, unit_price=Decimal("2.5000"), vacant_percent=60)
        run(community)
        for op, n in ops:
            if op == "price":
                FeeStandard.objects.filter(pk=standard.pk).update(unit_price=Decimal(n).scaleb(-4))
            elif op in ("pay", "waive"):
                bill = Bill.objects.filter(
                    unit=units[0], amount_fen__gt=F("paid_fen") + F("waived_fen")
                ).first()
                if bill is not None:
                    (_pay if op == "pay" else _waive)(bill, min(n, bill.outstanding_fen) or 1)
            else:
                Unit.objects.filter(pk=units[1].pk).update(
                    state=Unit.State.VACANT if op == "vacate" else Unit.State.OCCUPIED
                )
            run(community)
            price_c = int(FeeStandard.objects.get(pk=standard.pk).unit_price.scaleb(4))
            for u in Unit.objects.filter(pk__in=[x.pk for x in units]):
                expected = calc.periodic_amount(
                    calc.UnitFacts(u.pk, u.unit_type, u.state, u.handover_date,
                                   int(u.area_m2 * 100)),
                    [calc.Standard(1, fee.pk, "", "area", date(2020, 1, 1), price_c=price_c,
                                   vacant_percent=60)],
                    fee_item_id=fee.pk, period=cycle_period(JAN, 1),
                )
                issued = Bill.objects.filter(unit=u).aggregate(s=Sum("amount_fen"))["s"] or 0
                assert issued == expected
            assert_ledger_matches_bills(community)
            # Only money actually paid can turn into prepaid balance.
            paid_in = Allocation.objects.filter(
                bill__unit=units[0], source=Allocation.Source.PAYMENT
            ).aggregate(s=Sum("amount_fen"))["s"] or 0
            prepaid = -account_balance(account=AccountKind.PREPAID, household_id=units[0].pk)
            assert prepaid <= paid_in
            again = run(community)
            assert again.bills_created == again.adjustments_created == 0
        transaction.set_rollback(True)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_runs_of_the_same_period_at_once_issue_each_bill_once():
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    community = make_community()
    building = make_building(community)
    for _ in range(50):
        make_unit(building)
    make_standard(make_fee_item(community.company), community)
    errors: list[BaseException] = []

    def go():
        try:
            run(community)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Bill.objects.filter(community=community).count() == 50
    assert sorted(BillingRun.objects.values_list("bills_created", flat=True)) == [0, 50]
    assert_ledger_matches_bills(community)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_task_shows_progress_on_the_job_while_the_run_is_open():
    from django.db import connection

    from wuye.billing.tasks import billing_run_task

    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer: progress shows when the run commits")
    community = make_community()
    building = make_building(community)
    for _ in range(5):
        make_unit(building)
    make_standard(make_fee_item(community.company), community)
    job = Job.objects.create(kind="billing_run", title="t", params={
        "community_id": community.pk, "period_start": "2026-01-01", "issued_on": "2026-01-01",
    })

    billing_run_task.call(job.pk)

    job.refresh_from_db()
    assert job.progress_total > 0
    assert job.progress_done == job.progress_total
    assert job.status == Job.Status.SUCCEEDED
