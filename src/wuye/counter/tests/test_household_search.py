"""counter.selectors.household_search: what it finds, on both databases, that it agrees with
the ORM search it replaces (web.selectors.unit_search), and that every way PostgreSQL may read
a text (sorted candidates, a walk in page order, a walk against a hash) gives the same page."""

from __future__ import annotations

import pytest

from wuye.counter import selectors
from wuye.counter.selectors import household_search, household_search_page
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
    rows = household_search(units=Unit.objects.all(), text="17-1803")

    with django_assert_num_queries(0):
        assert [(u.community.name, u.building.code) for u in rows] == [
            (homes["community"].name, "17")
        ]


def test_more_says_whether_the_text_finds_more_than_the_page(homes):
    units = Unit.objects.all()

    page = household_search_page(units=units, text="1803", limit=2)
    assert [u.label for u in page.units] == ["17-1803", "3-1803"]
    assert page.more

    page = household_search_page(units=units, text="1803", limit=3)
    assert len(page.units) == 3
    assert not page.more
    assert not household_search_page(units=units, text="nothing").more


def test_a_landline_is_found_by_its_digits_and_by_a_text_with_its_dash(homes):
    Resident.objects.create(unit=homes["b"], name="赵六", phone="021-55501803")
    units = Unit.objects.all()

    assert _labels(units, "1-5550") == ["17-1804"]
    assert _labels(units, "5550180") == ["17-1804"]
    assert "17-1804" in _labels(units, "1-55")


@pytest.fixture
def street(homes):
    """Thirty more households in one building: 王 in every one, 李 in every third."""
    block = make_building(homes["community"], code="8")
    for i in range(30):
        unit = make_unit(block, room_no=f"{100 + i}", label=f"8-{100 + i}")
        Resident.objects.create(unit=unit, name="王" + "芳娜"[i % 2], phone=f"1370000{i:04d}")
        if i % 3 == 0:
            Resident.objects.create(unit=unit, name="李明", phone=f"1360000{i:04d}", role="tenant")
        if i % 5 == 0:
            ParkingSpace.objects.create(
                community=homes["community"], code=f"P8{i}", unit=unit, plate_no=f"沪B{i:05d}"
            )
    return block


FORCED = {
    # every part sorted from its candidates
    "sort": {
        "DENSE_SHARE": 2.0,
        "SORT_MAX": 10**9,
        "LABEL_CAP": 10**9,
        "RESIDENT_CAP": 10**9,
        "PLATE_CAP": 10**9,
    },
    # every part (but one with no candidates) tested against a hash while walking
    "hash": {
        "DENSE_SHARE": 2.0,
        "SORT_MAX": 0,
        "LABEL_CAP": 10**9,
        "RESIDENT_CAP": 10**9,
        "PLATE_CAP": 10**9,
    },
    # every part walked with its own test
    "walk": {
        "DENSE_SHARE": 2.0,
        "SORT_MAX": 0,
        "LABEL_CAP": -1,
        "RESIDENT_CAP": -1,
        "PLATE_CAP": -1,
    },
    # walked at once on the planner's estimate
    "estimate": {"DENSE_SHARE": 0.0},
}


@pytest.mark.postgres_only
@pytest.mark.parametrize("how", sorted(FORCED))
@pytest.mark.parametrize(
    "text", ["王", "王芳", "李", "1803", "8-1", "137000", "沪B", "沪B0001", "nothing", "1-10"]
)
def test_every_way_of_reading_gives_the_same_page(street, monkeypatch, how, text):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    units = Unit.objects.all()
    expected = household_search_page(units=units, text=text, limit=7)
    # The same as the ORM query where the rules agree (three characters and more).
    if len(text) >= 3:
        assert [u.pk for u in expected.units] == [
            u.pk for u in unit_search(units=units, text=text, limit=7)
        ]

    for name, value in FORCED[how].items():
        monkeypatch.setattr(selectors, name, value)
    got = household_search_page(units=units, text=text, limit=7)

    assert [u.pk for u in got.units] == [u.pk for u in expected.units]
    assert got.more == expected.more
    if how != "estimate" and expected.units:
        assert how in got.plan.values() or how == "hash"


@pytest.mark.postgres_only
def test_one_or_two_characters_find_names_and_exact_rooms_not_phones_or_plates(homes):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the index-only rule for short texts is PostgreSQL's")
    units = Unit.objects.all()

    assert _labels(units, "沪A") == []  # a plate needs three characters
    assert _labels(units, "12") == []  # so does a phone
    assert _labels(units, "李") == ["3-1803"]
