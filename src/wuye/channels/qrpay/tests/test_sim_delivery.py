"""The simulator's notification delivery over HTTP: WeChat's back-off on failure, delays,
reordering; its command line (pay, paycode, faults, export); ``wuye qr poll``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from wuye.channels.wechat.constants import NOTIFY_BACKOFF_S
from wuye.sims.wechat import cli, sim_from_settings
from wuye.sims.wechat.server import WechatSim


class _Receiver:
    """A notify endpoint that fails the first ``fail`` posts, then answers 200."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.bodies: list[bytes] = []
        self.times: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(body)
                receiver.times.append(time.monotonic())
                ok = len(receiver.bodies) > receiver.fail
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify/"

    def wait(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < n and time.monotonic() < deadline:
            time.sleep(0.02)


@pytest.fixture
def http_sim(settings: Any, wechat_key_dir: Path) -> Iterator[WechatSim]:
    settings.WUYE_WECHAT_KEY_DIR = str(wechat_key_dir)
    sim = sim_from_settings(deliver="http", persist=False, backoff_scale=0.001)
    sim.start()
    yield sim
    sim.stop()


def _order(sim: WechatSim, url: str, otn: str, total: int = 100) -> str:
    status, data = sim.native(
        {
            "appid": sim.appid,
            "mchid": sim.mchid,
            "description": "物业费",
            "out_trade_no": otn,
            "notify_url": url,
            "amount": {"total": total, "currency": "CNY"},
        }
    )
    assert status == 200
    return str(data["code_url"])


def test_a_failed_notification_is_retried_on_wechats_schedule(http_sim: WechatSim) -> None:
    receiver = _Receiver(fail=3)
    http_sim.wallet_pay(_order(http_sim, receiver.url, "WY1"))

    receiver.wait(4)

    assert len(receiver.bodies) == 4 and len(set(receiver.bodies)) == 1  # the same notification
    deadline = time.monotonic() + 5
    while len(http_sim.delivered) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    item = http_sim.delivered[-1]
    assert item.retry_delays_s == [s * 0.001 for s in NOTIFY_BACKOFF_S[:3]]  # 15 s, 15 s, 30 s


def test_held_notifications_arrive_newest_first(http_sim: WechatSim) -> None:
    receiver = _Receiver(fail=0)
    http_sim.faults.reorder_notifications = 2
    first = _order(http_sim, receiver.url, "WY-A")
    second = _order(http_sim, receiver.url, "WY-B")
    http_sim.wallet_pay(first)
    http_sim.wallet_pay(second)

    receiver.wait(2)

    ids = [b.split(b'"id":"')[1][:30] for b in receiver.bodies]
    assert len(ids) == 2 and ids[0] > ids[1]


def test_the_command_line_pays_shows_a_code_sets_faults_and_exports(
    http_sim: WechatSim, tmp_path: Path, capsys: Any, settings: Any
) -> None:
    assert http_sim.server is not None
    url = f"http://127.0.0.1:{http_sim.server.server_address[1]}"
    receiver = _Receiver(fail=0)
    code_url = _order(http_sim, receiver.url, "WY-CLI", total=12800)

    assert cli.main(["paycode", "--funding", "debit", "--url", url]) == 0
    assert cli.main(["faults", "lose_notifications=1", "--url", url]) == 0
    assert http_sim.faults.lose_notifications == 1
    assert cli.main(["pay", code_url, "--funding", "credit", "--url", url]) == 0
    assert http_sim.state.orders["WY-CLI"]["bank_type"] == "CMB_CREDIT"
    assert cli.main(["pay", code_url, "--url", url]) == 1  # paid already
    out = capsys.readouterr().out
    assert '"auth_code": "13' in out


@pytest.mark.django_db
def test_export_writes_the_days_bill_and_bank_credit(
    settings: Any, wechat_key_dir: Path, tmp_path: Path
) -> None:
    settings.WUYE_WECHAT_KEY_DIR = str(tmp_path / "keys")
    sim = sim_from_settings(deliver="manual", persist=True)
    code = _order(sim, "http://127.0.0.1:9/notify/", "WY-EXP", total=128000)
    sim.wallet_pay(code, "balance")
    day = sim.state.orders["WY-EXP"]["success_time"][:10].replace("-", "")

    assert cli.main(["export", "--date", day, "--out", str(tmp_path / "out")]) == 0

    bill = next((tmp_path / "out").glob("wechat-tradebill-*.csv")).read_text()
    bank = next((tmp_path / "out").glob("wechat-bank-*.csv")).read_text()
    assert "`WY-EXP," in bill and "`1280.00" in bill
    assert bank.splitlines()[1].split(",")[4] == "1275.14"  # 1280.00 − 4.864 fee → 4.86


@pytest.mark.django_db
def test_wuye_qr_poll_runs_once(capsys: Any) -> None:
    call_command("qr", "poll", verbosity=2)

    assert "queried=0" in capsys.readouterr().out


def test_a_delayed_notification_is_scheduled_later(http_sim: WechatSim) -> None:
    receiver = _Receiver(fail=0)
    http_sim.faults.delay_notifications_s = 0.2
    http_sim.wallet_pay(_order(http_sim, receiver.url, "WY-LATE"))

    receiver.wait(1)
    deadline = time.monotonic() + 10  # the sim records the delivery after the answer arrives
    while not http_sim.delivered and time.monotonic() < deadline:
        time.sleep(0.02)

    assert len(receiver.bodies) == 1
    assert http_sim.delivered[-1].first_delay_s == 0.2
