"""What every simulator's bank does: credit a day's net settlement on the next working day.

The acquirer, WeChat Pay and Alipay simulators each hand the property company's bank one
movement per merchant and settlement date, written in the bank-statement layout of
``settlement-files.md`` §4 (the same writer reconciliation's tests use, so what the simulators
export is exactly what the importers read).
"""

from __future__ import annotations

from datetime import date, timedelta

from wuye.reconciliation.calendar import CalendarUnknown, add_workdays
from wuye.reconciliation.samples import BankRow, bank_csv


def next_working_day(day: date) -> date:
    """Return the first Chinese working day after ``day`` (holidays and make-up workdays known;
    weekdays only for a year the calendar does not cover yet)."""
    try:
        return add_workdays(day, 1)
    except CalendarUnknown:
        nxt = day + timedelta(days=1)
        while nxt.weekday() >= 5:
            nxt += timedelta(days=1)
        return nxt


def settlement_credit_csv(
    *,
    net_fen: int,
    booked_on: date,
    serial_no: str,
    memo: str,
    payer_name: str,
    payer_account: str,
    opening_fen: int = 0,
) -> str:
    """Return the §4 CSV with the one movement of a settlement's ``net_fen`` (a debit when the
    day's refunds exceeded its takings; only the header when it is zero)."""
    rows = []
    if net_fen:
        rows.append(
            BankRow(
                serial_no=serial_no,
                direction="C" if net_fen > 0 else "D",
                amount_fen=abs(net_fen),
                txn_date=booked_on,
                value_date=booked_on,
                memo=memo,
                counterparty_name=payer_name,
                counterparty_account=payer_account,
            )
        )
    return bank_csv(rows, opening_fen=opening_fen).decode("utf-8")
