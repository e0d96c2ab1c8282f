"""Fixtures: a WeChat Pay simulator in this process (notifications kept in its outbox so the
test hands them to Wuye's notify view), demo keys in a temporary key directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wuye.sims.wechat import sim_from_settings
from wuye.sims.wechat.server import WechatSim


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def wechat_key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wechat-keys")


@pytest.fixture
def wechat_sim(settings: Any, wechat_key_dir: Path) -> Iterator[WechatSim]:
    settings.WUYE_WECHAT_KEY_DIR = str(wechat_key_dir)
    sim = sim_from_settings(deliver="manual", persist=False)
    port = sim.start()
    settings.WUYE_WECHAT_BASE_URL = f"http://127.0.0.1:{port}"
    settings.WUYE_WECHAT_TIMEOUT_S = 2.0
    settings.WUYE_WECHAT_REFUND_WAIT_S = 0.5
    settings.WUYE_QR_MICROPAY_POLL_S = 0.05
    settings.WUYE_QR_MICROPAY_TIMEOUT_S = 5
    yield sim
    sim.stop()
