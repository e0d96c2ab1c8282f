from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuye.imports.specs import OPENING, READINGS, RESIDENTS, UNITS, CellError


def col(spec, key):
    return spec.column(key)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (89.5, Decimal("89.50")),
        ("89.50", Decimal("89.50")),
        (100, Decimal("100.00")),
        ("1,234.5", Decimal("1234.50")),
        (Decimal("0.01"), Decimal("0.01")),
    ],
)
def test_an_area_cell_becomes_an_exact_two_decimal_value(raw, expected):
    assert col(UNITS, "area_m2").parse(raw) == expected


@pytest.mark.parametrize("raw", [0.1 + 0.2, "89.505", 1.005, "abc", True])
def test_an_area_with_more_than_two_decimals_or_not_a_number_is_refused(raw):
    with pytest.raises(CellError):
        col(UNITS, "area_m2").parse(raw)


def test_a_reading_keeps_three_decimals_and_refuses_a_fourth():
    reading = col(READINGS, "value")
    assert reading.parse(123.456) == Decimal("123.456")
    with pytest.raises(CellError):
        reading.parse("123.4567")


def test_a_negative_area_is_refused():
    with pytest.raises(CellError) as exc:
        col(UNITS, "area_m2").parse("-1")
    assert "不能小于" in exc.value.zh


@pytest.mark.parametrize(
    ("raw", "fen"), [(1074.0, 107400), ("1,074.05", 107405), (0.1, 10), (12345678.91, 1234567891)]
)
def test_a_yuan_amount_becomes_fen_without_floating_point(raw, fen):
    assert col(OPENING, "owed_fen").parse(raw) == fen


@pytest.mark.parametrize("raw", ["10.001", 10.001, "-5", "十元"])
def test_a_bad_amount_is_refused(raw):
    with pytest.raises(CellError):
        col(OPENING, "owed_fen").parse(raw)


@pytest.mark.parametrize("raw", ["住宅", "residential", "Residential"])
def test_a_unit_type_is_accepted_as_chinese_label_or_english_code(raw):
    assert col(UNITS, "unit_type").parse(raw) == "residential"


def test_an_unknown_enum_value_names_the_allowed_ones():
    with pytest.raises(CellError) as exc:
        col(UNITS, "state").parse("出租")
    assert "已入住/空置/未售" in exc.value.zh
    assert "occupied" in exc.value.en


def test_a_blank_enum_takes_its_default_and_a_blank_required_cell_is_refused():
    assert col(UNITS, "unit_type").parse(None) == "residential"
    with pytest.raises(CellError) as exc:
        col(UNITS, "room").parse("  ")
    assert exc.value.zh == "必填"


@pytest.mark.parametrize(
    "raw", [date(2024, 1, 31), datetime(2024, 1, 31), "2024-01-31", "2024/1/31", "20240131"]
)
def test_dates_are_read_from_excel_dates_and_common_text_forms(raw):
    assert col(UNITS, "handover_date").parse(raw) == date(2024, 1, 31)


def test_room_numbers_typed_as_numbers_lose_the_float_suffix():
    assert col(UNITS, "room").parse(301.0) == "301"


def test_yes_no_cells_accept_chinese_and_english():
    primary = col(RESIDENTS, "is_primary")
    assert primary.parse("是") is True
    assert primary.parse("N") is False
    with pytest.raises(CellError):
        primary.parse("maybe")



@given(st.decimals(min_value=0, max_value=10**12, places=2, allow_nan=False))
def test_any_two_decimal_area_survives_being_stored_as_an_excel_float(value):
    # Excel keeps numbers as doubles; up to 15 significant digits come back exactly.
    assert col(UNITS, "area_m2").parse(float(value)) == value


@given(st.integers(min_value=0, max_value=10**14))
def test_any_amount_in_fen_survives_being_typed_as_yuan_in_excel(fen):
    assert col(OPENING, "owed_fen").parse(float(fen) / 100) == fen
