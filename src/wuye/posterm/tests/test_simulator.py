"""The terminal against the acquirer simulator (``wuye.sims.acquirer``, its TCP server running
in-process): the whole contract, every test card and the simulator's fault injection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wuye.posterm.card import Card
from wuye.posterm.tests.conftest import GOOD, MID, TID, TMK, make_terminal
from wuye.sims.acquirer.server import AcquirerHandle, start_acquirer

pytestmark = pytest.mark.django_db  # the simulator seals its keys with Wuye's field key


@pytest.fixture
def sim(tmp_path) -> Iterator[AcquirerHandle]:
    with start_acquirer(tmp_path / "acquirer", terminals=[(TID, MID, TMK)]) as s:
        yield s


@pytest.fixture
def term(sim, tmp_path):
    t = make_terminal(tmp_path / "t", sim.port, timeout_s=1.0)
    yield t
    t.close()
    t.store.close()


def test_the_whole_day_balances_with_the_simulator(term, sim):
    assert term.sign_on().approved
    p1 = term.purchase(amount_fen=12800, card=Card(GOOD, entry="chip"), pin="123456")
    p2 = term.purchase(amount_fen=20000, card=Card(GOOD, entry="stripe"), pin="123456")
    p3 = term.purchase(amount_fen=5000, card=Card("6258000000000000081", entry="tap"))
    assert p1.approved and p2.approved and p3.approved, (p1, p2, p3)
    v = term.void(rrn=p1.rrn)
    assert v.approved, v
    r = term.refund(rrn=p2.rrn, amount_fen=5000)
    assert r.approved, r
    b = term.balance(card=Card(GOOD), pin="123456")
    assert b.approved and b.balance_fen is not None
    batch = term.batch
    s = term.settle()
    assert s.extra["verdict"] == "balanced", s
    assert term.batch != batch


@pytest.mark.parametrize(
    ("pan", "pin", "amount", "code"),
    [
        ("6222021000000000017", "123456", 1000, "00"),
        ("6228480000000000026", "123456", 6000, "51"),
        ("6228480000000000026", "123456", 4000, "00"),
        ("6259000000000000030", "123456", 1000, "00"),
        ("6234560000000000043", "123456", 1000, "54"),
        ("6222021000000000058", "123456", 1000, "05"),
        ("6217000000000000061", "123456", 1000, "98"),
        ("6222021000000000074", "654321", 1000, "00"),
        ("6222021000000000074", "123456", 1000, "55"),
        ("6258000000000000081", None, 1000, "00"),
        ("6258000000000000081", None, 100_000, "55"),
    ],
)
def test_every_test_card(term, pan, pin, amount, code):
    entry = "tap" if pin is None else "chip"  # no PIN: contactless under ¥1,000 only
    out = term.purchase(amount_fen=amount, card=Card(pan, entry=entry), pin=pin)
    assert out.response_code == code, out
    assert out.approved is (code == "00")
    assert term.counts()["pending_reversals"] == 0


def test_a_dropped_answer_is_reversed_and_the_day_still_balances(term, sim):
    sim.host.faults.add("drop_response", mti="0200", times=1)
    out = term.purchase(amount_fen=3000, card=Card(GOOD), pin="123456")
    assert out.reversed and out.response_code == "98"
    ok = term.purchase(amount_fen=1000, card=Card(GOOD), pin="123456")
    assert ok.approved
    assert term.settle().extra["verdict"] == "balanced"


def test_a_corrupted_mac_on_an_approval_is_reversed(term, sim):
    sim.host.faults.add("corrupt_mac", mti="0200", times=1)
    out = term.purchase(amount_fen=3000, card=Card(GOOD), pin="123456")
    assert out.reversed and out.response_code == "A0"
    assert term.counts()["pending_reversals"] == 0
    assert term.settle().extra["verdict"] == "balanced"


def test_a_reversal_that_never_gets_through_makes_the_batch_upload(term, sim):
    sim.host.faults.add("drop_response", mti="0200", times=1)
    sim.host.faults.add("drop_request", mti="0400", times=6)  # 3 now, 3 more at settlement
    out = term.purchase(amount_fen=3000, card=Card(GOOD), pin="123456")
    assert out.reversed and term.counts()["pending_reversals"] == 1
    term.purchase(amount_fen=1000, card=Card(GOOD), pin="123456")
    s = term.settle()
    assert s.extra["verdict"] == "not_balanced" and s.extra["uploaded"] == 1


def test_processing_requirement_3_makes_the_terminal_sign_on_again(term, sim):
    term.sign_on()
    sim.host.request_processing(TID, 3)
    term.purchase(amount_fen=100, card=Card(GOOD), pin="123456")
    assert not term.signed_on
    assert term.purchase(amount_fen=100, card=Card(GOOD), pin="123456").approved
    assert term.signed_on


def test_a_refund_whose_answer_was_lost_is_sent_again_and_the_duplicate_counts_once(term, sim):
    p = term.purchase(amount_fen=9000, card=Card(GOOD), pin="123456")
    sim.host.faults.add("drop_response", mti="0220", times=1)
    first = term.refund(rrn=p.rrn, amount_fen=4000)
    assert first.pending and term.counts()["pending_refunds"] == 1

    term.recover()  # sent again unchanged; the host answers 94 with the first approval

    assert term.counts()["pending_refunds"] == 0
    assert term.totals()["credit_total_fen"] == 4000
    assert sim.host.batch_totals(term.cfg.tid, term.batch).credit_fen == 4000
    assert term.settle().extra["verdict"] == "balanced"


def test_a_kept_reversal_gets_another_round_at_settlement(term, sim):
    sim.host.faults.add("drop_response", mti="0200", times=1)
    sim.host.faults.add("drop_request", mti="0400", times=3)
    out = term.purchase(amount_fen=3000, card=Card(GOOD), pin="123456")
    assert out.reversed and term.counts()["pending_reversals"] == 1

    s = term.settle()

    assert s.extra["verdict"] == "balanced" and term.counts()["pending_reversals"] == 0
