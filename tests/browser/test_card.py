"""A card payment at the counter in a real browser, completed by the real terminal client.

The cashier opens a shift at 1号窗口, picks a household's bills and chooses 银行卡; Wuye
pushes the order to the terminal bound to that counter; ``wuye terminal run --headless
--auto-card …`` (a separate process, as on a POS) takes it, performs the ISO 8583 purchase
against the acquirer simulator and reports the result; the cashier's page turns to the paid
page with its receipt. Then finance voids it from the payment's card page, through the
terminal again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from wuye.payments.models import Order, Payment, Refund
from wuye.posterm.config import terminal_init
from wuye.sims.acquirer.server import start_acquirer
from wuye.terminals.models import TerminalReport
from wuye.terminals.selectors import acquirer_terminals
from wuye.terminals.testing import make_counter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"  # wuye.testing.factories.make_user's
CARD = "6222021000000000017"  # the spec's approved debit test card, PIN 123456


@pytest.fixture
def counter(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_counter(now=timezone.now(), open_shift=False)


@pytest.fixture
def acquirer(tmp_path, counter):
    known = [(t.tid, t.mid, t.tmk) for t in acquirer_terminals()]
    with start_acquirer(tmp_path / "acquirer", terminals=known) as sim:
        yield sim


def _terminal(tmp_path: Path, counter, acquirer, base: str, requests: int) -> subprocess.Popen:
    data_dir = terminal_init(
        tid=counter.terminal.tid,
        mid=counter.terminal.mid,
        tmk_hex=counter.terminal.tmk,
        acquirer=f"127.0.0.1:{acquirer.port}",
        server_url=base,
        token=counter.token,
        data_dir=tmp_path / "terminal",
    )
    env = {**os.environ, "WUYE_DATA_DIR": str(tmp_path / "terminal-home")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wuye.cli",
            "terminal",
            "run",
            "--data-dir",
            str(data_dir),
            "--headless",
            "--auto-card",
            CARD,
            "--auto-pin",
            "123456",
            "--auto-entry",
            "chip",
            "--poll-wait",
            "2",
            "--max-requests",
            str(requests),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _login(page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/")


def test_a_cashier_takes_a_card_payment_the_terminal_completes_and_finance_voids_it(
    live_server, page, tmp_path, counter, acquirer
):
    base = live_server.url
    pos = _terminal(tmp_path, counter, acquirer, base, requests=2)
    try:
        _login(page, base, counter.cashier.username)
        page.goto(f"{base}/counter/shifts/open/")
        page.fill("input[name=counter_name]", "1号窗口")
        page.fill("input[name=opening_float]", "0")
        page.click("#shift-open-form button[type=submit]")
        page.wait_for_url(f"{base}/counter/")

        page.goto(f"{base}/counter/units/{counter.unit.pk}/")
        assert page.locator("#bills input[name=bills]:checked").count() == 2
        page.check("input[name=channel][value=card]")
        page.click("#pay-button")
        page.wait_for_url(f"{base}/pay/card/order/*/")
        assert "10000001" in page.locator("#card-order").inner_text()

        # The terminal takes the pushed order, reads the card, asks the acquirer, reports.
        page.wait_for_url(f"{base}/counter/orders/*/", timeout=60_000)
        assert "收款成功" in page.locator("#paid").inner_text()
        number = page.locator("#receipt-number").inner_text()
        order = Order.objects.get()
        payment = Payment.objects.get(order=order)
        assert order.state == Order.State.PAID
        assert payment.receipt_number == number != ""
        assert (payment.masked_pan, payment.tid) == ("622202*********0017", "10000001")
        assert payment.amount_fen == order.amount_fen
        assert len(payment.rrn) == 12 and payment.auth_code

        # Finance voids it from the payment's card page; the terminal performs the void.
        _login(page, base, counter.finance.username)
        page.goto(f"{base}/pay/card/payment/{payment.pk}/refund/")
        assert "撤销" in page.locator("#void-hint").inner_text()
        page.fill("input[name=reason]", "缴错房号")
        page.click("#card-refund-form button[type=submit]")
        page.wait_for_url(f"{base}/pay/card/payment/{payment.pk}/refund/")
        pos.wait(timeout=60)
        page.reload()
        assert "已撤销" in page.locator("#refund-requests").inner_text()
        payment.refresh_from_db()
        assert payment.state == Payment.State.REFUNDED
        assert Refund.objects.get().reason == "缴错房号"
        assert TerminalReport.objects.filter(kind="void", status="voided").count() == 1
    finally:
        if pos.poll() is None:
            pos.kill()
        output = pos.communicate()[0].decode(errors="replace")
    assert CARD not in output  # the terminal never prints the full card number
