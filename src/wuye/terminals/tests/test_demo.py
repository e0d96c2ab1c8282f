"""The demo terminal: registered at 锦绣苑's first counter with the published test key, and
configured for ``wuye terminal`` with a token that works."""

from __future__ import annotations

from datetime import date

import pytest

from wuye.accounts.models import Role
from wuye.demo.generator import COMPANY_NAME, demo_uscc
from wuye.posterm.config import load
from wuye.posterm.store import Store
from wuye.terminals.demo import DEMO_TID, demo_load_terminals
from wuye.terminals.models import Terminal
from wuye.terminals.services import terminal_authenticate
from wuye.testing.factories import make_community, make_company, make_user

pytestmark = pytest.mark.django_db


def test_the_demo_terminal_is_registered_once_and_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("WUYE_DATA_DIR", str(tmp_path))
    company = make_company(name=COMPANY_NAME, uscc=demo_uscc())
    community = make_community(company, name="申和·锦绣苑", code="JXY")
    make_user(company, Role.ADMIN, username="admin")
    said: list[str] = []

    demo_load_terminals(today=date(2026, 11, 22), say=said.append)
    demo_load_terminals(today=date(2026, 11, 22), say=said.append)

    terminal = Terminal.objects.get()
    assert (terminal.tid, terminal.mid, terminal.tmk_kcv) == (DEMO_TID, "898310048990001", "08D7B4")
    assert (terminal.community, terminal.counter_name) == (community, "锦绣苑服务中心1号台")
    store = Store(tmp_path / "terminal" / DEMO_TID)
    try:
        cfg = load(store)
    finally:
        store.close()
    assert cfg is not None
    assert cfg.tmk == bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    assert (cfg.server_url, cfg.acquirer) == ("http://127.0.0.1:8000", "127.0.0.1:8583")
    assert terminal_authenticate(tid=DEMO_TID, token=cfg.token) == terminal
    assert "already registered" in said[-1]


def test_the_demo_terminal_needs_the_demo_company():
    with pytest.raises(ValueError, match="demo company"):
        demo_load_terminals(today=date(2026, 11, 22), say=print)


def test_the_demo_terminal_finds_wuye_where_the_demo_serves(tmp_path, monkeypatch):
    monkeypatch.setenv("WUYE_DATA_DIR", str(tmp_path))
    company = make_company(name=COMPANY_NAME, uscc=demo_uscc())
    make_community(company, name="申和·锦绣苑", code="JXY")
    make_user(company, Role.ADMIN, username="admin")

    demo_load_terminals(today=date(2026, 11, 22), say=print, server_url="http://127.0.0.1:8123")

    store = Store(tmp_path / "terminal" / DEMO_TID)
    try:
        cfg = load(store)
    finally:
        store.close()
    assert cfg is not None and cfg.server_url == "http://127.0.0.1:8123"
