"""China's working-day calendar: holidays, make-up workdays (调休), T+N."""

from __future__ import annotations

from datetime import date

import pytest

from wuye.reconciliation.calendar import (
    CalendarUnknown,
    add_workdays,
    is_workday,
    workdays_between,
)


def test_2026_make_up_saturdays_are_workdays_and_holiday_weekdays_are_not():
    # 2026's 调休 Saturdays/Sundays (State Council schedule).
    for day in (
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ):
        assert is_workday(day), day
    assert not is_workday(date(2026, 10, 1))  # National Day, a Thursday
    assert not is_workday(date(2026, 2, 17))  # Spring Festival, a Tuesday
    assert not is_workday(date(2026, 11, 21))  # an ordinary Saturday
    assert is_workday(date(2026, 11, 20))


def test_t_plus_one_skips_weekends_and_holidays_and_lands_on_make_up_days():
    assert add_workdays(date(2026, 11, 20), 1) == date(2026, 11, 23)  # Fri -> Mon
    assert add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)  # over National Day (1–7)
    assert add_workdays(date(2026, 10, 9), 1) == date(2026, 10, 10)  # make-up Saturday
    assert add_workdays(date(2026, 11, 20), 0) == date(2026, 11, 20)
    assert workdays_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


def test_a_year_the_calendar_does_not_know_is_an_error():
    with pytest.raises(CalendarUnknown):
        add_workdays(date(2026, 12, 31), 1)
    with pytest.raises(ValueError):
        add_workdays(date(2026, 1, 5), -1)
