"""Pure fee calculation: no database, plain integers, one rounding per bill line.

Scales (all exact integers):

- area: 0.01 m² (``area_c``), so 89.50 m² is 8950;
- prices: 0.0001 yuan = 0.01 fen (``price_c``), so 2.3500 元 is 23500;
- meter readings and quantities: 0.001 (``qty_m``);
- fixed amounts: fen.

A periodic line (area, inner area, fixed) sums, over every billable day of the period,
``(area_c × price_c + fixed_fen × 10⁴) × percent / (10⁶ × days in that day's month)`` fen. The
sum is kept as a numerator over one common denominator and rounded to fen once, with the fee
item's rounding. See docs/billing.md for the rule and worked examples.
"""

from __future__ import annotations

import calendar
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from wuye.core.money import Rounding, div_round
from wuye.core.periods import Period, month_periods

AREA = "area"
INNER_AREA = "inner_area"
FIXED = "fixed"
METERED = "metered"
ONE_OFF = "one_off"
PERIODIC_METHODS = frozenset({AREA, INNER_AREA, FIXED})

OCCUPIED = "occupied"
VACANT = "vacant"
UNSOLD = "unsold"

PRICE_SCALE = 10_000  # price_c per yuan (100 per fen)
AREA_SCALE = 100  # area_c per m²
QTY_SCALE = 1_000  # qty_m per unit of consumption
# area_c × price_c is in 0.0001 fen; with a percent it is in 0.000001 fen.
_AREA_PRICE_PCT_PER_FEN = 10_000 * 100
CYCLES = (1, 3, 6, 12)


class CalculationError(ValueError):
    """A standard, reading or period cannot be calculated (names what and why)."""


@dataclass(frozen=True)
class Standard:
    """A fee standard version as plain integers (a snapshot of ``FeeStandard``)."""

    id: int
    fee_item_id: int
    unit_type: str
    method: str
    effective_from: date
    price_c: int = 0
    fixed_fen: int = 0
    vacant_percent: int = 100
    bill_unsold: bool = False
    # (up_to in qty_m or None for "no limit", price_c), ascending, None last.
    tiers: tuple[tuple[int | None, int], ...] = field(default=())


@dataclass(frozen=True)
class UnitFacts:
    """What the calculation needs to know about a unit."""

    id: int
    unit_type: str
    state: str
    handover_date: date | None
    area_c: int
    inner_area_c: int | None = None


@dataclass(frozen=True)
class Coefficients:
    """A periodic line for one kind of unit as ``(area_c·a + inner_c·i + f) / denominator``."""

    area: int
    inner: int
    fixed: int
    denominator: int

    def numerator(self, area_c: int, inner_area_c: int | None) -> int:
        return area_c * self.area + (inner_area_c or 0) * self.inner + self.fixed

    @property
    def is_zero(self) -> bool:
        return not (self.area or self.inner or self.fixed)


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def common_denominator(period: Period) -> int:
    """Return 10⁶ × lcm(days of each month the period touches)."""
    lengths = {days_in_month(m.start) for m in month_periods(period.start, period.end)}
    return _AREA_PRICE_PCT_PER_FEN * math.lcm(*lengths)


def select_standards(
    standards: Iterable[Standard], *, fee_item_id: int, unit_type: str
) -> list[Standard]:
    """Return the versions that apply to ``unit_type``, oldest first.

    The unit type's own versions win on every day one of them is in force; the fallback ('')
    covers days before the first own version.
    """
    own = [s for s in standards if s.fee_item_id == fee_item_id and s.unit_type == unit_type]
    generic = [s for s in standards if s.fee_item_id == fee_item_id and s.unit_type == ""]
    if unit_type == "":
        own = []
    own.sort(key=lambda s: s.effective_from)
    generic.sort(key=lambda s: s.effective_from)
    if not own:
        return generic
    first_own = own[0].effective_from
    return [s for s in generic if s.effective_from < first_own] + own


def standard_on(versions: Sequence[Standard], day: date) -> Standard | None:
    """Return the version in force on ``day``: the latest ``effective_from`` on or before it."""
    found = None
    for s in versions:
        if s.effective_from <= day:
            found = s
        else:
            break
    return found


def _percent(standard: Standard, state: str) -> int:
    if state == UNSOLD:
        return standard.vacant_percent if standard.bill_unsold else 0
    if state == VACANT:
        return standard.vacant_percent
    return 100


