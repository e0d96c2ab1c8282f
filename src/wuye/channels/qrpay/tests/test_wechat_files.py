"""The simulator's trade bill and bank credit: the layouts of settlement-files.md §2/§4, read
back by Wuye's own reconciliation importers, fees at the contracted rate to five decimals."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wuye.sims.wechat.bills import bank_credit, fee_units, rate_text, trade_bill, yuan5

SH = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 20)


def _state(amounts: list[tuple[int, str]], refunds: list[int]) -> dict:
    orders, rows = {}, {}
    for i, (amount, bank) in enumerate(amounts):
        otn = f"WY20261120{i:010d}001"
        orders[otn] = {
            "out_trade_no": otn,
            "transaction_id": f"42000020261120{i:014d}",
            "trade_type": "NATIVE",
            "amount": amount,
            "bank_type": bank,
            "openid": "oUpF8u",
            "description": "物业费",
            "attach": "",
            "trade_state": "SUCCESS",
            "success_time": datetime(2026, 11, 20, 9, 30, i % 60, tzinfo=SH).isoformat(),
        }
    for j, refund in enumerate(refunds):
        otn = next(iter(orders))
        rows[f"RF{j}"] = {
            "refund_id": f"503{j:026d}",
            "out_refund_no": f"RF{j}",
            "out_trade_no": otn,
            "transaction_id": orders[otn]["transaction_id"],
            "refund": refund,
            "status": "SUCCESS",
            "success_time": datetime(2026, 11, 20, 15, 0, tzinfo=SH).isoformat(),
        }
    return {"orders": orders, "refunds": rows}


def test_the_fee_has_five_decimals_and_the_rate_prints_as_wechat_does() -> None:
    assert yuan5(fee_units(128000, 3800)) == "4.86400"
    assert rate_text(3800) == "0.38%" and rate_text(6000) == "0.6%"


@pytest.mark.django_db
def test_the_trade_bill_is_read_back_by_the_reconciliation_importer() -> None:
    from wuye.reconciliation.importers.wechat import parse

    bill = trade_bill(
        _state([(128000, "OTHERS"), (5001, "CMB_CREDIT")], [1000]),
        mchid="1900000109",
        appid="wx2421b1c4370ec43b",
        day=DAY,
    )

    parsed = parse(bill.text.encode(), "bill.csv")

    assert parsed.row_count == 3
    assert parsed.total_fen == 128000 + 5001 - 1000
    first = bill.text.splitlines()[1]
    assert first.startswith("`2026-11-20 09:30:00,`wx2421b1c4370ec43b,`1900000109,")
    assert ",`4.86400,`0.38%," in first


@pytest.mark.django_db
@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 10_000_000), st.sampled_from(["OTHERS", "CMB_CREDIT"])),
        min_size=1,
        max_size=8,
    ),
)
def test_the_bank_credit_is_the_days_takings_less_the_fee_rounded_once(
    amounts: list[tuple[int, str]],
) -> None:
    bill = trade_bill(_state(amounts, []), mchid="1900000109", appid="wx", day=DAY)
    exact = sum(a * (6000 if b == "CMB_CREDIT" else 3800) for a, b in amounts)  # fen × 1e6

    assert bill.paid_fen == sum(a for a, _b in amounts)
    assert abs(bill.fee_fen * 1_000_000 - exact) <= 500_000 + 1000 * len(amounts)
    assert bill.net_fen == bill.paid_fen - bill.fee_fen
    csv_text = bank_credit(bill, mchid="1900000109", day=DAY, balance_fen=0)
    row = csv_text.splitlines()[1].split(",")
    assert row[0] == "20261123"  # Friday's takings arrive on Monday
    assert row[3] == "C"
    whole, frac = row[4].split(".")
    assert int(whole) * 100 + int(frac) == bill.net_fen
