"""China's working-day calendar (工作日), with its holidays and make-up workdays (调休).

Backed by the pinned ``chinesecalendar`` package, which carries the State Council's yearly
schedule. A year it does not know yet is an error, not a guess: reconciliation must not call a
Saturday a working day (or a holiday Monday one) on a hunch.
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar


class CalendarUnknown(LookupError):
    """The working-day calendar has no data for that year (update ``chinesecalendar``)."""


def is_workday(day: date) -> bool:
    """Return True if ``day`` is a working day in mainland China (make-up Saturdays count).

    Raises CalendarUnknown for a year the calendar does not cover.
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarUnknown(str(exc)) from None


def add_workdays(day: date, n: int) -> date:
    """Return the ``n``-th working day after ``day`` (``n`` ≥ 0; 0 returns ``day`` itself).

    T+1 of a Friday is the next Monday, unless that Monday is a holiday; T+1 of the Friday
    before a make-up Saturday is that Saturday. Raises CalendarUnknown past the calendar's
    last year, ValueError for a negative ``n``.
    """
    if n < 0:
        raise ValueError(f"n must not be negative: {n}")
    current = day
    while n:
        current += timedelta(days=1)
        if is_workday(current):
            n -= 1
    return current


def workdays_between(start: date, end: date) -> int:
    """Return how many working days lie in ``(start, end]`` (0 if ``end`` ≤ ``start``).

    Raises CalendarUnknown for a year the calendar does not cover.
    """
    count, current = 0, start
    while current < end:
        current += timedelta(days=1)
        if is_workday(current):
            count += 1
    return count
