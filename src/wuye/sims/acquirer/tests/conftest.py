"""A host on loopback with a settable clock, and a test terminal signed on to it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from wuye.sims.acquirer.server import start_acquirer
from wuye.sims.acquirer.testclient import TestTerminal

TZ = ZoneInfo("Asia/Shanghai")
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
DEMO = ("10000001", "898310048990001", TMK)
OTHER = ("10000002", "898310048990002", bytes.fromhex("00112233445566778899AABBCCDDEEFF"))


class Clock:
    """The host's clock, moved by tests."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 30, 15, tzinfo=TZ)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def acquirer(tmp_path, clock):
    handle = start_acquirer(tmp_path / "acq", terminals=[DEMO, OTHER], clock=clock)
    yield handle
    handle.stop()


@pytest.fixture
def terminal(acquirer):
    term = TestTerminal(acquirer.port)
    answer = term.sign_on()
    assert answer is not None and answer["39"] == "00"
    yield term
    term.close()


def txns(handle, **where):
    """Return the host's transaction rows matching ``where`` (column=value)."""
    sql = "SELECT * FROM txn"
    if where:
        sql += " WHERE " + " AND ".join(f"{k}=?" for k in where)
    return list(handle.host.store.db.execute(sql + " ORDER BY id", tuple(where.values())))
