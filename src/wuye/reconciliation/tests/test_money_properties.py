"""Money invariants of the importers, for any amounts: exact fen in, exact fen out."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wuye.reconciliation.importers import acquirer, wechat
from wuye.reconciliation.importers.base import milli_to_fen
from wuye.reconciliation.samples import CardRow, QrRow, acquirer_csv, wechat_bill

AT = datetime(2026, 11, 20, 9, 0)
fen = st.integers(min_value=1, max_value=10**11)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(fen, st.integers(0, 100), st.booleans()), min_size=1, max_size=30))
def test_acquirer_amounts_survive_the_file_to_the_fen(tmp_path_factory, rows):
    card_rows = [
        CardRow(
            f"{i:012d}",
            -amount if refund else amount,
            -(amount * pct // 10_000) if refund else amount * pct // 10_000,
            AT,
            date(2026, 11, 21),
            orig_rrn="999999999999" if refund else "",
        )
        for i, (amount, pct, refund) in enumerate(rows)
    ]
    path = tmp_path_factory.mktemp("acq") / "a.csv"
    path.write_bytes(acquirer_csv(card_rows))
    parsed = acquirer.parse(path, "a.csv", workdir=path.parent)
    assert parsed.total_fen == sum(r.amount_fen for r in card_rows)
    assert parsed.fee_milli_fen == 1000 * sum(r.fee_fen for r in card_rows)
    assert parsed.net_fen == parsed.total_fen - parsed.fee_milli_fen // 1000
    assert parsed.records_csv is not None
    lines = Path(parsed.records_csv).read_text().splitlines()
    amounts = [int(line.split(",")[7].strip('"')) for line in lines]
    assert amounts == [r.amount_fen for r in card_rows]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**9), st.integers(0, 10**7)), min_size=1, max_size=30))
def test_wechat_day_fee_is_the_exact_sum_rounded_half_up_once(rows):
    qr = [
        QrRow(f"42{i:026d}", f"WY{i}", amount, milli, AT, "1900000109")
        for i, (amount, milli) in enumerate(rows)
    ]
    parsed = wechat.parse(wechat_bill(qr), "wx.csv")
    (day,) = parsed.settlements
    exact = sum(Decimal(m) for _a, m in rows) / 1000
    assert day["fee_fen"] == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert day["fee_fen"] == milli_to_fen(sum(m for _a, m in rows))
    assert day["net_fen"] == sum(a for a, _m in rows) - day["fee_fen"]
