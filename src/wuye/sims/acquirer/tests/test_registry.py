"""Terminals registered in Wuye's terminal management reach the host (worker-thread path)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from wuye.sims.acquirer.server import start_acquirer
from wuye.sims.acquirer.testclient import TestTerminal


@pytest.mark.django_db(transaction=True)
def test_a_terminal_registered_in_wuye_signs_on_and_buys(tmp_path):
    from wuye.terminals.selectors import acquirer_terminals
    from wuye.terminals.testing import TEST_TMK, make_counter

    counter = make_counter(now=datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    with start_acquirer(tmp_path, registry=acquirer_terminals) as handle:
        term = TestTerminal(handle.port, tid=counter.terminal.tid, mid=counter.terminal.mid,
                            tmk=TEST_TMK)
        assert term.sign_on()["39"] == "00"
        assert term.purchase(12_800, "6222021000000000017")["39"] == "00"
        assert TestTerminal(handle.port, tid="10000009").sign_on()["39"] == "97"
        # disabled in terminal management: refused from its next sign-on on
        counter.terminal.enabled = False
        counter.terminal.save(update_fields=["enabled"])
        assert term.sign_on()["39"] == "97"
        term.close()
