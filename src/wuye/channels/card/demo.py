"""Bank-card payments in the demo history, the real way through Wuye, the terminal and the acquirer.

``demo_load_card(today=..., say=...)`` replays, over the ten working days before ``today``, an
evening shift (延时收费, 17:40–19:40) at 锦绣苑's first counter, where the demo terminal
(TID ``10000001``) is bound:

- a few households a day pay at the counter by card: the cashier creates the order for channel
  ``card`` (``counter.services.counter_order_start``), the card page pushes it to the terminal
  (``card_order_push``), the terminal client (``wuye.posterm``: the same ``Runner`` as
  ``wuye terminal run --headless``, with the demo terminal's own data directory) takes the
  request, performs the purchase in ISO 8583 against an in-process acquirer simulator (debit
  card with PIN, credit card with PIN, a contactless tap without PIN under ¥1,000) and reports
  the result, which posts the payment with its receipt;
- one purchase is declined (51, insufficient funds): the cashier cancels that order and the
  household pays with another card;
- finance voids one payment the same day (撤销) and refunds part of an earlier day's payment
  (退货), both started from Wuye (``card_refund_request``) and run on the terminal;
- every day ends with finance's settle request: the terminal settles its batch with the
  acquirer (0500) and reports the settlement, which Wuye checks against its own totals; then
  the shift is closed with the drawer as expected (card money never touches the cash drawer).

Dates: the history is in the past, so one clock drives all three parts — the terminal
(``Terminal.clock``), the acquirer simulator (``Host.clock``) and Wuye's services (their
``now`` argument). The terminal's reports go through ``wuye.terminals.services`` — the code
the terminal API views call — in process, with that clock instead of the wall clock (which is
also why the requests handed to the terminal carry no ``expires_at``: the client compares it
with the wall clock).

The simulator keeps its books in ``$WUYE_DATA_DIR/acquirer/`` (where ``wuye sim acquirer``
keeps them) and the terminal in ``$WUYE_DATA_DIR/terminal/10000001/``, so batch numbers, STANs
and ``wuye sim acquirer export`` carry on from the history. A second call adds nothing.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import F

from wuye.accounts.models import Membership, Role, User
from wuye.billing.models import Bill
from wuye.channels.card.constants import CODE
from wuye.channels.card.services import card_order_cancel, card_order_push, card_refund_request
from wuye.counter.models import Shift
from wuye.counter.selectors import shift_expected_cash
from wuye.counter.services import counter_order_start, shift_close, shift_open
from wuye.estates.models import Unit
from wuye.payments.models import Order, Payment
from wuye.payments.services import BillInPendingOrder
from wuye.posterm.engine import TAP_NO_PIN_LIMIT_FEN
from wuye.posterm.server import ServerClient, ServerRefused
from wuye.terminals.models import Settlement, Terminal, TerminalReport

TZ = ZoneInfo("Asia/Shanghai")
DAYS = 10
PER_DAY = 3
"""Households paying by card a working day (a declined card is tried again with another)."""
OPEN_AT = time(17, 40)
SETTLE_AT = time(19, 30)
CLOSE_AT = time(19, 40)
PIN = "123456"
# (PAN, entry, kind) from the acquirer's published test cards (shared/spec/pos-iso8583.md)
DEBIT = ("6222021000000000017", "chip", "debit")
CREDIT = ("6259000000000000030", "chip", "credit")
TAP = ("6258000000000000081", "tap", "tap")
LOW_BALANCE = ("6228480000000000026", "chip", "debit")  # ¥50.00: 51 above it
CARDS = (DEBIT, CREDIT, TAP)
VOID_REASON = "收费金额有误, 当日撤销重收"
REFUND_REASON = "多缴车位管理费, 退回部分款项"


class DemoClock:
    """The one clock of the replay: terminal, acquirer and Wuye read ``now`` from it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: int) -> datetime:
        """Move the clock on by ``seconds`` and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


class InProcessServer(ServerClient):
    """The terminal's view of Wuye, answered in process by ``wuye.terminals.services`` (what the
    API views call) with the demo clock; errors map to the HTTP answers the views give."""

    def __init__(self, terminal: Terminal, clock: DemoClock) -> None:
        super().__init__(base_url="inprocess://wuye", tid=terminal.tid, token="")
        self.terminal_pk = terminal.pk
        self.clock = clock

    def _terminal(self) -> Terminal:
        return Terminal.objects.get(pk=self.terminal_pk)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Answer one terminal API call; raise ServerRefused as the view would (409, 400)."""
        from wuye.terminals import services
        from wuye.terminals.api_views import request_wire

        terminal, now, data = self._terminal(), self.clock(), body or {}
        try:
            if path == "heartbeat":
                return services.heartbeat_record(
                    terminal=terminal, data=data, ip_address="127.0.0.1", now=now
                )
            if path.startswith("requests?"):
                found = services.request_next(terminal=terminal, now=now)
                if found is None:
                    return {"request": None}
                wire = request_wire(found)
                wire["expires_at"] = None  # the client checks it against the wall clock
                return {"request": wire}
            if path.startswith("requests/") and path.endswith("/accept"):
                public_id = path.split("/")[1]
                services.request_accept(terminal=terminal, public_id=public_id, now=now)
                return {"status": "accepted"}
            if path == "results":
                return services.result_record(terminal=terminal, data=data, now=now)
            if path == "settlements":
                return services.settlement_record(terminal=terminal, data=data, now=now)
        except services.RequestClosed as exc:
            raise ServerRefused(409, str(exc)) from exc
        except services.TerminalError as exc:
            raise ServerRefused(400, str(exc)) from exc
        raise ServerRefused(404, f"{method} {path}: not a terminal API call")


