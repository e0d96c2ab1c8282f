"""Money invariant: whatever mix of purchases, lost answers, voids and refunds a day brings,
the terminal's settlement totals equal the acquirer simulator's and the batch balances."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.posterm.card import Card
from wuye.posterm.tests.conftest import GOOD, MID, TID, TMK, make_terminal
from wuye.sims.acquirer.server import start_acquirer

pytestmark = pytest.mark.django_db

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("purchase"), st.integers(1, 500_000), st.booleans()),
        st.tuples(st.just("void"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("refund"), st.integers(0, 5), st.integers(1, 100)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_the_days_totals_always_match_the_hosts(ops):
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_acquirer(Path(tmp) / "acq", terminals=[(TID, MID, TMK)]) as sim,
    ):
        term = make_terminal(Path(tmp) / "t", sim.port, timeout_s=0.5)
        approved: list = []
        for op in ops:
            if op[0] == "purchase":
                _, amount, lose = op
                if lose:
                    sim.faults.add("drop_response", mti="0200", times=1)
                out = term.purchase(amount_fen=amount, card=Card(GOOD), pin="123456")
                assert out.approved is not lose
                if out.approved:
                    approved.append([out.rrn, amount, 0])
            elif op[0] == "void" and approved:
                _, i, lose = op
                rrn, amount, refunded = approved.pop(i % len(approved))
                if refunded:
                    continue
                if lose:
                    sim.faults.add("drop_response", mti="0200", times=1)
                out = term.void(rrn=rrn)
                if not out.approved:  # reversed: the purchase stands
                    approved.append([rrn, amount, refunded])
            elif op[0] == "refund" and approved:
                _, i, pct = op
                entry = approved[i % len(approved)]
                amount = max(1, (entry[1] - entry[2]) * pct // 100)
                if entry[1] - entry[2] < amount:
                    continue
                out = term.refund(rrn=entry[0], amount_fen=amount)
                assert out.approved
                entry[2] += amount
        ours = term.totals()
        host = sim.host.batch_totals(TID, term.batch)
        assert (ours["debit_total_fen"], ours["debit_count"]) == (host.debit_fen, host.debit_count)
        assert (ours["credit_total_fen"], ours["credit_count"]) == (
            host.credit_fen,
            host.credit_count,
        )
        assert term.settle().extra["verdict"] == "balanced"
        assert term.counts()["pending_reversals"] == 0
        term.close()
        term.store.close()
