"""Fault injection: each action does what it says, to the requests it matches."""

from __future__ import annotations

import json

import pytest

from wuye.sims.acquirer.faults import Action, FaultError, FaultPlan, parse_rule

from .conftest import txns

PAN = "6222021000000000017"
CREDIT = "6259000000000000030"


def test_drop_response_acts_but_answers_nothing(terminal, acquirer):
    acquirer.faults.add("drop_response", mti="0200", times=1)
    terminal.timeout_s = 0.5
    request = terminal.purchase_fields(100, PAN)

    assert terminal.exchange(request) is None
    assert txns(acquirer)[0]["response_code"] == "00"
    # the terminal reverses; the host reverses the purchase it did make
    terminal.connect()
    assert terminal.reversal_of(request)["39"] == "00"
    assert txns(acquirer)[0]["reversed"] == 1


def test_drop_request_neither_acts_nor_answers(terminal, acquirer):
    acquirer.faults.add(Action.DROP_REQUEST, pan=PAN, times=1)
    terminal.timeout_s = 0.5
    assert terminal.purchase(100, PAN) is None
    assert txns(acquirer) == []
    terminal.connect()
    assert terminal.purchase(100, PAN)["39"] == "00"  # times=1: the next one goes through


def test_close_drops_the_connection_without_acting(terminal, acquirer):
    acquirer.faults.add("close", mti="0200", processing_code="000000")
    assert terminal.purchase(100, PAN) is None
    assert terminal.sock is None
    assert txns(acquirer) == []
    assert terminal.echo()["39"] == "00"  # other messages still answered


def test_corrupt_mac_answers_with_a_wrong_mac_after_acting(terminal, acquirer):
    acquirer.faults.add("corrupt_mac", pan=CREDIT)
    assert terminal.purchase(100, CREDIT)["mac_ok"] == b"0"
    assert terminal.purchase(100, PAN)["mac_ok"] == b"1"
    assert len(txns(acquirer, response_code="00")) == 2


def test_delay_still_answers(terminal, acquirer):
    rule = acquirer.faults.add("delay", ms=50, txn_type="22")
    assert terminal.purchase(100, PAN)["39"] == "00"
    assert rule.fired == 1
    assert terminal.echo()["39"] == "00"
    assert rule.fired == 1


def test_rules_match_by_terminal(terminal, acquirer):
    acquirer.faults.add("close", tid="10000002")
    assert terminal.purchase(100, PAN)["39"] == "00"


def test_clear_removes_rules(terminal, acquirer):
    acquirer.faults.add("close")
    acquirer.faults.clear()
    assert terminal.echo()["39"] == "00"


def test_parse_rule_from_the_command_line():
    rule = parse_rule("drop_response:mti=0200,pan=6222021000000000017,times=1")
    assert (rule.action, rule.mti, rule.pan, rule.times) == (
        Action.DROP_RESPONSE, "0200", "6222021000000000017", 1)
    assert parse_rule("delay:ms=1500").delay_ms == 1500


@pytest.mark.parametrize("text", ["explode", "delay", "delay:ms=x", "close:colour=red",
                                  "close:mti", "drop_request:times=-1"])
def test_bad_rules_are_refused_saying_why(text):
    with pytest.raises(FaultError, match="fault"):
        parse_rule(text)


def test_rules_from_a_json_file(tmp_path):
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"action": "delay", "delay_ms": 10, "mti": "0500"},
                                {"action": "corrupt_mac", "times": 2}]))
    plan = FaultPlan()
    plan.load(path)
    assert [r.action for r in plan.rules()] == [Action.DELAY, Action.CORRUPT_MAC]
    assert plan.as_json()[0]["mti"] == "0500"

    path.write_text(json.dumps([{"mti": "0200"}]))
    with pytest.raises(FaultError, match="rule 1"):
        FaultPlan().load(path)
    path.write_text("{")
    with pytest.raises(FaultError):
        FaultPlan().load(path)
