"""The counter's search page: the first page of households in order, only the cashier's own,
and whether the text finds more than the page shows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from wuye.accounts.models import Role
from wuye.counter.views import SEARCH_ROWS
from wuye.estates.models import Resident
from wuye.testing.factories import (
    make_building,
    make_community,
    make_company,
    make_unit,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def block():
    """SEARCH_ROWS + 1 households of 王 in one building, and one in another company."""
    company = make_company()
    building = make_building(make_community(company, name="锦绣花园"), code="2")
    for i in range(SEARCH_ROWS + 1):
        unit = make_unit(building, room_no=f"{201 + i}", label=f"2-{201 + i}")
        Resident.objects.create(unit=unit, name=f"王{'芳娜'[i % 2]}", phone=f"1380000{i:04d}")
    foreign = make_unit(make_building(make_community(make_company()), code="2"), label="2-200")
    Resident.objects.create(unit=foreign, name="王芳", phone="13900000000")
    return {"cashier": make_user(company, role=Role.CASHIER)}


def test_a_text_that_finds_more_than_the_page_shows_the_first_page_and_says_so(client, block):
    client.force_login(block["cashier"])

    response = client.get(reverse("counter:search"), {"q": "王"}, HTTP_HX_REQUEST="true")

    labels = [u.label for u, _owner in response.context["rows"]]
    assert labels == [f"2-{201 + i}" for i in range(SEARCH_ROWS)]  # not 2-200: not theirs
    assert response.context["more"] is True
    assert f"只显示前 {SEARCH_ROWS} 户，还有更多" in response.content.decode()


def test_a_text_that_finds_the_whole_page_or_less_says_there_is_no_more(client, block):
    client.force_login(block["cashier"])

    response = client.get(reverse("counter:search"), {"q": "王娜"}, HTTP_HX_REQUEST="true")

    assert len(response.context["rows"]) == SEARCH_ROWS // 2
    assert response.context["more"] is False
    assert "还有更多" not in response.content.decode()
