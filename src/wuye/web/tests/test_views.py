"""The screens, through Django's test client: what each shows, to whom, in which language."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.billing.models import Bill
from wuye.core.models import Job
from wuye.testing.factories import make_user
from wuye.web.tests.scenario import login, make_estate

pytestmark = pytest.mark.django_db


class FakeTask:
    """Stands in for the billing task: records what was enqueued."""

    def __init__(self, sink: list) -> None:
        self.sink = sink

    def enqueue(self, job_id: int) -> None:
        self.sink.append(job_id)


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def estate(today):
    return make_estate(tag="甲", today=today, merchant_no="1900000001")


def test_anonymous_user_is_sent_to_login(client):
    resp = client.get(reverse("web:home"))

    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("login"))


def test_login_page_renders_in_chinese_by_default(client):
    resp = client.get(reverse("login"))

    assert resp.status_code == 200
    assert "登录" in resp.content.decode()


def test_dashboard_shows_billed_received_and_rate_per_community(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:home"))

    html = resp.content.decode()
    assert resp.status_code == 200
    assert estate.community.name in html
    assert "¥223.75" in html  # billed this month
    assert "¥100.00" in html  # received
    assert "44.7%" in html  # 10000 / 22375 = 44.69% amount basis
    assert "chart-4.6.1.umd.min.js" in html


def test_unit_search_finds_household_by_owner_name_phone_room_and_plate(client, estate):
    login(client, estate.admin)
    url = reverse("web:unit_search")

    for text in ["业主甲", "13800138000", "1-101甲", "沪A甲"]:
        resp = client.get(url, {"q": text}, HTTP_HX_REQUEST="true")
        assert resp.status_code == 200
        assert reverse("web:household", args=[estate.unit.pk]) in resp.content.decode(), text


def test_unit_search_as_htmx_returns_only_the_results_fragment(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:unit_search"), {"q": "业主甲"}, HTTP_HX_REQUEST="true")

    assert "<html" not in resp.content.decode()


def test_household_page_shows_residents_bills_and_outstanding(client, estate, today):
    login(client, estate.admin)

    resp = client.get(reverse("web:household", args=[estate.unit.pk]))

    html = resp.content.decode()
    assert resp.status_code == 200
    assert "业主甲" in html
    assert "110101********1234" in html
    assert "沪A甲" in html
    assert "¥123.75" in html  # outstanding: 223.75 - 100.00


def test_household_statement_as_of_a_date_before_the_bill_shows_nothing_owed(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:household", args=[estate.unit.pk]), {"as_of": "2000-01-01"})

    assert resp.status_code == 200
    assert resp.context["statement"]["owed_fen"] == 0
    assert resp.context["statement"]["billed_fen"] == 0


def test_bills_list_filters_by_status(client, estate, today):
    Bill.objects.filter(pk=estate.bill.pk).update(paid_fen=22375)
    login(client, estate.admin)

    settled = client.get(reverse("web:bills"), {"status": "settled"})
    unpaid = client.get(reverse("web:bills"), {"status": "unpaid"})

    assert settled.context["page"].paginator.count == 1
    assert unpaid.context["page"].paginator.count == 0


def test_bills_list_with_a_bad_month_names_the_field_and_lists_everything(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:bills"), {"period": "2026-13"})

    assert resp.status_code == 200
    assert "2026-13" in resp.content.decode()
    assert resp.context["page"].paginator.count == 1


def test_bills_export_is_csv_with_yuan_amounts(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:bills_export"))

    body = b"".join(resp.streaming_content).decode("utf-8")
    assert resp["Content-Type"].startswith("text/csv")
    assert body.startswith("\ufeff小区,")
    assert "1-101甲" in body and "223.75" in body and "123.75" in body


def test_merchants_page_flags_documents_expiring_within_60_days(client, estate):
    login(client, estate.admin)

    resp = client.get(reverse("web:merchants"))

    html = resp.content.decode()
    assert "甲支付服务协议" in html
    assert "即将到期" in html
    assert "0.60%" in html


def test_job_page_polls_while_running_and_stops_when_finished(client, estate):
    login(client, estate.admin)
    running = Job.objects.create(
        kind="billing_run",
        title="x",
        company=estate.company,
        status=Job.Status.RUNNING,
        progress_done=30,
        progress_total=120,
    )

    polling = client.get(reverse("web:job", args=[running.pk]), HTTP_HX_REQUEST="true")
    done = client.get(reverse("web:job", args=[estate.job.pk]), HTTP_HX_REQUEST="true")

    assert 'hx-trigger="every 1s"' in polling.content.decode()
    assert 'aria-valuenow="25"' in polling.content.decode()
    assert "hx-trigger" not in done.content.decode()
    assert reverse("web:run", args=[estate.run.pk]) in done.content.decode()


def test_launching_a_billing_run_creates_a_job_and_enqueues_it_on_commit(
    client, estate, django_capture_on_commit_callbacks, monkeypatch
):
    enqueued = []
    from wuye.billing import tasks

    monkeypatch.setattr(tasks, "billing_run_task", FakeTask(enqueued))
    login(client, estate.admin)

    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(
            reverse("web:run_launch"),
            {
                "community": estate.community.pk,
                "period": "2026-03",
                "cycle_months": "3",
                "issued_on": "2026-03-01",
            },
        )

    job = Job.objects.filter(kind="billing_run").latest("id")
    assert resp.status_code == 302
    assert resp["Location"] == reverse("web:job", args=[job.pk])
    assert job.params == {
        "community_id": estate.community.pk,
        "period_start": "2026-03-01",
        "cycle_months": 3,
        "issued_on": "2026-03-01",
    }
    assert enqueued == [job.pk]


def test_launching_a_run_twice_while_queued_is_refused_with_a_reason(client, estate, monkeypatch):
    from wuye.billing import tasks

    monkeypatch.setattr(tasks, "billing_run_task", FakeTask([]))
    login(client, estate.admin)
    data = {
        "community": estate.community.pk,
        "period": "2026-03",
        "cycle_months": "1",
        "issued_on": "2026-03-01",
    }
    client.post(reverse("web:run_launch"), data)

    resp = client.post(reverse("web:run_launch"), data)

    assert resp.status_code == 400
    assert "已有出账任务" in resp.content.decode()
    assert Job.objects.filter(kind="billing_run", status=Job.Status.QUEUED).count() == 1


def test_cashier_sees_households_and_bills_but_not_billing_runs(client, estate):
    cashier = make_user(estate.company, Role.CASHIER)
    login(client, cashier)

    assert client.get(reverse("web:household", args=[estate.unit.pk])).status_code == 200
    assert client.get(reverse("web:bills")).status_code == 200
    assert client.get(reverse("web:runs")).status_code == 403
    assert client.post(reverse("web:run_launch"), {}).status_code == 403
    assert "出账</a>" not in client.get(reverse("web:home")).content.decode()


def test_manager_and_auditor_see_runs_but_cannot_launch_one(client, estate):
    for role in (Role.MANAGER, Role.AUDITOR):
        user = make_user(estate.company, role)
        login(client, user)

        page = client.get(reverse("web:runs"))

        assert page.status_code == 200
        assert 'id="run-form"' not in page.content.decode()
        assert client.post(reverse("web:run_launch"), {}).status_code == 403


def test_user_narrowed_to_one_community_does_not_see_the_other(client, estate, today):
    from wuye.testing.factories import make_building, make_community, make_unit

    other = make_community(estate.company, name="乙区")
    other_unit = make_unit(make_building(other))
    cashier = make_user(estate.company, Role.CASHIER, communities=[estate.community])
    login(client, cashier)

    assert client.get(reverse("web:household", args=[estate.unit.pk])).status_code == 200
    assert client.get(reverse("web:household", args=[other_unit.pk])).status_code == 404
    assert "乙区" not in client.get(reverse("web:communities")).content.decode()


def test_user_without_any_role_gets_403(client, estate):
    nobody = make_user(None)
    login(client, nobody)

    assert client.get(reverse("web:home")).status_code == 403


def test_english_ui_shows_english_on_key_pages(client, estate):
    login(client, estate.admin)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    pages = {
        reverse("web:home"): ["Dashboard", "Collection rate", "Waivers"],
        reverse("web:bills"): ["Bills", "Outstanding"],
        reverse("web:runs"): ["Start billing run"],
        reverse("web:household", args=[estate.unit.pk]): ["Residents", "Statement"],
        reverse("web:merchants"): ["Merchants"],
    }
    for url, words in pages.items():
        html = client.get(url).content.decode()
        for word in words:
            assert word in html, (url, word)
        assert "账单</a>" not in html  # nav translated too


def test_forbidden_page_explains_in_the_layout(client, estate):
    login(client, make_user(estate.company, Role.CASHIER))

    resp = client.get(reverse("web:runs"))

    assert resp.status_code == 403
    assert "无权访问" in resp.content.decode()


def test_another_companys_id_gives_the_not_found_page_in_the_layout(client, estate, today):
    from wuye.web.tests.scenario import make_estate as other_estate

    other = other_estate(tag="乙", today=today, merchant_no="1900000002")
    login(client, estate.admin)

    resp = client.get(reverse("web:household", args=[other.unit.pk]))

    assert resp.status_code == 404
    assert "页面不存在" in resp.content.decode()
    assert "业主乙" not in resp.content.decode()


def test_dashboard_opens_on_the_latest_billed_month_when_this_month_has_no_bills(client, estate):
    last_month = estate.bill.period_start.replace(day=1) - timedelta(days=1)
    Bill.objects.filter(pk=estate.bill.pk).update(period_start=last_month.replace(day=1))
    login(client, estate.admin)

    resp = client.get(reverse("web:home"))
    chosen = client.get(reverse("web:home"), {"month": f"{estate.bill.period_start:%Y-%m}"})

    assert resp.context["month"] == last_month.replace(day=1)
    assert resp.context["totals"].billed_fen == 22375
    assert chosen.context["totals"].billed_fen == 0


def test_a_job_about_another_community_is_hidden_from_a_user_narrowed_to_one(client, estate):
    from wuye.testing.factories import make_community

    other = make_community(estate.company, name="乙区")
    job = Job.objects.create(
        kind="billing_run",
        title="出账 乙区",
        company=estate.company,
        params={"community_id": other.pk},
    )
    import_job = Job.objects.create(kind="import", title="导入", company=estate.company)
    finance = make_user(estate.company, Role.FINANCE, communities=[estate.community])
    login(client, finance)

    listed = client.get(reverse("web:jobs")).content.decode()

    assert client.get(reverse("web:job", args=[job.pk])).status_code == 404
    assert "出账 乙区" not in listed
    assert client.get(reverse("web:job", args=[import_job.pk])).status_code == 200
