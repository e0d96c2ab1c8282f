"""The control commands, applied to a running host."""

from __future__ import annotations

from wuye.sims.acquirer.control import command


def test_commands(acquirer, terminal):
    host = acquirer.host
    assert command(host, {"op": "add", "action": "delay", "ms": 5, "mti": "0820"})["ok"]
    assert command(host, {"op": "faults"})["rules"][0]["delay_ms"] == 5
    assert terminal.echo()["39"] == "00"
    assert command(host, {"op": "processing", "tid": terminal.tid, "code": 6}) == {"ok": True}
    terminal.echo()
    assert terminal.last_header.processing == 6
    assert command(host, {"op": "clear"}) == {"ok": True}
    assert command(host, {"op": "faults"})["rules"] == []


def test_bad_commands_say_why(acquirer):
    host = acquirer.host
    assert "unknown op" in command(host, {"op": "explode"})["error"]
    assert command(host, {"op": "processing", "tid": "10000001", "code": 12})["ok"] is False
    assert command(host, {"op": "processing"})["ok"] is False
    assert "unknown keys" in command(host, {"op": "add", "action": "close", "x": 1})["error"]
