"""Terminal management services: registration, keys and their check values, tokens,
parameters, staged roll-outs with rollback, the acquirer's view of the fleet."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wuye.accounts.models import Role
from wuye.accounts.selectors import AccessDenied
from wuye.core.models import AuditEvent
from wuye.terminals import keys
from wuye.terminals.models import Release, Terminal
from wuye.terminals.selectors import acquirer_terminals, fleet, terminal_for_counter
from wuye.terminals.services import (
    TerminalError,
    heartbeat_record,
    release_create,
    release_rollback,
    release_selects,
    release_share_set,
    terminal_key_export,
    terminal_register,
)
from wuye.terminals.testing import TEST_TMK, make_counter
from wuye.testing.factories import make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
SHA = "a" * 64


def test_the_published_test_key_has_its_published_check_value():
    assert keys.kcv(TEST_TMK) == "08D7B4"


def test_two_exported_components_xor_back_to_the_key_and_carry_their_check_values():
    parts = keys.split_components(TEST_TMK)
    again = keys.split_components(TEST_TMK)

    assert keys.join_components(parts.component_1, parts.component_2) == TEST_TMK
    assert parts.component_1 != again.component_1  # fresh components every export
    assert parts.kcv_1 == keys.kcv(bytes.fromhex(parts.component_1))
    assert parts.kcv == "08D7B4"


def test_a_generated_key_is_sixteen_random_bytes():
    assert len(keys.tmk_generate()) == 16
    assert keys.tmk_generate() != keys.tmk_generate()
    with pytest.raises(keys.TmkFormatError):
        keys.tmk_parse("0123")


def test_the_key_is_stored_encrypted_and_the_token_hashed():
    c = make_counter(now=NOW)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT tmk, token_hash FROM terminals_terminal WHERE id = %s", [c.terminal.pk])
        stored_key, stored_token = cur.fetchone()

    assert TEST_TMK.hex().upper() not in stored_key.upper()
    assert c.token not in stored_token
    assert Terminal.objects.get().tmk_bytes == TEST_TMK
    assert c.terminal.tmk_kcv == "08D7B4"


def test_registration_refuses_bad_and_duplicate_input_and_writes_nothing():
    c = make_counter(now=NOW)
    kw = dict(
        community=c.community,
        counter_name="2号窗口",
        serial_no="SN-2",
        tid="10000002",
        mid="898310048990001",
        by=c.admin,
        now=NOW,
    )

    for bad in (
        {"tid": "1234"},
        {"mid": "x"},
        {"serial_no": ""},
        {"tid": c.terminal.tid},
        {"counter_name": "1号窗口"},
        {"serial_no": c.terminal.serial_no},
    ):
        with pytest.raises(TerminalError):
            terminal_register(**{**kw, **bad})
    with pytest.raises(AccessDenied):
        terminal_register(**{**kw, "by": c.cashier})
    assert Terminal.objects.count() == 1


def test_the_acquirer_sees_every_enabled_terminal_with_its_clear_key():
    c = make_counter(now=NOW)

    (found,) = acquirer_terminals()

    assert (found.tid, found.mid, found.tmk) == ("10000001", c.terminal.mid, TEST_TMK)
    assert found.merchant_name == "申和物业"
    assert terminal_for_counter(community_id=c.community.pk, counter_name=" 1号窗口 ") == c.terminal


def test_a_key_export_is_for_finance_and_admins_and_audited_without_the_key():
    c = make_counter(now=NOW)
    manager = make_user(c.community.company, Role.MANAGER)

    with pytest.raises(AccessDenied):
        terminal_key_export(terminal=c.terminal, by=manager, now=NOW)
    parts = terminal_key_export(terminal=c.terminal, by=c.finance, now=NOW)

    event = AuditEvent.objects.get(action="terminal.key_export")
    assert event.actor == c.finance
    assert event.detail["kcv"] == parts.kcv
    assert TEST_TMK.hex().upper() not in str(event.detail).upper()


def _hb(c, version="1.0.0"):
    return heartbeat_record(
        terminal=c.terminal, data={"app_version": version}, ip_address=None, now=NOW
    )


def test_a_staged_release_reaches_its_share_then_everyone_and_a_rollback_sends_them_back():
    c = make_counter(now=NOW)
    company = c.community.company.pk
    base = release_create(
        company_id=company,
        version="1.0.0",
        url="https://u/1.0.0",
        sha256=SHA,
        share_pct=100,
        by=c.admin,
        now=NOW,
    )
    assert _hb(c)["app_update"] is None
    new = release_create(
        company_id=company,
        version="1.1.0",
        url="https://u/1.1.0",
        sha256=SHA,
        share_pct=1,
        by=c.admin,
        now=NOW,
    )
    selected = release_selects(new, c.terminal)
    update = _hb(c)["app_update"]
    assert (update is not None and update["version"] == "1.1.0") == selected

    release_share_set(release=new, share_pct=100, by=c.admin, now=NOW)
    assert _hb(c)["app_update"] == {"version": "1.1.0", "url": "https://u/1.1.0", "sha256": SHA}
    assert _hb(c, "1.1.0")["app_update"] is None

    release_rollback(release=new, by=c.admin, now=NOW)

    assert _hb(c, "1.1.0")["app_update"]["version"] == "1.0.0"
    assert _hb(c, "1.0.0")["app_update"] is None
    assert base.state == Release.State.COMPLETE
    with pytest.raises(TerminalError):
        release_share_set(release=new, share_pct=50, by=c.admin, now=NOW)


def test_a_share_selects_about_that_share_of_a_fleet():
    release = Release(version="2.0.0", share_pct=25, state=Release.State.ROLLING)
    chosen = sum(release_selects(release, Terminal(tid=f"{n:08d}")) for n in range(2000))

    assert 400 < chosen < 600


def test_releases_refuse_bad_input():
    c = make_counter(now=NOW)
    company = c.community.company.pk
    for bad in ({"version": "new"}, {"sha256": "x"}, {"url": "ftp://x"}, {"share_pct": 0}):
        kw = dict(
            company_id=company,
            version="1.2.0",
            url="https://u",
            sha256=SHA,
            share_pct=10,
            by=c.admin,
            now=NOW,
        )
        with pytest.raises(TerminalError):
            release_create(**{**kw, **bad})


def test_the_fleet_flags_terminals_offline_too_long_and_with_an_unsettled_batch():
    c = make_counter(now=NOW)
    other = make_counter(now=NOW, tag="B", tid="10000002")
    heartbeat_record(
        terminal=c.terminal,
        data={"batch": "000001", "batch_open_count": 2, "last_txn_at": "2026-11-21T16:00:00+08:00"},
        ip_address=None,
        now=NOW,
    )
    qs = Terminal.objects.all()

    rows = {r.terminal.tid: r for r in fleet(qs, now=NOW)}

    assert rows["10000001"].online and rows["10000001"].unsettled
    assert not rows["10000002"].online and rows["10000002"].offline_too_long
    assert [r.terminal.tid for r in fleet(qs, now=NOW, status="offline")] == ["10000002"]
    assert [r.terminal.tid for r in fleet(qs, now=NOW, unsettled_only=True)] == ["10000001"]
    assert [r.terminal.tid for r in fleet(qs, now=NOW, community_id=other.community.pk)] == [
        "10000002"
    ]
