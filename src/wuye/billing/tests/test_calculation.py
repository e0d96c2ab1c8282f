"""The pure fee calculation: proration, tiers, rounding, vacancy, effective dates, cycles."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wuye.billing.engine import calculation as calc
from wuye.billing.engine.calculation import Reading, Standard, UnitFacts
from wuye.core.money import Rounding
from wuye.core.periods import Period, cycle_period

JAN = cycle_period(date(2026, 1, 1), 1)  # 31 days
FEB = cycle_period(date(2026, 2, 1), 1)  # 28 days
Q1 = cycle_period(date(2026, 1, 1), 3)
FEE = 1


def std(method=calc.AREA, price_c=25_000, eff=date(2020, 1, 1), unit_type="", **kw) -> Standard:
    kw.setdefault("id", hash((method, price_c, eff, unit_type)) % 10_000)
    return Standard(
        fee_item_id=FEE, unit_type=unit_type, method=method, effective_from=eff, price_c=price_c,
        **kw,
    )


def unit(area_c=8950, state=calc.OCCUPIED, handover=None, unit_type="residential", inner=None):
    return UnitFacts(1, unit_type, state, handover, area_c, inner)


def amount(u, standards, period=JAN, rounding=Rounding.HALF_UP):
    return calc.periodic_amount(u, standards, fee_item_id=FEE, period=period, rounding=rounding)


def test_a_full_month_costs_area_times_price():
    # 89.50 m² × 2.5000 元 = 223.75 元
    assert amount(unit(), [std()]) == 22375


def test_a_unit_handed_over_mid_month_pays_from_the_handover_day():
    # 16 of January's 31 days: 22375 × 16 / 31 = 11548.39
    assert amount(unit(handover=date(2026, 1, 16)), [std()]) == 11548


def test_a_unit_handed_over_after_the_period_pays_nothing():
    assert amount(unit(handover=date(2026, 2, 1)), [std()]) == 0


def test_proration_counts_days_of_each_month_in_a_quarter():
    # handover 15 Feb: Feb 14/28 + Mar 31/31 of 22375
    got = amount(unit(handover=date(2026, 2, 15)), [std()], period=Q1)
    assert got == 22375 // 2 + 22375 + 1  # 11187.5 + 22375 = 33562.5 -> 33563


def test_a_vacant_unit_pays_the_vacant_percent():
    assert amount(unit(state=calc.VACANT), [std(vacant_percent=50)]) == 11188  # 11187.5


def test_an_unsold_unit_is_not_billed_unless_the_standard_says_so():
    assert amount(unit(state=calc.UNSOLD), [std(vacant_percent=50)]) == 0
    assert amount(unit(state=calc.UNSOLD), [std(vacant_percent=50, bill_unsold=True)]) == 11188


def test_a_price_change_mid_month_splits_the_month_by_days():
    # 100 m²: 2.00 for 10 days, 3.00 for 21 days = (2000 + 6300) / 31 元 = 267.7419
    standards = [std(price_c=20_000), std(price_c=30_000, eff=date(2026, 1, 11))]
    assert amount(unit(area_c=10_000), standards) == 26774


def test_a_standard_taking_effect_after_the_period_does_not_count():
    standards = [std(price_c=20_000), std(price_c=30_000, eff=date(2026, 2, 1))]
    assert amount(unit(area_c=10_000), standards) == 20_000


def test_days_before_any_standard_are_not_billed():
    assert amount(unit(area_c=10_000), [std(price_c=31_000, eff=date(2026, 1, 21))]) == 11_000


def test_the_unit_types_own_standard_wins_over_the_fallback():
    standards = [std(price_c=20_000), std(price_c=50_000, unit_type="commercial")]
    assert amount(unit(area_c=10_000, unit_type="commercial"), standards) == 50_000
    assert amount(unit(area_c=10_000, unit_type="residential"), standards) == 20_000


def test_the_fallback_covers_days_before_the_unit_types_first_standard():
    standards = [
        std(price_c=20_000),
        std(price_c=30_000, unit_type="commercial", eff=date(2026, 1, 11)),
    ]
    assert amount(unit(area_c=10_000, unit_type="commercial"), standards) == 26774


def test_the_fixed_amount_is_a_monthly_surcharge_on_area_methods():
    # 100 m² × 2.00 + 10.00 元
    assert amount(unit(area_c=10_000), [std(price_c=20_000, fixed_fen=1000)]) == 21_000


def test_the_fixed_method_charges_the_fixed_amount_per_month_prorated():
    s = std(method=calc.FIXED, price_c=0, fixed_fen=15_000)
    assert amount(unit(), [s]) == 15_000
    assert amount(unit(), [s], period=Q1) == 45_000
    assert amount(unit(handover=date(2026, 1, 17)), [s]) == 7258  # 15000 × 15/31 = 7258.06


def test_the_inner_area_method_uses_the_inner_area():
    s = std(method=calc.INNER_AREA, price_c=30_000)
    assert amount(unit(inner=7012), [s]) == 21036  # 70.12 × 3.00
    assert amount(unit(inner=None), [s]) == 0


def test_a_quarter_is_three_months_billed_as_one_line():
    assert amount(unit(), [std()], period=Q1) == 3 * 22375
    assert amount(unit(), [std()], period=cycle_period(date(2026, 1, 1), 12)) == 12 * 22375


@pytest.mark.parametrize(
    ("area_c", "price_c", "half_up", "up", "down"),
    [
        (100, 50, 1, 1, 0),  # 1 m² × 0.0050 元 = 0.5 fen
        (300, 50, 2, 2, 1),  # 1.5 fen
        (100, 149, 1, 2, 1),  # 1.49 fen
        (100, 151, 2, 2, 1),  # 1.51 fen
        (100, 200, 2, 2, 2),  # exact
    ],
)
def test_rounding_modes_round_the_line_once(area_c, price_c, half_up, up, down):
    s = [std(price_c=price_c)]
    u = unit(area_c=area_c)
    assert amount(u, s, rounding=Rounding.HALF_UP) == half_up
    assert amount(u, s, rounding=Rounding.UP) == up
    assert amount(u, s, rounding=Rounding.DOWN) == down


def test_rounding_happens_once_not_per_month():
    # 0.4 fen a month: rounding per month would give 0; once over a quarter gives 1.2 -> 1
    assert amount(unit(area_c=100), [std(price_c=40)], period=Q1) == 1


TIERS = ((10_000, 30_000), (20_000, 40_000), (None, 50_000))  # ≤10 @3, ≤20 @4, rest @5


def test_tiered_prices_charge_each_step_at_its_price():
    s = std(method=calc.METERED, tiers=TIERS)
    assert calc.metered_amount(25_000, s) == 9500  # 10×3 + 10×4 + 5×5 = 95 元
    assert calc.metered_amount(8_000, s) == 2400


def test_tier_limits_scale_with_the_months_a_bill_covers():
    s = std(method=calc.METERED, tiers=TIERS)
    assert calc.metered_amount(25_000, s, months=3) == 7500  # all in the first tier (≤30)


def test_a_metered_standard_without_tiers_uses_its_price():
    s = std(method=calc.METERED, price_c=35_000)
    assert calc.metered_amount(12_345, s) == 4321  # 12.345 × 3.50 = 43.2075 元


def test_consumption_runs_from_the_last_reading_before_the_period_to_the_latest_inside():
    readings = [
        Reading(date(2025, 12, 25), 100_000),
        Reading(date(2026, 1, 10), 105_000),
        Reading(date(2026, 1, 25), 112_500),
        Reading(date(2026, 2, 3), 120_000),
    ]
    assert calc.meter_consumption(readings, JAN) == 12_500


def test_a_replacement_reading_restarts_the_delta():
    readings = [
        Reading(date(2025, 12, 25), 900_000),
        Reading(date(2026, 1, 10), 0, is_replacement=True),
        Reading(date(2026, 1, 25), 7_000),
    ]
    assert calc.meter_consumption(readings, JAN) == 7_000


def test_no_reading_in_the_period_means_nothing_to_bill():
    assert calc.meter_consumption([Reading(date(2025, 12, 25), 100)], JAN) == 0


def test_a_reading_going_backwards_is_refused_with_its_date():
    readings = [Reading(date(2025, 12, 25), 5_000), Reading(date(2026, 1, 25), 4_000)]
    with pytest.raises(calc.CalculationError, match="2026-01-25"):
        calc.meter_consumption(readings, JAN)


def _exact_fen(
    area_c: int, price_c: int, fixed_fen: int, period: Period, handover: date
) -> Fraction:
    total = Fraction(0)
    day = period.start
    while day < period.end:
        if day >= handover:
            monthly = Fraction(area_c * price_c, 10_000) + fixed_fen
            total += monthly / calc.days_in_month(day)
        day += timedelta(days=1)
    return total


def _round_half_up(x: Fraction) -> int:
    return int((x * 2 + 1) // 2)


@settings(max_examples=200, deadline=None)
@given(
    area_c=st.integers(min_value=0, max_value=100_000_00),
    price_c=st.integers(min_value=0, max_value=200_000),
    fixed_fen=st.integers(min_value=0, max_value=50_000),
    offset=st.integers(min_value=0, max_value=120),
    months=st.sampled_from([1, 3, 6, 12]),
)
def test_a_bill_is_the_exact_rational_amount_rounded_once(area_c, price_c, fixed_fen, offset,
                                                          months):
    period = cycle_period(date(2026, 1, 1), months)
    handover = period.start + timedelta(days=offset)
    got = amount(unit(area_c=area_c, handover=handover),
                 [std(price_c=price_c, fixed_fen=fixed_fen)], period=period)
    assert got == _round_half_up(_exact_fen(area_c, price_c, fixed_fen, period, handover))


@settings(max_examples=200, deadline=None)
@given(
    area_c=st.integers(min_value=0, max_value=100_000_00),
    price_c=st.integers(min_value=0, max_value=200_000),
    offset=st.integers(min_value=0, max_value=89),
)
def test_three_monthly_bills_are_within_two_fen_of_the_quarterly_bill(area_c, price_c, offset):
    # Each monthly line is off the exact amount by at most half a fen, the quarterly line too:
    # |Σ monthly − quarterly| ≤ 3 × 0.5 + 0.5 = 2 fen.
    u = unit(area_c=area_c, handover=date(2026, 1, 1) + timedelta(days=offset))
    s = [std(price_c=price_c)]
    monthly = sum(amount(u, s, period=cycle_period(date(2026, m, 1), 1)) for m in (1, 2, 3))
    assert abs(monthly - amount(u, s, period=Q1)) <= 2


@settings(max_examples=200, deadline=None)
@given(
    quantity_m=st.integers(min_value=0, max_value=10_000_000),
    limits=st.lists(st.integers(min_value=1, max_value=100_000), min_size=0, max_size=3,
                    unique=True),
    prices=st.lists(st.integers(min_value=0, max_value=200_000), min_size=4, max_size=4),
    months=st.sampled_from([1, 3, 6, 12]),
)
def test_a_metered_bill_is_the_exact_tiered_amount_rounded_once(quantity_m, limits, prices,
                                                                  months):
    ups = sorted(limits)
    tiers = tuple(zip([*ups, None], prices, strict=False))
    s = std(method=calc.METERED, tiers=tiers)
    exact = Fraction(0)
    lower = 0
    for up_to, price_c in tiers:
        upper = quantity_m if up_to is None else min(quantity_m, up_to * months)
        if upper > lower:
            exact += Fraction((upper - lower) * price_c, 100_000)
            lower = upper
    assert calc.metered_amount(quantity_m, s, months=months) == _round_half_up(exact)
