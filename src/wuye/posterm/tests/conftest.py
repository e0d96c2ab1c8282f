from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wuye.posterm.config import TerminalConfig, save
from wuye.posterm.engine import Terminal
from wuye.posterm.store import Store
from wuye.posterm.tests.host import TinyHost

TID = "10000001"
MID = "898310048990001"
TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
GOOD = "6222021000000000017"


@pytest.fixture
def host() -> Iterator[TinyHost]:
    with TinyHost(tid=TID, mid=MID, tmk=TMK) as h:
        yield h


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "term"


def make_terminal(
    data_dir: Path,
    port: int,
    *,
    training: bool = False,
    server_url: str = "",
    timeout_s: float = 1.0,
    token: str = "tok-123",
) -> Terminal:
    store = Store(data_dir)
    cfg = TerminalConfig(
        tid=TID,
        mid=MID,
        tmk=TMK,
        acquirer=f"127.0.0.1:{port}",
        server_url=server_url,
        token=token,
        merchant_name="上海申和物业",
        timeout_s=timeout_s,
    )
    save(store, cfg)
    return Terminal(store, cfg, training=training)


@pytest.fixture
def term(data_dir: Path, host: TinyHost) -> Iterator[Terminal]:
    t = make_terminal(data_dir, host.port)
    yield t
    t.close()
    t.store.close()
