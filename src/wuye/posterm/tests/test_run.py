"""``wuye terminal run`` against Wuye's real terminal API (live server) and a codec-built host:
a cashier's card order is pushed, the headless terminal takes it, the payment is posted once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from django.utils import timezone

from wuye.channels.card.services import card_order_push, card_refund_request
from wuye.counter.services import counter_order_start
from wuye.payments.models import Order, Payment
from wuye.posterm.card import Card
from wuye.posterm.cli import server_client
from wuye.posterm.runner import Runner
from wuye.posterm.screen import HeadlessScreen
from wuye.posterm.server import ServerClient
from wuye.posterm.tests.conftest import GOOD, make_terminal
from wuye.sims.acquirer.server import start_acquirer
from wuye.terminals.models import TerminalReport
from wuye.terminals.testing import TEST_TMK, make_counter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def host(tmp_path):
    """The acquirer simulator, knowing the terminal the counter registers."""
    with start_acquirer(
        tmp_path / "acquirer", terminals=[("10000001", "898310048990001", TEST_TMK)]
    ) as sim:
        yield sim


def _push(c, key: str = "k1") -> Order:
    now = timezone.now()
    order = counter_order_start(
        shift=c.shift,
        unit=c.unit,
        bill_ids=[b.pk for b in c.bills],
        amount_fen=None,
        channel="card",
        idempotency_key=key,
        now=now,
    )
    card_order_push(order=order, now=now)
    return order


def _runner(term, client, *, slip_dir: Path | None = None, max_requests: int = 1) -> Runner:
    screen = HeadlessScreen(auto_card=GOOD, auto_pin="123456", entry="chip")
    return Runner(
        term,
        screen,
        client,
        slip_dir=slip_dir,
        poll_wait_s=1,
        heartbeat_s=3600,
        max_requests=max_requests,
    )


def test_a_pushed_purchase_is_paid_with_its_slip_and_reported_once(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    order = _push(c)
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    runner = _runner(term, server_client(term), slip_dir=tmp_path / "slips")

    runner.run()

    order.refresh_from_db()
    assert order.state == Order.State.PAID
    payment = Payment.objects.get()
    assert payment.masked_pan == "622202*********0017" and payment.tid == "10000001"
    assert TerminalReport.objects.count() == 1
    slip = next((tmp_path / "slips").glob("*.txt")).read_text()
    assert "622202*********0017" in slip and "持卡人签名" in slip and GOOD not in slip
    assert term.counts()["pending_reports"] == 0


def test_server_unreachable_keeps_the_approval_and_reports_it_later_exactly_once(
    live_server, host, tmp_path
):
    c = make_counter(now=timezone.now())
    order = _push(c)
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    real = server_client(term)
    runner = _runner(term, real)

    class Flaky(ServerClient):
        def report_result(self, payload):
            from wuye.posterm.server import ServerUnreachable

            raise ServerUnreachable("cable pulled")

    runner.client = Flaky(real.base_url, real.tid, real.token)
    runner.handle(runner.client.next_request(1))
    assert term.counts()["pending_reports"] == 1
    order.refresh_from_db()
    assert order.state != Order.State.PAID

    # "crash": a new terminal instance over the same data directory delivers it
    term.store.close()
    term2 = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    _runner(term2, server_client(term2)).start()
    # and a third delivery attempt of the same report changes nothing
    term2.store.db.execute("UPDATE report SET state='pending'")
    _runner(term2, server_client(term2)).start()

    order.refresh_from_db()
    assert order.state == Order.State.PAID
    assert Payment.objects.count() == 1 and TerminalReport.objects.count() == 1


def test_a_lost_acquirer_answer_is_reversed_and_never_posted(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    order = _push(c)
    host.faults.add("drop_response", mti="0200", times=1)
    term = make_terminal(
        tmp_path / "t", host.port, server_url=live_server.url, token=c.token, timeout_s=0.5
    )
    _runner(term, server_client(term)).run()

    assert Payment.objects.count() == 0
    assert host.host.batch_totals("10000001", "000001").debit_count == 0
    report = TerminalReport.objects.get()
    assert report.approved is False
    order.refresh_from_db()
    assert order.state != Order.State.PAID


def test_void_from_wuye_goes_through_the_terminal(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    _push(c)
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    client = server_client(term)
    _runner(term, client).run()
    payment = Payment.objects.get()
    card_refund_request(
        payment=payment,
        amount_fen=payment.amount_fen,
        reason="重复缴费",
        by=c.finance,
        now=timezone.now(),
    )

    _runner(term, client).run()

    payment.refresh_from_db()
    assert payment.refunded_fen == payment.amount_fen
    assert host.host.batch_totals("10000001", "000001").credit_count == 1


def test_run_stops_when_asked(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    runner = _runner(term, server_client(term), max_requests=0)
    t = threading.Thread(target=runner.run)
    t.start()
    runner.stop.set()
    t.join(timeout=30)
    assert not t.is_alive()


def test_training_results_are_recorded_but_never_reach_the_books(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    _push(c)
    term = make_terminal(
        tmp_path / "t", host.port, server_url=live_server.url, token=c.token, training=True
    )
    _runner(term, server_client(term)).run()

    report = TerminalReport.objects.get()
    assert report.training is True and report.approved is True
    assert Payment.objects.count() == 0


def test_processing_requirement_6_asks_the_server_for_an_update(live_server, host, tmp_path):
    c = make_counter(now=timezone.now())
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    runner = _runner(term, server_client(term))
    beats: list[dict] = []
    real_beat, real_handle = runner.client.heartbeat, runner.handle
    runner.client.heartbeat = lambda body: beats.append(body) or real_beat(body)  # type: ignore
    seen_at_handle: list[int] = []
    runner.handle = lambda req: seen_at_handle.append(len(beats)) or real_handle(req)  # type: ignore
    term.sign_on()
    host.host.request_processing("10000001", 6)
    term.purchase(amount_fen=100, card=Card(GOOD), pin="123456")
    assert term.wants_app_update
    runner._last_beat = time.monotonic()  # no periodic heartbeat due
    _push(c)

    runner.run()

    assert seen_at_handle == [1]  # the heartbeat went first, because the host asked
    assert not term.wants_app_update


def test_a_settle_request_settles_the_batch_and_wuye_agrees(live_server, host, tmp_path):
    from wuye.terminals.models import Settlement
    from wuye.terminals.services import settlement_request

    c = make_counter(now=timezone.now())
    _push(c)
    term = make_terminal(tmp_path / "t", host.port, server_url=live_server.url, token=c.token)
    client = server_client(term)
    _runner(term, client).run()
    settlement_request(terminal=c.terminal, by=c.admin, now=timezone.now())

    _runner(term, client).run()

    s = Settlement.objects.get()
    assert s.verdict == "balanced" and s.matches is True
    assert (s.debit_count, s.debit_total_fen) == (1, Payment.objects.get().amount_fen)
    assert term.batch == "000002"
