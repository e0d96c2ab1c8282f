"""Finance pages: who may read and act, isolation between companies, uploads that say where a
file is wrong, resolving an exception from its page, reports for download."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.urls import reverse

from wuye.accounts.models import Role
from wuye.core.models import Job
from wuye.merchants.models import Channel as MerchantChannel
from wuye.payments.tests.helpers import household, staff
from wuye.reconciliation.models import ChannelRecord, ReconException, SourceFile
from wuye.reconciliation.samples import CardRow, acquirer_csv
from wuye.reconciliation.tests.conftest import CARD_MID, _merchant
from wuye.reconciliation.tests.test_resolution import (
    CARD_CHANNELS,
    SETTLE,
    channel_record,
    ledger_ok,
    recon_exception,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def hh(settings):  # type: ignore[no-untyped-def]
    settings.WUYE_CHANNELS = CARD_CHANNELS
    return household()


def _login(client, hh, role):  # type: ignore[no-untyped-def]
    user = hh.finance if role == Role.FINANCE else staff(hh.community, role)
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.FINANCE, 200),
        (Role.ADMIN, 200),
        (Role.MANAGER, 200),
        (Role.AUDITOR, 200),
        (Role.CASHIER, 403),
    ],
)
def test_the_day_page_admits_finance_admin_manager_and_auditor(client, hh, role, status):
    _login(client, hh, role)
    assert client.get(reverse("reconciliation:day")).status_code == status
    assert client.get(reverse("reconciliation:queue")).status_code == status


def test_the_day_page_shows_each_channel_and_the_money_in_transit(client, hh):
    _login(client, hh, Role.FINANCE)
    recon_exception(
        hh.community.company_id, "channel_only", reference="000001234599", amount_fen=20000
    )
    page = client.get(reverse("reconciliation:day"), {"date": "2026-11-21"}).content.decode()
    assert "银行卡" in page and "微信支付" in page and "支付宝" in page
    assert "000001234599" in page
    assert 'id="recon-chart"' in page
    assert 'id="upload-form"' in page and 'id="run-form"' in page


def test_a_manager_reads_but_gets_no_actions_and_cannot_post(client, hh):
    exc = recon_exception(hh.community.company_id, "arrival_missing", amount_fen=100)
    _login(client, hh, Role.MANAGER)
    page = client.get(reverse("reconciliation:detail", args=[exc.pk])).content.decode()
    assert 'id="action-form"' not in page
    assert 'id="upload-form"' not in client.get(reverse("reconciliation:day")).content.decode()
    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]), {"action": "chase", "note": "x"}
    )
    assert response.status_code == 403
    exc.refresh_from_db()
    assert exc.events.count() == 0


def test_an_exception_of_another_company_is_a_404(client, hh):
    other = household()
    exc = recon_exception(other.community.company_id, "arrival_missing", amount_fen=100)
    _login(client, hh, Role.FINANCE)
    assert client.get(reverse("reconciliation:detail", args=[exc.pk])).status_code == 404
    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]), {"action": "chase", "note": "x"}
    )
    assert response.status_code == 404
    queue = client.get(reverse("reconciliation:queue"), {"state": ""}).content.decode()
    assert f'href="{reverse("reconciliation:detail", args=[exc.pk])}"' not in queue


def test_finance_posts_a_channel_only_payment_to_a_chosen_household_from_the_page(client, hh):
    bill = hh.bill(12800)
    company_id = hh.community.company_id
    record = channel_record(company_id, channel="card", reference="000001234567", amount_fen=12800)
    exc = recon_exception(
        company_id,
        "channel_only",
        reference=record.reference,
        amount_fen=12800,
        channel_record=record,
    )
    _login(client, hh, Role.FINANCE)

    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {
            "action": "post_payment",
            "community": hh.community.pk,
            "room": hh.unit.label,
            "note": "业主持小票来访",
        },
        follow=True,
    )

    exc.refresh_from_db()
    bill.refresh_from_db()
    assert exc.state == ReconException.State.RESOLVED
    assert bill.outstanding_fen == 0
    page = response.content.decode()
    assert "补记收款" in page and "业主持小票来访" in page
    ledger_ok()


def test_a_wrong_room_is_explained_and_changes_nothing(client, hh):
    company_id = hh.community.company_id
    exc = recon_exception(company_id, "channel_only", reference="r9", amount_fen=100)
    _login(client, hh, Role.FINANCE)
    response = client.post(
        reverse("reconciliation:act", args=[exc.pk]),
        {"action": "post_payment", "community": hh.community.pk, "room": "99-9999"},
        follow=True,
    )
    assert "99-9999" in response.content.decode()
    exc.refresh_from_db()
    assert exc.state == ReconException.State.OPEN


def test_the_queue_filters_by_channel_category_state_and_date(client, hh):
    company_id = hh.community.company_id
    a = recon_exception(company_id, "channel_only", reference="A-card", amount_fen=100)
    b = recon_exception(
        company_id, "fee_mismatch", channel="wechat", reference="B-wx", amount_fen=3
    )
    _login(client, hh, Role.FINANCE)
    page = client.get(reverse("reconciliation:queue"), {"channel": "wechat"}).content.decode()
    assert "B-wx" in page and "A-card" not in page
    page = client.get(
        reverse("reconciliation:queue"), {"category": "channel_only"}
    ).content.decode()
    assert "A-card" in page and "B-wx" not in page
    page = client.get(
        reverse("reconciliation:queue"), {"date_from": "2026-11-22", "state": ""}
    ).content.decode()
    assert "A-card" not in page and "B-wx" not in page
    page = client.get(reverse("reconciliation:queue"), {"owner": "none"}).content.decode()
    assert "A-card" in page and "B-wx" in page
    assert a.pk != b.pk


def test_an_upload_with_a_damaged_file_names_file_and_line_and_imports_nothing(client, hh):
    _merchant(hh.community.company, MerchantChannel.ACQUIRER, CARD_MID)
    good = acquirer_csv(
        [CardRow("000001234567", 128000, 640, datetime(2026, 11, 20, 9, 30), SETTLE)]
    )
    damaged = good.replace(b"1280.00", b"12x0.00", 1)
    _login(client, hh, Role.FINANCE)
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        reverse("reconciliation:upload"),
        {
            "uploads": [SimpleUploadedFile("acq-20261121.csv", damaged)],
            "company": hh.community.company_id,
        },
        follow=True,
    )
    text = response.content.decode()
    assert "acq-20261121.csv" in text and "2" in text
    assert SourceFile.objects.count() == 0

    response = client.post(
        reverse("reconciliation:upload"),
        {
            "uploads": [SimpleUploadedFile("acq-20261121.csv", good)],
            "company": hh.community.company_id,
        },
        follow=True,
    )
    assert SourceFile.objects.count() == 1
    assert ChannelRecord.objects.get().reference == "000001234567"


def test_running_a_day_queues_a_job(client, hh, django_capture_on_commit_callbacks):
    _login(client, hh, Role.FINANCE)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("reconciliation:run"), {"date": "2026-11-21", "channel": "card"}
        )
    job = Job.objects.get(kind="reconcile_day")
    assert job.params["settle_date"] == "2026-11-21"
    assert f"job={job.pk}" in response["Location"]


@pytest.mark.parametrize("fmt", ["json", "xlsx", "pdf"])
def test_the_report_downloads_in_each_format(client, hh, fmt):
    _login(client, hh, Role.AUDITOR)
    response = client.get(reverse("reconciliation:report", args=["20261121", fmt]))
    assert response.status_code == 200
    assert response.content[:2] in (b"{\n", b"PK", b"%P")


def test_the_pages_speak_english(client, hh):
    _login(client, hh, Role.FINANCE)
    client.cookies["django_language"] = "en"
    page = client.get(reverse("reconciliation:day"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Reconciliation" in page and "Money in transit" in page


def test_another_companys_day_report_and_arrivals_are_404(client, hh):
    from wuye.reconciliation.resolution import arrival_post

    other = household()
    entry = arrival_post(
        company_id=other.community.company_id,
        channel="card",
        settle_date=SETTLE,
        bank_fen=100,
        fee_fen=0,
        value_date=SETTLE,
        bank_reference="B-other",
    )
    _login(client, hh, Role.FINANCE)
    theirs = {"company": other.community.company_id}
    assert client.get(reverse("reconciliation:day"), theirs).status_code == 404
    assert (
        client.get(reverse("reconciliation:report", args=["20261121", "json"]), theirs).status_code
        == 404
    )
    assert (
        client.post(
            reverse("reconciliation:arrival_undo", args=[entry.pk]), {"reason": "x"}
        ).status_code
        == 404
    )
    assert (
        client.post(reverse("reconciliation:run"), {**theirs, "date": "2026-11-21"}).status_code
        == 404
    )
    assert not Job.objects.exists()
