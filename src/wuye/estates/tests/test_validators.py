"""Chinese identifiers: USCC, phone numbers, ID-card numbers, settlement accounts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from stdnum.cn import ric

from wuye.estates.validators import (
    mask_id_card,
    mask_phone,
    validate_bank_account,
    validate_id_card,
    validate_phone,
    validate_uscc,
)
from wuye.testing.factories import make_uscc

# A fictional person born 1985-06-15 in Shanghai's Huangpu district (310101).
ID_BODY = "31010119850615123"
GOOD_ID = ID_BODY + ric.calc_check_digit(ID_BODY + "0")


def test_a_uscc_with_its_check_character_is_accepted():
    validate_uscc(make_uscc(42))


@pytest.mark.parametrize("value", ["9131000000000004", "91310000000000042XY", "", "ABC"])
def test_a_uscc_of_the_wrong_length_or_form_is_refused(value):
    with pytest.raises(ValidationError):
        validate_uscc(value)


def test_changing_one_character_of_a_valid_uscc_makes_it_invalid():
    good = make_uscc(7)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValidationError):
        validate_uscc(bad)


@pytest.mark.parametrize("value", ["13800138000", "199 0000 0001", "021-63210000", "02163210000"])
def test_mobile_and_landline_numbers_are_accepted(value):
    validate_phone(value)


@pytest.mark.parametrize("value", ["12800138000", "1380013800", "138001380001", "abc", "63210000"])
def test_malformed_phone_numbers_are_refused(value):
    with pytest.raises(ValidationError):
        validate_phone(value)


def test_an_id_card_with_a_valid_date_and_check_character_is_accepted():
    validate_id_card(GOOD_ID)


def test_an_id_card_with_a_wrong_check_character_is_refused_without_echoing_it():
    wrong = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")
    with pytest.raises(ValidationError) as info:
        validate_id_card(wrong)
    assert wrong not in " ".join(info.value.messages)
    assert "********" in " ".join(info.value.messages)


def test_an_id_card_with_an_impossible_birth_date_is_refused():
    body = "31010119850230123"  # 30 February
    with pytest.raises(ValidationError):
        validate_id_card(body + ric.calc_check_digit(body + "0"))


def test_masks_keep_only_the_ends_of_the_number():
    assert mask_id_card(GOOD_ID) == "310101********" + GOOD_ID[-4:]
    assert mask_phone("13800138000") == "138****8000"


@pytest.mark.parametrize("value", ["12345678", "6222 0210 0104 9876 543", "1" * 30])
def test_settlement_accounts_of_8_to_30_digits_are_accepted(value):
    validate_bank_account(value)


@pytest.mark.parametrize("value", ["1234567", "1" * 31, "6222-0210", "62220210010498765X", ""])
def test_settlement_accounts_that_are_not_8_to_30_digits_are_refused(value):
    with pytest.raises(ValidationError):
        validate_bank_account(value)
