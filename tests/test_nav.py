"""The main navigation: the receipts list sits next to the counter, for every role that may
read receipts, in Chinese and in English."""

from __future__ import annotations

import pytest
from django.urls import reverse

from wuye.accounts.models import Role
from wuye.receipts.views import RECEIPTS_READ
from wuye.testing.factories import make_community, make_company, make_user

pytestmark = pytest.mark.django_db


def nav_links(html: str) -> list[str]:
    nav = html.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
    return [part.split(">", 1)[1].split("<", 1)[0] for part in nav.split("<a ")[1:]]


@pytest.mark.parametrize("role", sorted(RECEIPTS_READ))
def test_every_role_that_reads_receipts_finds_them_in_the_nav(client, role):
    company = make_company()
    client.force_login(make_user(company, role, [make_community(company)]))

    links = nav_links(client.get(reverse("web:home")).content.decode())

    assert "收据" in links
    if "收费台" in links:
        assert links.index("收据") == links.index("收费台") + 1


def test_the_receipts_entry_is_marked_active_on_the_receipts_pages_and_reads_in_english(client):
    company = make_company()
    client.force_login(make_user(company, Role.CASHIER, [make_community(company)]))
    url = reverse("receipts:list")

    html = client.get(url).content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.get(url).content.decode()

    assert f'<a href="{url}" class="active" aria-current="page">收据</a>' in html
    assert "Receipts" in nav_links(english)
