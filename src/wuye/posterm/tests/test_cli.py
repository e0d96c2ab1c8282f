"""``wuye terminal`` subcommands: one JSON object each, one batch across commands."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from wuye.posterm.tests.conftest import GOOD, MID, TID, TMK


def run(capsys, *args: str) -> dict:
    try:
        call_command("terminal", *args)
    except CommandError as exc:
        assert exc.returncode == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


@pytest.fixture
def cli(capsys, host, tmp_path):
    d = str(tmp_path / "t")

    def go(*args: str) -> dict:
        return run(capsys, args[0], "--data-dir", d, *args[1:])

    init = go(
        "init",
        "--tid",
        TID,
        "--mid",
        MID,
        "--tmk",
        TMK.hex(),
        "--acquirer",
        f"127.0.0.1:{host.port}",
        "--timeout",
        "1",
        "--merchant-name",
        "上海申和物业",
    )
    assert init["ok"] and init["tid"] == TID
    go.dir = d  # type: ignore[attr-defined]
    return go


def test_consecutive_commands_continue_one_batch_and_settle_it(cli, host):
    assert cli("sign-on")["approved"] is True
    p = cli("purchase", "--amount", "12800", "--card", GOOD, "--pin", "123456", "--entry", "chip")
    assert p["approved"] is True and p["response_code"] == "00"
    assert p["masked_pan"] == "622202*********0017" and len(p["rrn"]) == 12 and p["auth_code"]
    assert p["batch"] == "000001"
    p2 = cli("purchase", "--amount", "500", "--card", "6258000000000000081", "--entry", "tap")
    assert p2["approved"] and int(p2["stan"]) == int(p["stan"]) + 1
    v = cli("void", "--rrn", p["rrn"])
    assert v["approved"] and v["batch"] == "000001"
    r = cli("refund", "--rrn", p2["rrn"], "--amount", "200")
    assert r["approved"]
    b = cli("balance", "--card", GOOD, "--pin", "123456")
    assert b["approved"] and b["balance_fen"] == 10_000_000
    s = cli("settle")
    assert s["verdict"] == "balanced"
    assert (s["debit_total_fen"], s["debit_count"]) == (13300, 2)
    assert (s["credit_total_fen"], s["credit_count"]) == (12800 + 200, 2)
    assert cli("status")["batch"] == "000002"


@pytest.mark.parametrize(
    ("pan", "pin", "code"),
    [
        ("6222021000000000017", "123456", "00"),
        ("6228480000000000026", "123456", "51"),  # ¥50.00 balance, ¥60.00 asked
        ("6259000000000000030", "123456", "00"),
        ("6234560000000000043", "123456", "54"),
        ("6222021000000000058", "123456", "05"),
        ("6217000000000000061", "123456", "98"),  # host never answers: reversed
        ("6222021000000000074", "654321", "00"),
        ("6222021000000000074", "123456", "55"),
        ("6258000000000000081", None, "00"),
    ],
)
def test_every_test_card_gets_its_answer(cli, pan, pin, code):
    entry = "chip" if pin else "tap"
    args = ["purchase", "--amount", "6000", "--card", pan, "--entry", entry]
    if pin:
        args += ["--pin", pin]
    out = cli(*args)
    assert out["response_code"] == code
    assert out["approved"] is (code == "00")
    assert pan not in json.dumps(out)


def test_bad_input_is_one_json_error_naming_the_option(cli):
    out = cli("purchase", "--amount", "100", "--card", "6222021000000000018")
    assert out["ok"] is False and "--card" in out["error"]
    out = cli("void", "--rrn", "999999999999")
    assert out["ok"] is False and "--rrn" in out["error"]


def test_training_mode_takes_only_test_cards_and_marks_results(cli, host):
    out = cli("purchase", "--training", "--amount", "100", "--card", "4111111111111111")
    assert out["ok"] is False and "培训" in out["error"]
    out = cli("purchase", "--training", "--amount", "100", "--card", GOOD, "--pin", "123456")
    assert out["approved"] and out["training"] is True
    assert host.requests("0200")[-1] is not None
