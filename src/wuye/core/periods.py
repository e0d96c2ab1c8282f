"""Billing periods: half-open date ranges ``[start, end)``."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, order=True)
class Period:
    """A half-open range of days ``[start, end)``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty period {self.start}..{self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def overlap_days(self, start: date | None, end: date | None) -> int:
        """Days of this period inside ``[start, end)``; ``None`` means unbounded."""
        lo = max(self.start, start) if start else self.start
        hi = min(self.end, end) if end else self.end
        return max(0, (hi - lo).days)

    def label(self) -> str:
        last = self.end - timedelta(days=1)
        if self.start.day == 1 and last.month == self.start.month and last.year == self.start.year:
            return f"{self.start:%Y-%m}"
        return f"{self.start:%Y-%m-%d}~{last:%Y-%m-%d}"


def add_months(day: date, months: int) -> date:
    """Return ``day`` moved by ``months`` calendar months, clamped to the month's end."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cycle_period(start: date, cycle_months: int) -> Period:
    """The billing period of ``cycle_months`` months starting on the 1st of ``start``'s month."""
    first = start.replace(day=1)
    return Period(first, add_months(first, cycle_months))


def month_periods(start: date, end: date) -> list[Period]:
    """Calendar months covering ``[start, end)``, each clipped to the range."""
    out: list[Period] = []
    cursor = start
    while cursor < end:
        nxt = min(add_months(cursor.replace(day=1), 1), end)
        out.append(Period(cursor, nxt))
        cursor = nxt
    return out
