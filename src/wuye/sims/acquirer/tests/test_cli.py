"""``wuye sim acquirer`` as a process: it starts, serves a terminal given on the command line,
and refuses bad options clearly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from wuye.sims.acquirer import cli
from wuye.sims.acquirer.testclient import TestTerminal

TERMINAL = "10000001,898310048990001,0123456789ABCDEFFEDCBA9876543210"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _control(port: int, request: dict) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        return json.loads(sock.makefile().readline())


def test_the_command_serves_a_terminal_given_by_hand(tmp_path):
    port, control = _free_port(), _free_port()
    env = {**os.environ, "WUYE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wuye.cli", "sim", "acquirer", "--port", str(port),
         "--terminal", TERMINAL, "--no-wuye-terminals", "--control-port", str(control),
         "--fault", "corrupt_mac:pan=6259000000000000030"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode()) from None
                time.sleep(0.2)
        term = TestTerminal(port)
        assert term.sign_on()["39"] == "00"
        assert term.purchase(100, "6222021000000000017")["mac_ok"] == b"1"
        assert term.purchase(100, "6259000000000000030")["mac_ok"] == b"0"
        # at runtime, through the control port
        assert _control(control, {"op": "clear"}) == {"ok": True}
        assert term.purchase(100, "6259000000000000030")["mac_ok"] == b"1"
        assert _control(control, {"op": "add", "action": "close", "mti": "0200"})["ok"]
        assert term.purchase(100, "6222021000000000017") is None
        assert _control(control, {"op": "faults"})["rules"][0]["fired"] == 1
        assert _control(control, {"op": "add", "action": "explode"})["ok"] is False
        term.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert (tmp_path / "acquirer" / "acquirer.sqlite3").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--terminal", "10000001,898310048990001"], "TID,MID,TMK"),
        (["--terminal", "1000001,898310048990001," + "00" * 16], "TID must be 8"),
        (["--terminal", "10000001,898310048990001,0011"], "32 hex digits"),
        (["--terminal", "10000001,898310048990001," + "zz" * 16], "hex"),
        (["--cutoff", "25:00"], "HH:MM"),
    ],
)
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        cli.main(argv)
    assert message in capsys.readouterr().err


def test_bad_fault_is_refused(tmp_path, capsys):
    assert cli.main(["--fault", "explode", "--data-dir", str(tmp_path)]) == 2
    assert "unknown action" in capsys.readouterr().err


def test_a_port_in_use_is_reported(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = cli.main(["--port", str(port), "--no-wuye-terminals", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "cannot listen" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "wuye.sims.acquirer", "export", "--date", "20261121",
         "--out", str(tmp_path), "--data-dir", str(tmp_path / "none")],
        env={**os.environ, "WUYE_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no simulator data" in done.stderr
