"""Finance pages for the new resolutions: chasing with a follow-up date (the queue filters by
it and shows due follow-ups first), adjusting an amount mismatch and recording a duplicate
from the exception's page, the linked entries shown there, and the CLI printing what the
rules resolved."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.payments.tests.helpers import household, staff
from wuye.reconciliation.models import ReconException
from wuye.reconciliation.tests.test_resolution import ledger_ok, recon_exception
from wuye.reconciliation.tests.test_resolution_adjust import (
    WITH_PREPAID,
    channel_duplicate,
    mismatch,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def hh(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = WITH_PREPAID
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return household()


def test_finance_chases_a_missing_arrival_from_its_page_with_a_follow_up_date(client, hh):
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=97_540)
    client.force_login(hh.finance)
    page = client.get(reverse("reconciliation:detail", args=[exc.pk])).content.decode()
    assert 'name="follow_up_on"' in page

    follow = timezone.localdate() + timedelta(days=2)
    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {"action": "chase", "note": "已致电收单行", "follow_up_on": follow.isoformat()},
        follow=True,
    )

    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert (exc.chased_by_id, exc.follow_up_on) == (hh.finance.pk, follow)
    page = response.content.decode()
    assert 'id="exc-chasing"' in page and follow.isoformat() in page


def test_the_queue_filters_chasing_and_due_follow_ups_and_shows_due_ones_first(client, hh):
    company_id = hh.community.company_id
    today = timezone.localdate()
    other = staff(hh.community, Role.FINANCE)
    plain = recon_exception(company_id, "channel_only", reference="PLAIN", amount_fen=100)
    later = recon_exception(
        company_id,
        "arrival_short",
        reference="LATER",
        amount_fen=-100,
        chasing_since=timezone.now(),
        chased_by=hh.finance,
        follow_up_on=today + timedelta(days=5),
    )
    due = recon_exception(
        company_id,
        "arrival_missing",
        reference="DUE",
        amount_fen=100,
        chasing_since=timezone.now(),
        chased_by=other,
        follow_up_on=today - timedelta(days=1),
    )
    client.force_login(hh.finance)
    url = reverse("reconciliation:queue")

    page = client.get(url).content.decode()
    assert page.index("DUE") < page.index("PLAIN") and page.index("DUE") < page.index("LATER")
    assert "overdue" in page

    page = client.get(url, {"state": "chasing"}).content.decode()
    assert "DUE" in page and "LATER" in page and "PLAIN" not in page
    page = client.get(url, {"state": "follow_up_due"}).content.decode()
    assert "DUE" in page and "LATER" not in page and "PLAIN" not in page
    page = client.get(url, {"chaser": "me", "state": ""}).content.decode()
    assert "LATER" in page and "DUE" not in page
    page = client.get(url, {"chaser": str(other.pk), "state": ""}).content.decode()
    assert "DUE" in page and "LATER" not in page
    assert plain.pk and later.pk and due.pk


def test_finance_adjusts_an_amount_mismatch_from_the_page_and_sees_the_entries(client, hh):
    _, exc = mismatch(hh, ours=10_000, theirs=10_300)
    client.force_login(hh.finance)
    page = client.get(reverse("reconciliation:detail", args=[exc.pk])).content.decode()
    assert 'value="adjust_surplus"' in page and 'name="surplus_to"' in page
    assert 'value="adjust_write_off"' not in page

    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {"action": "adjust_surplus", "surplus_to": "refund", "note": "多扣 3 元"},
        follow=True,
    )

    exc.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    page = response.content.decode()
    assert f'data-entry="{exc.entry_id}"' in page and "处理凭证" in page
    assert "应退款" in page
    ledger_ok()

    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {"action": "undo", "note": "选错去向"},
        follow=True,
    )
    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN
    assert "撤销冲正" in response.content.decode()
    ledger_ok()


def test_a_write_off_without_a_note_is_explained_and_changes_nothing(client, hh):
    _, exc = mismatch(hh, ours=10_000, theirs=9_990)
    client.force_login(hh.finance)
    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {"action": "adjust_write_off", "note": ""},
        follow=True,
    )
    assert "核销请填写说明" in response.content.decode()
    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN


def test_finance_records_a_channel_duplicate_from_the_page(client, hh):
    payment, exc = channel_duplicate(hh, amount=6_600)
    client.force_login(hh.finance)
    page = client.get(reverse("reconciliation:detail", args=[exc.pk])).content.decode()
    assert 'value="record_duplicate"' in page

    client.post(reverse("reconciliation:act", args=[exc.pk]), {"action": "record_duplicate"})

    exc.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    assert exc.events.get(action="record_duplicate").data["unit_id"] == payment.unit_id
    ledger_ok()


def test_the_chase_and_adjust_pages_speak_english(client, hh):
    _, exc = mismatch(hh, ours=10_000, theirs=9_990)
    client.force_login(hh.finance)
    client.cookies["django_language"] = "en"
    page = client.get(
        reverse("reconciliation:detail", args=[exc.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Adjust to the channel" in page and "write it off" in page
    page = client.get(
        reverse("reconciliation:queue"), {"state": "chasing"}, HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Follow-up" in page


def test_reconcile_run_prints_what_the_rules_resolved(hh):
    from wuye.reconciliation.models import ChannelSettlement
    from wuye.reconciliation.tests.conftest import merchants_setup
    from wuye.reconciliation.tests.test_resolution import SETTLE, settlement_and_credit

    company = hh.community.company
    merchants_setup(company)
    settlement_and_credit(company.pk, channel="card", gross=10_000, fee=50, credit=9_950)
    assert ChannelSettlement.objects.count() == 1
    out, err = StringIO(), StringIO()
    call_command(
        "reconcile",
        "run",
        "--date",
        f"{SETTLE:%Y%m%d}",
        "--channel",
        "card",
        "--as-of",
        f"{SETTLE + timedelta(days=1):%Y%m%d}",
        "--company",
        str(company.pk),
        stdout=out,
        stderr=err,
    )
    text = out.getvalue()
    assert "1 arrivals booked" in text
    assert "rule booked arrival: entry #" in text
    assert date(2026, 11, 21).strftime("%Y%m%d") in text


def test_the_day_page_links_to_the_follow_ups_that_are_due(client, hh):
    company_id = hh.community.company_id
    today = timezone.localdate()
    recon_exception(
        company_id,
        "arrival_missing",
        reference="DUE",
        amount_fen=100,
        chasing_since=timezone.now(),
        chased_by=hh.finance,
        follow_up_on=today,
    )
    client.force_login(hh.finance)
    page = client.get(reverse("reconciliation:day")).content.decode()
    assert 'id="follow-ups-due"' in page and "1 条催查待跟进" in page
    assert "state=follow_up_due" in page