@dataclass
class CardDemoResult:
    """What the replay did (for the summary line and the tests)."""

    kinds: dict[str, int] = field(default_factory=dict)
    declined: int = 0
    voids: int = 0
    refunds: int = 0
    settlements: int = 0
    balanced: int = 0
    shifts: int = 0


def _days(today: date, n: int) -> list[date]:
    out: list[date] = []
    day = today - timedelta(days=1)
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


def _at(day: date, t: time) -> datetime:
    return datetime.combine(day, t, tzinfo=TZ)


def _owing(community_id: int, rng: random.Random) -> list[tuple[Unit, list[int]]]:
    """Households of the community with unpaid bills (their two oldest), shuffled."""
    rows = (
        Bill.objects.filter(
            community_id=community_id, amount_fen__gt=F("paid_fen") + F("waived_fen")
        )
        .exclude(kind=Bill.Kind.LATE_FEE)
        .values_list("unit_id", "pk")
        .order_by("unit_id", "pk")
    )
    bills: dict[int, list[int]] = {}
    for unit_id, pk in rows:
        bills.setdefault(unit_id, []).append(pk)
    units = sorted(bills)
    rng.shuffle(units)
    units = units[: DAYS * (PER_DAY + 2) * 3]
    chosen = Unit.objects.in_bulk(units)
    return [(chosen[u], bills[u][:2]) for u in units if u in chosen]


