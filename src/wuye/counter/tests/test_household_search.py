"""counter.selectors.household_search: what it finds, on both databases, and that it agrees
with the ORM search it replaces (web.selectors.unit_search)."""

from __future__ import annotations

import pytest

from wuye.counter.selectors import household_search
from wuye.estates.models import ParkingSpace, Resident, Unit
from wuye.testing.factories import make_building, make_community, make_unit
from wuye.web.selectors import unit_search

pytestmark = pytest.mark.django_db


@pytest.fixture
def homes():
    community = make_community()
    block = make_building(community, code="17")
    a = make_unit(block, room_no="1803", label="17-1803")
    b = make_unit(block, room_no="1804", label="17-1804")
    c = make_unit(make_building(community, code="3"), room_no="1803", label="3-1803")
    Resident.objects.create(unit=a, name="王伟", phone="13900001234")
    Resident.objects.create(unit=b, name="王伟强", phone="13900005678", role="tenant")
    Resident.objects.create(unit=c, name="李娜", phone="13800009999")
    ParkingSpace.objects.create(community=community, code="P1", unit=c, plate_no="沪A12B45")
    other = make_unit(make_building(make_community(), code="9"), room_no="1803", label="9-1803")
    Resident.objects.create(unit=other, name="王伟", phone="13900001235")
    return {"a": a, "b": b, "c": c, "other": other, "community": community}


def _labels(units, text):
    return [u.label for u in household_search(units=units, text=text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("17-1803", ["17-1803"]),  # whole label
        ("1803", ["17-1803", "3-1803", "9-1803"]),  # room number, every building
        ("7-18", ["17-1803", "17-1804"]),  # part of a label
        ("王伟", ["17-1803", "17-1804", "9-1803"]),  # a two-character name, and inside a longer
        ("王", ["17-1803", "17-1804", "9-1803"]),  # a surname alone
        ("伟强", ["17-1804"]),
        ("王伟强", ["17-1804"]),
        ("1234", ["17-1803"]),  # phone digits, anywhere in the number
        ("0000123", ["17-1803", "9-1803"]),
        ("13800009999", ["3-1803"]),
        ("沪a12", ["3-1803"]),  # plate, case does not matter
        ("B45", ["3-1803"]),
        ("nothing", []),
        ("  ", []),
        ("50%", []),  # LIKE wildcards are text
        ("_", []),
    ],
)
def test_what_a_text_finds(homes, text, expected):
    units = Unit.objects.all()
    assert sorted(_labels(units, text)) == sorted(expected)


def test_only_the_units_given_are_searched_ordered_by_community_then_label(homes):
    mine = Unit.objects.filter(community=homes["community"])

    assert _labels(mine, "1803") == ["17-1803", "3-1803"]
    assert _labels(mine, "王伟") == ["17-1803", "17-1804"]
    assert [u.pk for u in household_search(units=mine, text="1803", limit=1)] == [homes["a"].pk]


@pytest.mark.parametrize("text", ["17-1803", "1803", "7-18", "王伟", "伟强", "1234", "沪a1", "b45"])
def test_the_same_households_as_the_orm_search(homes, text):
    units = Unit.objects.all()

    new = [u.pk for u in household_search(units=units, text=text)]
    old = [u.pk for u in unit_search(units=units, text=text, limit=20)]

    assert new == old


def test_rows_come_with_community_and_building(homes, django_assert_num_queries):
    with django_assert_num_queries(1):
        rows = household_search(units=Unit.objects.all(), text="17-1803")
        assert [(u.community.name, u.building.code) for u in rows] == [
            (homes["community"].name, "17")
        ]


@pytest.mark.postgres_only
def test_one_or_two_characters_find_names_and_exact_rooms_not_phones_or_plates(homes):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the index-only rule for short texts is PostgreSQL's")
    units = Unit.objects.all()

    assert _labels(units, "沪A") == []  # a plate needs three characters
    assert _labels(units, "12") == []  # so does a phone
    assert _labels(units, "李") == ["3-1803"]
