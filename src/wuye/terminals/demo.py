"""The demo's POS terminal: registered at 锦绣苑's first counter, configured for ``wuye terminal``.

TID ``10000001``, MID ``898310048990001`` and the published test TMK
``0123456789ABCDEFFEDCBA9876543210`` (never a real key), the same the acquirer simulator
learns from ``selectors.acquirer_terminals``. The terminal's own configuration (server URL,
API token, acquirer address) is written with ``wuye terminal init`` into
``$WUYE_DATA_DIR/terminal/10000001/``, so ``wuye terminal run`` needs no arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path

from django.utils import timezone

from wuye.accounts.models import User
from wuye.estates.models import Community, Company
from wuye.terminals.models import Terminal
from wuye.terminals.services import terminal_register

DEMO_TID = "10000001"
DEMO_MID = "898310048990001"
DEMO_TMK = "0123456789ABCDEFFEDCBA9876543210"
DEMO_SERIAL = "WY-DEMO-0001"
DEMO_COMMUNITY_CODE = "JXY"


def demo_counter_name(community: Community) -> str:
    """The counter name the demo's shifts use (see ``wuye.demo.history``)."""
    return f"{community.name.split('·')[-1]}服务中心1号台"


def demo_load_terminals(
    *, today: date, say: Callable[[str], None], server_url: str | None = None
) -> None:
    """Register the demo terminal at the first counter of 锦绣苑 and write its configuration
    (``server_url``: where the terminal finds Wuye, e.g. ``http://127.0.0.1:8000``).

    Does nothing when it is registered already. Raise ValueError when the demo company is
    not loaded.
    """
    from wuye.demo.generator import demo_uscc

    company = Company.objects.filter(uscc=demo_uscc()).first()
    if company is None:
        raise ValueError("load the demo company first (wuye demo)")
    if Terminal.objects.filter(tid=DEMO_TID).exists():
        say(f"terminal {DEMO_TID}: already registered")
        return
    community = Community.objects.get(company=company, code=DEMO_COMMUNITY_CODE)
    admin = User.objects.get(username="admin")
    at = timezone.make_aware(datetime.combine(today, time(8, 0)))
    terminal, token = terminal_register(
        community=community,
        counter_name=demo_counter_name(community),
        serial_no=DEMO_SERIAL,
        tid=DEMO_TID,
        mid=DEMO_MID,
        model="Wuye 演示POS (wuye terminal)",
        kind=Terminal.Kind.COUNTERTOP,
        location=f"{community.name} 物业服务中心一楼收费台",
        ip_address="127.0.0.1",
        network_cert_no="演示-入网许可-0001",
        tmk=bytes.fromhex(DEMO_TMK),
        by=admin,
        now=at,
    )
    say(f"terminal {terminal.tid} at {terminal.counter_name} (KCV {terminal.tmk_kcv})")
    demo_terminal_config_write(terminal=terminal, token=token, say=say, server_url=server_url)


def demo_terminal_config_write(
    *,
    terminal: Terminal,
    token: str,
    say: Callable[[str], None],
    data_dir: Path | None = None,
    server_url: str | None = None,
) -> Path | None:
    """Write the terminal client's configuration (``wuye terminal init``); return its directory.

    The server URL is ``server_url``, else ``WUYE_DEMO_SERVER_URL`` (default
    http://127.0.0.1:8000); the acquirer comes from ``WUYE_DEMO_ACQUIRER`` (default
    127.0.0.1:8583, the demo companion's port).
    Say why and return None when the terminal client refuses a value.
    """
    from wuye.posterm.config import ConfigError, terminal_init

    server = server_url or os.environ.get("WUYE_DEMO_SERVER_URL", "http://127.0.0.1:8000")
    acquirer = os.environ.get("WUYE_DEMO_ACQUIRER", "127.0.0.1:8583")
    try:
        path = terminal_init(
            tid=terminal.tid,
            mid=terminal.mid,
            tmk_hex=terminal.tmk,
            acquirer=acquirer,
            server_url=server,
            token=token,
            merchant_name=terminal.merchant.name if terminal.merchant else "",
            serial=terminal.serial_no,
            data_dir=data_dir,
        )
    except ConfigError as exc:
        say(f"terminal {terminal.tid}: configuration not written ({exc})")
        return None
    say(f"terminal {terminal.tid}: configured in {path} for {server}, acquirer {acquirer}")
    return path
