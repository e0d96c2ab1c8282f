"""The terminal's ISO 8583 flows against a host built on the codec."""

from __future__ import annotations

import json

import pytest

from wuye.posterm.card import Card
from wuye.posterm.engine import SignOnRefused, Terminal, TerminalError
from wuye.posterm.tests.conftest import GOOD, make_terminal


def _reports(term: Terminal) -> list[dict]:
    return [
        json.loads(r["payload"])
        for r in term.store.db.execute("SELECT payload FROM report ORDER BY rowid")
    ]


def test_sign_on_loads_keys_and_takes_the_hosts_batch(term, host):
    host.state.batch = "000007"
    out = term.sign_on()
    assert out.approved and term.signed_on
    assert term.batch == "000007"


def test_a_wrong_check_value_is_refused_and_the_terminal_stays_signed_off(term, host):
    host.state.wrong_kcv = True
    with pytest.raises(SignOnRefused):
        term.sign_on()
    assert not term.signed_on


def test_a_purchase_with_pin_is_approved_and_recorded_for_the_server(term, host):
    out = term.purchase(amount_fen=128000, card=Card(GOOD, entry="chip"), pin="123456")
    assert out.approved and out.response_code == "00"
    assert out.masked_pan == "622202*********0017"
    req = host.requests("0200")[-1]
    assert req["22"] == "051" and "52" in req and "55" in req and req["23"] == "001"
    [report] = _reports(term)
    assert report["report_id"] == f"10000001-{out.batch}-{out.stan}-purchase"
    assert report["approved"] is True and report["amount_fen"] == 128000
    assert term.store.db.execute("SELECT COUNT(*) FROM reversal").fetchone()[0] == 0


def test_a_wrong_pin_is_asked_again_three_tries_in_all(term, host):
    tries = []

    def pin(n: int) -> str:
        tries.append(n)
        return "000000" if n < 3 else "123456"

    out = term.purchase(amount_fen=100, card=Card(GOOD), pin=pin)
    assert tries == [1, 2, 3] and out.approved


def test_a_lost_answer_is_reversed_before_anything_else_and_never_reported_paid(term, host):
    host.state.drop_next = 1
    host.state.ignore_next = 0
    out = term.purchase(amount_fen=5000, card=Card(GOOD), pin="123456")
    assert not out.approved and out.reversed and out.response_code == "98"
    reversal = host.requests("0400")[-1]
    assert reversal["11"] == out.stan and reversal["39"] == "98"
    assert "52" not in reversal and "35" not in reversal
    assert host.state.approved == {}
    [report] = _reports(term)
    assert report["approved"] is False and report["reversed"] is True


def test_an_approval_with_a_bad_mac_is_reversed_with_a0(term, host):
    host.state.bad_mac_next = 1
    out = term.purchase(amount_fen=5000, card=Card(GOOD), pin="123456")
    assert out.reversed and out.response_code == "A0"
    assert host.requests("0400")[-1]["39"] == "A0"
    assert "38" in host.requests("0400")[-1]


def test_void_refund_and_settle_balance(term, host):
    p1 = term.purchase(amount_fen=10000, card=Card(GOOD), pin="123456")
    p2 = term.purchase(amount_fen=20000, card=Card("6259000000000000030", entry="tap"))
    v = term.void(rrn=p1.rrn)
    assert v.approved and v.original["stan"] == p1.stan
    r = term.refund(rrn=p2.rrn, amount_fen=5000)
    assert r.approved
    with pytest.raises(TerminalError):
        term.refund(rrn=p2.rrn, amount_fen=15001)
    s = term.settle()
    assert s.extra["verdict"] == "balanced"
    assert s.extra["debit_total_fen"] == 30000 and s.extra["credit_count"] == 2
    assert term.batch == "000002"
    assert (
        term.store.db.execute("SELECT COUNT(*) FROM txn WHERE pan_enc IS NOT NULL").fetchone()[0]
        == 0
    )


def test_an_unbalanced_batch_is_uploaded(term, host):
    term.purchase(amount_fen=10000, card=Card(GOOD), pin="123456")
    host.state.approved.clear()
    s = term.settle()
    assert s.extra["verdict"] == "not_balanced" and s.extra["uploaded"] == 1
    upload = [r for r in host.requests("0320") if r["60"][8:11] == "201"]
    assert upload and upload[0]["48"][:2] == "01"


def test_a_pending_reversal_survives_a_restart(data_dir, host):
    t1 = make_terminal(data_dir, host.port)
    t1.sign_on()
    host.state.drop_next = 1
    host.state.ignore_next = 0
    # the host acts and loses the answer; the reversal too goes unanswered three times
    t1.link.timeout_s = 0.3
    orig_exchange = t1._exchange
    calls = {"n": 0}

    def flaky(fields, *, mak):
        calls["n"] += 1
        if fields["t"] == "0400":
            from wuye.posterm.link import NoResponse

            raise NoResponse("down")
        return orig_exchange(fields, mak=mak)

    t1._exchange = flaky  # type: ignore[method-assign]
    out = t1.purchase(amount_fen=700, card=Card(GOOD), pin="123456")
    assert out.reversed
    t1.store.close()
    t2 = make_terminal(data_dir, host.port)
    assert t2.counts()["pending_reversals"] == 1
    # kept after three tries; the next run does not send it again
    t2.purchase(amount_fen=800, card=Card(GOOD), pin="123456")
    assert t2.counts()["pending_reversals"] == 1


class Crash(BaseException):
    """The process dies (power cut) right after the request left."""


def test_a_crash_after_sending_is_reversed_on_restart_and_reported_once(data_dir, host):
    t1 = make_terminal(data_dir, host.port)
    t1.sign_on()
    real = t1.link.exchange

    def send_then_die(frame: bytes) -> bytes:
        real(frame)  # the host approves and answers; nobody is left to read it
        raise Crash

    t1.link.exchange = send_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        t1.purchase(amount_fen=4200, card=Card(GOOD), pin="123456")
    assert len(host.state.approved) == 1
    t1.store.close()

    t2 = make_terminal(data_dir, host.port)
    t2.recover()
    t2.recover()

    assert host.state.approved == {}
    reports = _reports(t2)
    assert len(reports) == 1
    assert reports[0]["approved"] is False and reports[0]["reversed"] is True
    assert reports[0]["amount_fen"] == 4200


def test_a_resent_refund_answered_94_with_an_auth_id_counts_as_the_first_approval(term, host):
    p = term.purchase(amount_fen=9000, card=Card(GOOD), pin="123456")
    host.state.drop_next = 1  # the host refunds, the answer is lost
    assert term.refund(rrn=p.rrn, amount_fen=4000).pending

    term.recover()  # sent again unchanged: "94" with the first answer's 38

    assert term.counts()["pending_refunds"] == 0
    assert term.totals()["credit_total_fen"] == 4000
    assert [r["approved"] for r in _reports(term) if r["kind"] == "refund"] == [True]
