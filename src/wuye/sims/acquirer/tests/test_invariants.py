"""Money invariants over random days of business (hypothesis): the host's batch totals and
the exported files agree with a model of what was approved, whatever the order of events."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wuye.sims.acquirer.export import Rates, export
from wuye.sims.acquirer.server import build_host
from wuye.sims.acquirer.testclient import TestTerminal

from .conftest import DEMO, TZ

CARDS = ["6222021000000000017", "6259000000000000030", "6228480000000000026"]
RATES = Rates(5000, 2000, 6000)


class LoopbackTerminal(TestTerminal):
    """The test terminal wired straight to a host object (no socket)."""

    __test__ = False

    def __init__(self, host, **kw):
        super().__init__(port=0, **kw)
        self._host = host

    def send_raw(self, data):
        return self._host.handle(data).frame


op = st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 6000), st.sampled_from(CARDS)),
    st.tuples(st.just("void"), st.integers(0, 50), st.none()),
    st.tuples(st.just("refund"), st.integers(0, 50), st.integers(1, 6000)),
    st.tuples(st.just("reverse"), st.integers(0, 50), st.none()),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=25))
def test_totals_and_files_match_the_approved_events(ops):
    with tempfile.TemporaryDirectory() as tmp:
        host = build_host(Path(tmp), terminals=[DEMO],
                          clock=lambda: datetime(2026, 11, 20, 10, 0, tzinfo=TZ))
        term = LoopbackTerminal(host)
        assert term.sign_on()["39"] == "00"
        bought: list[dict] = []  # approved purchases: request+answer, and model state
        debit = credit = 0
        debit_n = credit_n = 0
        for kind, a, b in ops:
            if kind == "buy":
                req = term.purchase_fields(a, b)
                ans = term.exchange(req)
                if ans["39"] == "00":
                    bought.append({"msg": {**req, **ans}, "pan": b, "left": a, "state": "ok",
                                   "req": req})
                    debit += a
                    debit_n += 1
            elif not bought:
                continue
            elif kind == "void":
                p = bought[a % len(bought)]
                ans = term.void(p["msg"])
                ok = p["state"] == "ok" and p["left"] == int(p["msg"]["4"])
                assert (ans["39"] == "00") == ok
                if ok:
                    p["state"] = "voided"
                    credit += int(p["msg"]["4"])
                    credit_n += 1
            elif kind == "refund":
                p = bought[a % len(bought)]
                ans = term.exchange(term.refund_fields(p["msg"], b, p["pan"]))
                ok = p["state"] == "ok" and b <= p["left"]
                assert (ans["39"] == "00") == ok
                if ok:
                    p["left"] -= b
                    credit += b
                    credit_n += 1
            else:
                p = bought[a % len(bought)]
                ans = term.reversal_of(p["req"])
                assert ans["39"] in ("00", "12")
                if ans["39"] == "00" and p["state"] == "ok":
                    assert p["left"] == int(p["msg"]["4"])
                    p["state"] = "reversed"
                    debit -= int(p["msg"]["4"])
                    debit_n -= 1
        totals = host.batch_totals(term.tid, term.batch)
        assert (totals.debit_fen, totals.debit_count, totals.credit_fen, totals.credit_count) == (
            debit, debit_n, credit, credit_n)
        files = export(host.store, date(2026, 11, 21), Path(tmp) / "out", fee=RATES.fee)
        if files:
            lines = files[0].read_text(encoding="utf-8").splitlines()
            rows, trailer = lines[1:-1], lines[-1].split(",")
            fen = [int(r.split(",")[12].replace(".", "")) for r in rows]
            fees = [int(r.split(",")[13].replace(".", "")) for r in rows]
            nets = [int(r.split(",")[14].replace(".", "")) for r in rows]
            assert all(f - fe == n for f, fe, n in zip(fen, fees, nets, strict=True))
            assert int(trailer[1]) == len(rows)
            assert int(trailer[2].replace(".", "")) == sum(fen)
            kept = sum(int(p["msg"]["4"]) for p in bought if p["state"] == "ok")
            refunded = sum(int(p["msg"]["4"]) - p["left"] for p in bought if p["state"] == "ok")
            assert sum(fen) == kept - refunded
        host.store.close()