def _staff(terminal: Terminal) -> tuple[User, User]:
    """The cashier of the terminal's counter (the one the history's shifts there had) and the
    company's finance user. Raise ValueError when the company has none."""
    counter_shift = (
        Shift.objects.filter(community=terminal.community, counter_name=terminal.counter_name)
        .select_related("cashier")
        .order_by("-pk")
        .first()
    )

    def member(role: str) -> User | None:
        m = (
            Membership.objects.filter(company_id=terminal.company_id, role=role)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        return m.user if m else None

    cashier = counter_shift.cashier if counter_shift else member(Role.CASHIER)
    finance = member(Role.FINANCE)
    if cashier is None or finance is None:
        raise ValueError(f"company {terminal.company_id}: the demo needs a cashier and finance")
    return cashier, finance


class _Replay:
    """One replay: the terminal client, its in-process server and the acquirer's clock."""

    def __init__(self, terminal: Terminal, clock: DemoClock, runner: Any) -> None:
        self.terminal = terminal
        self.clock = clock
        self.runner = runner
        self.result = CardDemoResult()

    def serve(self, card: tuple[str, str, str] = DEBIT) -> Any:
        """The terminal takes its next request and runs it with ``card``; return the outcome."""
        from wuye.posterm.screen import HeadlessScreen

        pan, entry, _kind = card
        self.runner.screen = HeadlessScreen(auto_card=pan, auto_pin=PIN, entry=entry)
        self.clock.step(15)
        req = self.runner.client.next_request(0)
        if req is None:
            raise RuntimeError(f"terminal {self.terminal.tid}: no request to run")
        self.clock.step(20)
        out = self.runner.handle(req)
        # the client stamps its last transaction with the wall clock: tell Wuye the demo's
        term = self.runner.term
        with term.store.atomic():
            term.store.put("state.last_txn_at", self.clock().isoformat(timespec="seconds"))
        self.runner.heartbeat()
        return out

    def purchase(
        self, shift: Shift, unit: Unit, bill_ids: list[int], key: str, card: tuple[str, str, str]
    ) -> tuple[Order | None, Payment | None]:
        """The counter's card payment: order → push → terminal → report; return order and
        payment (no order when one of the bills is in an open order already)."""
        try:
            order = counter_order_start(
                shift=shift,
                unit=unit,
                bill_ids=bill_ids,
                amount_fen=None,
                channel=CODE,
                idempotency_key=key,
                now=self.clock(),
            )
        except BillInPendingOrder:
            return None, None
        if card[2] == "tap" and order.amount_fen >= TAP_NO_PIN_LIMIT_FEN:
            card = CREDIT  # over the no-PIN limit: the card goes in the reader with its PIN
        card_order_push(order=order, now=self.clock.step(10))
        self.serve(card)
        payment = Payment.objects.filter(order=order).first()
        if payment is not None:
            self.result.kinds[card[2]] = self.result.kinds.get(card[2], 0) + 1
        return order, payment

    def give_back(self, payment: Payment, amount_fen: int, reason: str, by: User) -> str:
        """Finance gives money back on the card; return the request's kind (void or refund)."""
        req = card_refund_request(
            payment=payment, amount_fen=amount_fen, reason=reason, by=by, now=self.clock.step(60)
        )
        card = next((c for c in CARDS if c[0].endswith(payment_pan_tail(payment))), DEBIT)
        self.serve(card)
        return str(req.kind)


def payment_pan_tail(payment: Payment) -> str:
    """The last four digits of the card a payment was taken with (from its report)."""
    report = TerminalReport.objects.filter(payment=payment, kind="purchase").first()
    return report.masked_pan[-4:] if report else "----"


def demo_load_card(*, today: date, say: Callable[[str], None]) -> None:
    """Add card payments, a decline, a void, a refund and daily settlements to the demo history
    (see the module doc) and say a one-line summary.

    Does nothing when the demo terminal has reports already. Raise ValueError when the demo
    terminal is not registered (``demo_load_terminals`` first) or its company has no cashier
    or finance user.
    """
    from wuye.terminals.demo import DEMO_TID

    terminal = Terminal.objects.select_related("community").filter(tid=DEMO_TID).first()
    if terminal is None:
        raise ValueError(f"terminal {DEMO_TID}: register it first (demo_load_terminals)")
    if TerminalReport.objects.filter(terminal=terminal).exists():
        say(f"银行卡: 终端 {DEMO_TID} 已有交易记录, 不再生成")
        return
    result = card_history_replay(terminal=terminal, today=today)
    kinds = result.kinds
    say(
        f"银行卡: 终端 {DEMO_TID} 收款 {sum(kinds.values())} 笔 (储蓄卡 {kinds.get('debit', 0)}, "
        f"信用卡 {kinds.get('credit', 0)}, 挥卡免密 {kinds.get('tap', 0)}), 拒绝 "
        f"{result.declined} 笔 (51 余额不足), 撤销 {result.voids} 笔, 退货 {result.refunds} 笔, "
        f"结算 {result.settlements} 批 (对账平 {result.balanced})"
    )


def fresh_books(*, terminal_dir: Path, acquirer_dir: Path) -> None:
    """Start the terminal's and the simulator's books afresh for a fresh demo database.

    A directory left by an earlier demo (``wuye demo --reset`` keeps the data directory) holds
    that life's batch, unsettled transactions and undelivered reports, which would otherwise
    be settled and reported into the new database. The terminal's configuration (written by
    ``demo_load_terminals`` with the new token) is kept. Raise ConfigError when the terminal
    has no configuration.
    """
    from wuye.posterm.config import ConfigError, load, terminal_init
    from wuye.posterm.store import Store

    store = Store(terminal_dir)
    try:
        cfg = load(store)
        used = sum(
            store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("report", "txn", "reversal", "refund_out", "handled_request")
        )
    finally:
        store.close()
    if cfg is None:
        raise ConfigError(f"{terminal_dir}: no configuration (demo_load_terminals first)")
    for old in acquirer_dir.glob("acquirer.sqlite3*"):
        old.unlink()
    if used:
        shutil.rmtree(terminal_dir)
        terminal_init(
            tid=cfg.tid,
            mid=cfg.mid,
            tmk_hex=cfg.tmk.hex(),
            acquirer=cfg.acquirer,
            server_url=cfg.server_url,
            token=cfg.token,
            merchant_name=cfg.merchant_name,
            serial=cfg.serial,
            data_dir=terminal_dir,
        )


def card_history_replay(
    *, terminal: Terminal, today: date, data_dir: Path | None = None
) -> CardDemoResult:
    """Replay the card days (the module doc) for ``terminal``; return what was done.

    ``data_dir`` is the terminal client's directory (default ``$WUYE_DATA_DIR/terminal/<TID>``,
    where ``demo_load_terminals`` wrote its configuration). Raise ValueError when the company
    has no cashier or finance user, ConfigError when the terminal is not configured.
    """
    from wuye.posterm.cli import open_terminal
    from wuye.posterm.config import default_data_dir
    from wuye.posterm.link import Link
    from wuye.posterm.runner import Runner
    from wuye.posterm.screen import HeadlessScreen
    from wuye.sims.acquirer.server import start_acquirer

    cashier, finance = _staff(terminal)
    days = _days(today, DAYS)
    clock = DemoClock(_at(days[0], OPEN_AT))
    data_dir = data_dir or default_data_dir(terminal.tid)
    books = data_dir.parent.parent / "acquirer"  # where `wuye sim acquirer` keeps its books
    fresh_books(terminal_dir=data_dir, acquirer_dir=books)
    acquirer = start_acquirer(
        books,
        terminals=[(terminal.tid, terminal.mid, bytes.fromhex(terminal.tmk))],
        clock=clock,
    )
    term = open_terminal({"tid": terminal.tid, "data_dir": data_dir})
    try:
        term.clock = clock
        term.link.close()
        term.link = Link("127.0.0.1", acquirer.port, timeout_s=term.cfg.timeout_s)
        client = InProcessServer(terminal, clock)
        runner = Runner(
            term,
            HeadlessScreen(auto_card=None, auto_pin=None),
            client,
            slip_dir=term.store.data_dir / "slips",
            poll_wait_s=0,
        )
        runner.start()
        replay = _Replay(terminal, clock, runner)
        _replay_days(replay, days, cashier, finance)
        return replay.result
    finally:
        term.close()
        term.store.close()
        acquirer.stop()


def _replay_days(replay: _Replay, days: list[date], cashier: User, finance: User) -> None:
    from wuye.terminals.services import settlement_request

    terminal, clock, result = replay.terminal, replay.clock, replay.result
    rng = random.Random(4)
    queue = _owing(terminal.community_id, rng)
    decline_day, void_day = days[1], days[len(days) // 2]
    refund_day, refund_of = days[-2], days[2]
    refundable: Payment | None = None
    for day in days:
        clock.now = _at(day, OPEN_AT)
        shift = shift_open(
            cashier=cashier,
            community=terminal.community,
            counter_name=terminal.counter_name,
            opening_float_fen=0,
            now=clock(),
        )
        result.shifts += 1
        today_units, queue = queue[:PER_DAY], queue[PER_DAY:]
        for n, (unit, bill_ids) in enumerate(today_units):
            clock.now = _at(day, OPEN_AT) + timedelta(minutes=8 + 22 * n + rng.randrange(0, 8))
            key = f"demo-card-{day:%Y%m%d}-{n}"
            if day == decline_day and n == 0:
                order, payment = replay.purchase(shift, unit, bill_ids, key, LOW_BALANCE)
                if order is not None and payment is None:
                    result.declined += 1
                    card_order_cancel(order=order, now=clock.step(30))
                    key += "-2"  # the household pays again with another card
                    replay.purchase(shift, unit, bill_ids, key, DEBIT)
                continue
            card = CARDS[(n + day.toordinal()) % len(CARDS)]
            _order, payment = replay.purchase(shift, unit, bill_ids, key, card)
            if payment is None:
                continue
            if day == void_day and n == 1:
                if replay.give_back(payment, payment.amount_fen, VOID_REASON, finance) == "void":
                    result.voids += 1
            if day == refund_of and refundable is None:
                refundable = payment
        if day == refund_day and refundable is not None:
            refundable.refresh_from_db()
            amount = max(1, refundable.amount_fen // 4)
            if replay.give_back(refundable, amount, REFUND_REASON, finance) == "refund":
                result.refunds += 1
        clock.now = _at(day, SETTLE_AT)
        settlement_request(terminal=terminal, by=finance, now=clock())
        replay.serve()
        last = Settlement.objects.filter(terminal=terminal).order_by("-pk").first()
        if last is not None and last.settled_at.astimezone(TZ).date() == day:
            result.settlements += 1
            result.balanced += int(last.verdict == Settlement.Verdict.BALANCED and last.matches)
        clock.now = _at(day, CLOSE_AT)
        shift_close(
            shift=shift, counted_cash_fen=shift_expected_cash(shift=shift), note="", now=clock()
        )
