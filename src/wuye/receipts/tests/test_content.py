from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuye.receipts.content import ReceiptContent, ReceiptContentError, ReceiptLine
from wuye.receipts.tests.helpers import sample_content

fen = st.integers(min_value=-(10**12), max_value=10**12)
text = st.text(max_size=30)
lines = st.builds(ReceiptLine, text, text, fen, fen, fen, fen, text)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    lines=st.lists(lines, max_size=5).map(tuple),
    amount=fen,
    tendered=st.none() | fen,
    balance=st.none() | fen,
    paid_at=aware,
    name=text,
)
def test_content_round_trips_through_json_exactly_with_ints_staying_ints(
    lines, amount, tendered, balance, paid_at, name
):
    content = sample_content(
        lines=lines,
        amount_fen=amount,
        tendered_fen=tendered,
        prepaid_balance_after_fen=balance,
        paid_at=paid_at,
        payer_name=name,
    )

    again = ReceiptContent.from_json(content.to_json())

    assert again == content
    assert ReceiptContent.from_json(content.to_dict()) == content
    assert type(again.amount_fen) is int
    assert all(type(line.paid_fen) is int for line in again.lines)


def test_the_payment_time_keeps_its_offset():
    shanghai = timezone(timedelta(hours=8))
    content = sample_content(paid_at=datetime(2026, 1, 31, 23, 59, 59, 123456, tzinfo=shanghai))

    again = ReceiptContent.from_json(content.to_json())

    assert again.paid_at == content.paid_at
    assert again.paid_at.utcoffset() == timedelta(hours=8)


def test_a_list_of_lines_becomes_a_tuple_so_the_content_stays_hashable():
    content = sample_content(lines=[ReceiptLine("物业费", "2026-01", 100, 0, 0, 100)])

    assert isinstance(content.lines, tuple)
    assert hash(content)


@pytest.mark.parametrize(
    "change",
    [
        {"amount_fen": 800.0},
        {"amount_fen": True},
        {"tendered_fen": 1.5},
        {"paid_at": datetime(2026, 1, 1)},  # naive
        {"masked_pan": "6222021234567890123"},  # a full card number
        {"lines": ("物业费",)},
    ],
)
def test_malformed_content_is_refused(change):
    with pytest.raises(ReceiptContentError):
        sample_content(**change)


def test_a_masked_card_number_is_accepted():
    assert sample_content(masked_pan="622202******0123").masked_pan == "622202******0123"


def test_a_float_amount_on_a_line_is_refused():
    with pytest.raises(ReceiptContentError):
        ReceiptLine("物业费", "2026-01", 100.0, 0, 0, 100)  # type: ignore[arg-type]


def test_unknown_or_missing_fields_in_stored_json_are_reported():
    data = sample_content().to_dict()
    with pytest.raises(ReceiptContentError):
        ReceiptContent.from_json({**data, "surprise": 1})
    del data["lines"]
    with pytest.raises(ReceiptContentError):
        ReceiptContent.from_json(data)
