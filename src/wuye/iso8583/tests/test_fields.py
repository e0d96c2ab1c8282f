"""Structured fields as exact digit strings from pos-iso8583.md §2-§3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuye.iso8583 import codec, fields
from wuye.iso8583.codec import FormatError
from wuye.iso8583.fields import (
    BatchItem,
    EntryMedium,
    Field60,
    Field61,
    SettlementField48,
    Totals,
)


@pytest.mark.parametrize(
    ("medium", "pin", "expected"),
    [("01", True, "011"), (EntryMedium.STRIPE, False, "022"), ("05", True, "051"),
     (EntryMedium.CONTACTLESS, False, "072")],
)
def test_entry_mode(medium, pin, expected):
    assert fields.entry_mode(medium, pin_entered=pin) == expected
    assert fields.parse_entry_mode(expected) == (EntryMedium(medium), pin)


@pytest.mark.parametrize("bad", ["03", "031", "053", "05a"])
def test_bad_entry_mode(bad):
    with pytest.raises(FormatError):
        fields.parse_entry_mode(bad)


def test_field60_layouts():
    assert Field60("00", "000001", "003").build() == "00000001003"
    assert Field60("22", "000123", "000", "5", "0").build() == "2200012300050"
    assert Field60.parse("2200012300060") == Field60("22", "000123", "000", "6", "0")
    assert Field60.parse("00000001201") == Field60("00", "000001", "201")
    # on the wire: 2-byte BCD length in digits, right-padded with 0
    body = codec.encode({"t": "0200", "60": "2200012300050"})
    assert body[10:] == bytes.fromhex("0013" "22000123000500")


@pytest.mark.parametrize("bad", ["2200012300", "22000123000500", "2200012300A"])
def test_field60_refuses_bad_digits(bad):
    with pytest.raises(FormatError, match="field 60"):
        Field60.parse(bad)


def test_field60_refuses_half_a_capability():
    with pytest.raises(FormatError):
        Field60("22", "000001", "000", "5").build()


def test_field61_layouts():
    assert Field61("000001", "000017").build() == "000001000017"
    assert Field61("000001", "000017", "1120").build() == "0000010000171120"
    assert Field61.parse("0000010000171120") == Field61("000001", "000017", "1120")
    with pytest.raises(FormatError):
        Field61.parse("00000100001")


def test_settlement_48_request_and_verdict():
    request = SettlementField48(Totals(128000, 1, 30000, 1))
    assert request.build() == (
        "000000128000" "001" "000000030000" "001" "0" + "0" * 31
    )
    answer = SettlementField48.parse("000000128000" "001" "000000030000" "001" "2" + "0" * 31)
    assert answer.domestic == Totals(128000, 1, 30000, 1)
    assert answer.domestic_code == "2"
    with pytest.raises(FormatError):
        SettlementField48.parse("0" * 61)
    with pytest.raises(FormatError):
        Totals(10**12, 0, 0, 0).build()


def test_batch_upload_items():
    items = [BatchItem("000017", "6222021000000000017", 128000),
             BatchItem("000018", "6259000000000000030", 1)]
    value = fields.build_batch_upload_48(items)
    assert value == (
        "02"
        "00" "000017" "06222021000000000017" "000000128000"
        "00" "000018" "06259000000000000030" "000000000001"
    )
    assert fields.parse_batch_upload_48(value) == items
    assert fields.build_batch_end_48(12) == "0012"
    assert fields.parse_batch_end_48("0012") == 12


def test_batch_upload_refuses_too_many_or_damaged():
    item = BatchItem("000017", "6222021000000000017", 1)
    with pytest.raises(FormatError):
        fields.build_batch_upload_48([item] * 9)
    with pytest.raises(FormatError):
        fields.build_batch_upload_48([])
    with pytest.raises(FormatError):
        fields.parse_batch_upload_48("02" + "0" * 40)


@given(st.lists(st.tuples(st.integers(0, 999_999), st.from_regex(r"\A[1-9][0-9]{12,18}\Z"),
                          st.integers(0, 10**12 - 1)), min_size=1, max_size=8))
def test_batch_upload_round_trips(rows):
    items = [BatchItem(f"{s:06d}", pan, amount) for s, pan, amount in rows]
    assert fields.parse_batch_upload_48(fields.build_batch_upload_48(items)) == items


def test_luhn_valid_test_cards_and_codes():
    def luhn_ok(pan: str) -> bool:
        total = 0
        for i, ch in enumerate(reversed(pan)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        return total % 10 == 0

    assert len(fields.TEST_CARDS) == 8
    assert all(luhn_ok(card.pan) for card in fields.TEST_CARDS)
    assert fields.test_card("6228480000000000026").balance_fen == 5000
    assert fields.test_card("6222021000000000074").pin == "654321"
    assert fields.test_card("1234") is None
    assert set(fields.RESPONSE_CODES) >= {"00", "94", "97", "A0"}
