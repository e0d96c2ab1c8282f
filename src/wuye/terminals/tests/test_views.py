"""Terminal-management screens: who may open what, what they show, and that a company never
sees or touches another's terminals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from wuye.accounts.models import Role
from wuye.core.models import AuditEvent
from wuye.terminals import keys
from wuye.terminals.models import Release, Terminal, TerminalParams
from wuye.terminals.services import heartbeat_record, release_create
from wuye.terminals.testing import TEST_TMK, TerminalClient, make_counter, result_body
from wuye.testing.factories import make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def a():
    return make_counter(now=NOW, tag="甲", tid="10000001")


@pytest.fixture
def b():
    c = make_counter(now=NOW, tag="乙", tid="20000002")
    release_create(
        company_id=c.community.company_id,
        version="9.9.9",
        url="https://乙/app",
        sha256="b" * 64,
        share_pct=10,
        by=c.admin,
        now=NOW,
    )
    return c


def test_the_fleet_lists_terminals_with_their_state_and_flags(client, a):
    heartbeat_record(
        terminal=a.terminal,
        data={
            "app_version": "1.4.0",
            "batch": "000003",
            "batch_open_count": 2,
            "paper": "out",
            "battery": 40,
            "last_txn_at": "2026-11-20T10:00:00+08:00",
        },
        ip_address=None,
        now=NOW,
    )
    client.force_login(a.admin)

    html = client.get(reverse("terminals:list")).content.decode()

    assert "10000001" in html and "1.4.0" in html and "000003" in html and "40%" in html
    assert "flag-unsettled" in html
    assert "在线" in html
    offline = client.get(reverse("terminals:list"), {"status": "offline"}).content.decode()
    assert 'data-tid="10000001"' not in offline


def test_unmatched_approvals_show_on_the_fleet_page(client, a):
    TerminalClient(client, a.terminal, a.token).result(
        result_body(a.terminal, stan=5, amount_fen=4321)
    )
    client.force_login(a.finance)

    html = client.get(reverse("terminals:list")).content.decode()

    assert 'id="unmatched"' in html and "43.21" in html


def test_an_admin_registers_a_terminal_and_sees_its_token_once(client, a):
    client.force_login(a.admin)

    response = client.post(
        reverse("terminals:new"),
        {
            "community": a.community.pk,
            "counter_name": "2号窗口",
            "serial_no": "SN-NEW",
            "model": "X990",
            "kind": "handheld",
            "tid": "10000009",
            "mid": "898310048990001",
            "location": "二楼",
            "ip_address": "10.0.0.9",
            "network_cert_no": "P-1",
        },
    )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    terminal = Terminal.objects.get(tid="10000009")
    html = response.content.decode()
    assert terminal.tmk_kcv in html
    token = html.split('id="token">')[1].split("<")[0]
    assert TerminalClient(client, terminal, token).heartbeat().status_code == 200
    assert token not in client.get(reverse("terminals:detail", args=[terminal.pk])).content.decode()


def test_registration_with_bad_input_says_what_and_registers_nothing(client, a):
    client.force_login(a.admin)

    response = client.post(
        reverse("terminals:new"),
        {
            "community": a.community.pk,
            "counter_name": "1号窗口",
            "serial_no": "SN-X",
            "kind": "countertop",
            "tid": "10000010",
            "mid": "898310048990001",
        },
    )

    assert response.status_code == 422
    assert "已绑定其他终端" in response.content.decode()
    assert Terminal.objects.count() == 1


def test_the_detail_shows_heartbeats_reports_params_and_kcv(client, a):
    term = TerminalClient(client, a.terminal, a.token)
    term.heartbeat(app_version="1.4.0", battery=77)
    term.result(result_body(a.terminal, stan=6, amount_fen=100, approved=False))
    client.force_login(a.manager if hasattr(a, "manager") else a.finance)

    html = client.get(reverse("terminals:detail", args=[a.terminal.pk])).content.decode()

    assert "08D7B4" in html and "77%" in html and "51" in html and "P-2026-0001" in html
    assert TEST_TMK.hex().upper() not in html


def test_key_export_shows_two_components_that_make_the_key_and_is_audited(client, a):
    client.force_login(a.finance)

    response = client.post(reverse("terminals:key", args=[a.terminal.pk]))

    html = response.content.decode()
    one = html.split('id="component-1">')[1].split("<")[0]
    two = html.split('id="component-2">')[1].split("<")[0]
    assert keys.join_components(one, two) == TEST_TMK
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action="terminal.key_export", actor=a.finance).count() == 1


def test_managers_read_but_may_not_export_keys_and_cashiers_see_nothing(client, a):
    manager = make_user(a.community.company, Role.MANAGER)
    client.force_login(manager)
    assert client.get(reverse("terminals:detail", args=[a.terminal.pk])).status_code == 200
    assert client.post(reverse("terminals:key", args=[a.terminal.pk])).status_code == 403
    assert client.post(reverse("terminals:token", args=[a.terminal.pk])).status_code == 403

    client.force_login(a.cashier)
    assert client.get(reverse("terminals:list")).status_code == 403


def test_a_token_reset_shows_the_new_token_once_and_the_old_stops(client, a):
    client.force_login(a.admin)

    html = client.post(reverse("terminals:token", args=[a.terminal.pk])).content.decode()

    token = html.split('id="token">')[1].split("<")[0]
    assert TerminalClient(client, a.terminal, a.token).heartbeat().status_code == 401
    assert TerminalClient(client, a.terminal, token).heartbeat().status_code == 200


def test_new_params_are_saved_as_a_new_version(client, a):
    client.force_login(a.admin)

    response = client.post(
        reverse("terminals:params", args=[a.terminal.pk]),
        {
            "timeout_s": "40",
            "receipt_header": "锦绣苑收费处",
            "entry_modes": ["chip", "tap"],
            "operators": "001,007",
            "training": "on",
        },
    )

    assert response.status_code == 302
    params = TerminalParams.objects.filter(terminal=a.terminal).order_by("-version").first()
    assert (params.version, params.operators, params.training) == (2, ["001", "007"], True)
    bad = client.post(
        reverse("terminals:params", args=[a.terminal.pk]),
        {
            "timeout_s": "40",
            "receipt_header": "x",
            "entry_modes": ["chip"],
            "operators": "1",
        },
    )
    assert bad.status_code == 422
    assert "operators" in bad.content.decode()


def test_a_release_is_created_widened_and_rolled_back_from_the_page(client, a):
    client.force_login(a.admin)

    client.post(
        reverse("terminals:releases"),
        {
            "version": "1.5.0",
            "url": "https://dl.example.org/1.5.0",
            "sha256": "c" * 64,
            "share_pct": "10",
            "notes": "首批",
        },
    )
    release = Release.objects.get(version="1.5.0")
    client.post(reverse("terminals:release_change", args=[release.pk]), {"share_pct": "100"})
    release.refresh_from_db()
    assert release.state == Release.State.COMPLETE
    client.post(reverse("terminals:release_change", args=[release.pk]), {"action": "rollback"})
    release.refresh_from_db()
    assert release.state == Release.State.ROLLED_BACK
    assert "1.5.0" in client.get(reverse("terminals:releases")).content.decode()


def test_another_companys_terminals_and_releases_are_invisible_and_untouchable(client, a, b):
    other = b.terminal
    for user in (a.admin, a.finance):
        client.force_login(user)
        for name in ("terminals:list", "terminals:releases"):
            html = client.get(reverse(name)).content.decode()
            assert "20000002" not in html and "乙" not in html and "9.9.9" not in html
        assert client.get(reverse("terminals:detail", args=[other.pk])).status_code == 404
        for name in ("terminals:key", "terminals:token", "terminals:enable", "terminals:params"):
            assert client.post(reverse(name, args=[other.pk])).status_code in (403, 404), name
    client.force_login(a.admin)
    release = Release.objects.get(version="9.9.9")
    response = client.post(
        reverse("terminals:release_change", args=[release.pk]), {"action": "rollback"}
    )
    assert response.status_code == 404
    release.refresh_from_db()
    assert release.state == Release.State.ROLLING
    other.refresh_from_db()
    assert other.enabled and other.token_hash == Terminal.objects.get(pk=other.pk).token_hash
    assert not AuditEvent.objects.filter(action="terminal.key_export").exists()


def test_the_pages_read_in_english(client, a):
    client.force_login(a.admin)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    html = client.get(reverse("terminals:list")).content.decode()

    assert "Terminal management" in html


def test_finance_pushes_a_settlement_request_once(client, a):
    client.force_login(a.finance)
    term = TerminalClient(client, a.terminal, a.token)

    client.post(reverse("terminals:settle", args=[a.terminal.pk]))
    client.post(reverse("terminals:settle", args=[a.terminal.pk]))

    pushed = term.poll().json()["request"]
    assert (pushed["kind"], pushed["amount_fen"]) == ("settle", 0)
    term.settle(
        {
            "report_id": "10000001-000001-settle",
            "batch": "000001",
            "verdict": "balanced",
            "debit_total_fen": 0,
            "debit_count": 0,
            "credit_total_fen": 0,
            "credit_count": 0,
            "settle_date": "20261122",
        }
    )
    assert term.poll().json() == {"request": None}
    client.force_login(a.cashier)
    assert client.post(reverse("terminals:settle", args=[a.terminal.pk])).status_code == 403
