"""Company creation, unit labels and residents' encrypted ID-card numbers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from stdnum.cn import ric

from wuye.core.crypto import lookup_hash
from wuye.estates.models import Company, Resident
from wuye.estates.selectors import residents_with_id_card
from wuye.estates.services import company_create, resident_set_id_card, unit_label
from wuye.testing.factories import make_unit, make_uscc

ID_BODY = "44030419900101002"
GOOD_ID = ID_BODY + ric.calc_check_digit(ID_BODY + "0")

pytestmark = pytest.mark.django_db


def test_company_create_stores_a_normalised_uscc():
    code = make_uscc(9001)

    company = company_create(
        name="示例物业服务有限公司", uscc_code=code.lower(), bank_account_no="6222 0210 0104 9876"
    )

    assert company.uscc == code
    assert company.bank_account_no == "6222021001049876"
    assert company.bank_account_name == "示例物业服务有限公司"


def test_company_create_names_every_bad_field_and_writes_nothing():
    with pytest.raises(ValidationError) as info:
        company_create(name="", uscc_code="123", bank_account_no="12-34", phone="x")

    assert set(info.value.message_dict) == {"name", "uscc", "bank_account_no", "phone"}
    assert Company.objects.count() == 0


def test_company_create_refuses_a_uscc_already_registered():
    code = make_uscc(9002)
    company_create(name="甲物业", uscc_code=code)

    with pytest.raises(ValidationError) as info:
        company_create(name="乙物业", uscc_code=code)

    assert "uscc" in info.value.message_dict
    assert Company.objects.count() == 1


def test_unit_label_joins_building_and_room():
    assert unit_label(building_code="1-2", room_no=" 301 ") == "1-2-301"


def test_unit_label_refuses_an_empty_room():
    with pytest.raises(ValidationError):
        unit_label(building_code="3", room_no=" ")


def _resident() -> Resident:
    return Resident.objects.create(unit=make_unit(), name="张三")


def test_resident_id_card_is_encrypted_at_rest_with_mask_and_lookup_hash():
    resident = _resident()

    resident_set_id_card(resident=resident, id_card=GOOD_ID.lower())

    with connection.cursor() as cur:
        cur.execute("SELECT id_card FROM estates_resident WHERE id = %s", [resident.pk])
        raw = cur.fetchone()[0]
    assert GOOD_ID not in raw
    assert ID_BODY[:10] not in raw
    fresh = Resident.objects.get(pk=resident.pk)
    assert fresh.id_card == GOOD_ID
    assert fresh.id_card_masked == "440304********" + GOOD_ID[-4:]
    assert fresh.id_card_hash == lookup_hash(GOOD_ID)


def test_a_bad_id_card_leaves_the_resident_unchanged():
    resident = _resident()
    resident_set_id_card(resident=resident, id_card=GOOD_ID)
    wrong = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")

    with pytest.raises(ValidationError) as info:
        resident_set_id_card(resident=resident, id_card=wrong)

    assert "id_card" in info.value.message_dict
    assert Resident.objects.get(pk=resident.pk).id_card == GOOD_ID


def test_an_empty_id_card_clears_all_three_fields():
    resident = _resident()
    resident_set_id_card(resident=resident, id_card=GOOD_ID)

    resident_set_id_card(resident=resident, id_card="")

    fresh = Resident.objects.get(pk=resident.pk)
    assert (fresh.id_card, fresh.id_card_masked, fresh.id_card_hash) == ("", "", "")


def test_residents_are_found_by_id_card_without_decrypting():
    resident = _resident()
    resident_set_id_card(resident=resident, id_card=GOOD_ID)
    company_id = resident.unit.community.company_id

    found = list(residents_with_id_card(company_id=company_id, id_card=GOOD_ID))
    other_company = list(residents_with_id_card(company_id=company_id + 999, id_card=GOOD_ID))

    assert found == [resident]
    assert other_company == []