def periodic_coefficients(
    versions: Sequence[Standard], *, period: Period, state: str, billable_from: date | None
) -> Coefficients:
    """Return the coefficients of a periodic line for a unit in ``state`` billed from a day.

    ``versions`` must be the applicable versions oldest first (:func:`select_standards`);
    ``billable_from`` is the handover date (None: billable for the whole period). Days with no
    standard in force, or whose standard is not periodic, add nothing.
    """
    denominator = common_denominator(period)
    area = inner = fixed = 0
    start = period.start if billable_from is None else max(period.start, billable_from)
    for month in month_periods(period.start, period.end):
        weight = denominator // (_AREA_PRICE_PCT_PER_FEN * days_in_month(month.start))
        day = max(month.start, start)
        while day < month.end:
            s = standard_on(versions, day)
            if s is not None and s.method in PERIODIC_METHODS:
                pct = _percent(s, state)
                if pct:
                    w = pct * weight
                    if s.method == AREA:
                        area += s.price_c * w
                    elif s.method == INNER_AREA:
                        inner += s.price_c * w
                    fixed += s.fixed_fen * 10_000 * w
            day += timedelta(days=1)
    return Coefficients(area, inner, fixed, denominator)


def periodic_amount(
    unit: UnitFacts,
    standards: Iterable[Standard],
    *,
    fee_item_id: int,
    period: Period,
    rounding: Rounding = Rounding.HALF_UP,
) -> int:
    """Return the fen a unit owes for a periodic fee item over ``period``, rounded once."""
    versions = select_standards(standards, fee_item_id=fee_item_id, unit_type=unit.unit_type)
    c = periodic_coefficients(
        versions, period=period, state=unit.state, billable_from=unit.handover_date
    )
    return div_round(c.numerator(unit.area_c, unit.inner_area_c), c.denominator, rounding)


def tiered_amount_exact(quantity_m: int, standard: Standard, *, months: int = 1) -> int:
    """Return the metered charge in 0.00001 fen (qty_m × price_c) before rounding.

    Tier limits are per month and scale with the number of months the bill covers. Without
    tiers the standard's own price applies to all of it.
    """
    if quantity_m < 0:
        raise CalculationError(f"用量不能为负: {quantity_m / QTY_SCALE}")
    tiers = standard.tiers or ((None, standard.price_c),)
    total = 0
    used = 0
    for up_to, price_c in tiers:
        limit = quantity_m if up_to is None else min(quantity_m, up_to * months)
        if limit > used:
            total += (limit - used) * price_c
            used = limit
        if used >= quantity_m:
            break
    return total


def metered_amount(
    quantity_m: int, standard: Standard, *, months: int = 1, rounding: Rounding = Rounding.HALF_UP
) -> int:
    """Return the fen for ``quantity_m`` (0.001 units) at the standard's tiered prices."""
    return div_round(tiered_amount_exact(quantity_m, standard, months=months), 100 * QTY_SCALE,
                     rounding)


@dataclass(frozen=True)
class Reading:
    read_date: date
    value_m: int
    is_replacement: bool = False


def meter_consumption(readings: Sequence[Reading], period: Period) -> int:
    """Return the consumption (0.001 units, before the multiplier) billed in ``period``.

    From the last reading before the period to the latest reading inside it, summing each
    step; a replacement reading starts a new meter, so the step into it counts nothing. No
    reading inside the period, or none before the first one, means nothing to bill yet.
    Raises CalculationError for a reading lower than the one before (without replacement).
    """
    ordered = sorted(readings, key=lambda r: r.read_date)
    before = [r for r in ordered if r.read_date < period.start]
    inside = [r for r in ordered if period.start <= r.read_date < period.end]
    if not inside:
        return 0
    chain = ([before[-1]] if before else []) + inside
    total = 0
    for prev, cur in itertools.pairwise(chain):
        if cur.is_replacement:
            continue
        if cur.value_m < prev.value_m:
            raise CalculationError(
                f"读数倒退: {cur.read_date} 读数 {cur.value_m / QTY_SCALE} 小于 "
                f"{prev.read_date} 的 {prev.value_m / QTY_SCALE} (换表请标记为换表起始读数)"
            )
        total += cur.value_m - prev.value_m
    return total


def one_off_standards(versions: Sequence[Standard], period: Period) -> list[Standard]:
    """Return the one-off versions that take effect inside ``period`` (each billed once)."""
    return [
        s for s in versions if s.method == ONE_OFF and period.start <= s.effective_from < period.end
    ]


def is_billable(unit: UnitFacts, standard: Standard, period: Period) -> bool:
    """Say whether a unit is billed at all under ``standard`` in ``period`` (one-off, metered)."""
    if unit.state == UNSOLD and not standard.bill_unsold:
        return False
    return unit.handover_date is None or unit.handover_date < period.end
