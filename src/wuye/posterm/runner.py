"""``wuye terminal run``: the terminal's long-running mode.

Start: finish what a previous run left (reversals, refunds, unreported results). Then loop:
heartbeat every ``heartbeat_s``, deliver pending reports, long-poll Wuye's server for the next
request, accept it, run it on the screen (confirm, card, PIN), print the slip, report. A
request already handled (the server hands it out again until it has our report) is never run
twice: its report is delivered instead.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from wuye.posterm.card import CardError
from wuye.posterm.cli import open_terminal, server_client
from wuye.posterm.config import ConfigError, save
from wuye.posterm.engine import TAP_NO_PIN_LIMIT_FEN, Outcome, Terminal, TerminalError
from wuye.posterm.link import NoResponse
from wuye.posterm.reports import deliver
from wuye.posterm.screen import CursesScreen, HeadlessScreen, Screen, stdout_echo, yuan
from wuye.posterm.server import ServerClient, ServerRefused, ServerUnreachable
from wuye.posterm.slip import slip_text, write_slip

log = logging.getLogger("wuye.posterm")
MAX_BACKOFF_S = 60.0


class Runner:
    """Serve one terminal until ``stop`` is set (or ``max_requests`` were handled)."""

    def __init__(
        self,
        term: Terminal,
        screen: Screen,
        client: ServerClient,
        *,
        slip_dir: Path | None = None,
        poll_wait_s: int = 25,
        heartbeat_s: float = 30.0,
        max_requests: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        self.term = term
        self.screen = screen
        self.client = client
        self.slip_dir = slip_dir
        self.poll_wait_s = poll_wait_s
        self.heartbeat_s = heartbeat_s
        self.max_requests = max_requests
        self.stop = stop or threading.Event()
        self.handled = 0
        self._last_beat = 0.0
        self._backoff = 1.0
        self.app_update: dict[str, Any] | None = None
        self._fail_backoff = 1.0
        self.training_asked = term.training  # --training; the server's params may add it

    # housekeeping ---------------------------------------------------------------------
    def start(self) -> None:
        """Finish an earlier run's work before anything else (acquirer first, then server)."""
        try:
            self.term.recover()
        except (NoResponse, TerminalError) as exc:
            log.warning("start: pending work not finished yet (%s)", exc)
        deliver(self.term.store, self.client)

    def heartbeat(self) -> None:
        """Send a heartbeat; take new parameters and an offered application update."""
        counts = self.term.counts()
        last = self.term.store.get("state.last_txn_at")
        body = {
            "serial": self.term.cfg.serial or f"SN-{self.term.cfg.tid}",
            "app_version": self.term.cfg.app_version,
            "batch": self.term.batch,
            "batch_open_count": counts["batch_open_count"],
            "last_txn_at": last,
            "paper": None,
            "battery": None,
            "pending_reports": counts["pending_reports"],
            "pending_reversals": counts["pending_reversals"],
            "training": self.term.training,
            "params_version": self.term.cfg.params_version,
        }
        answer = self.client.heartbeat(body)
        self._last_beat = time.monotonic()
        params = answer.get("params")
        if isinstance(params, dict):
            self._apply_params(params, answer.get("params_version"))
        update = answer.get("app_update")
        if isinstance(update, dict) and update != self.app_update:
            self.app_update = update
            self.term.store.put("state.app_update", str(update.get("version", "")))
            log.info("application update offered: %s", update.get("version"))
        self.term.wants_app_update = False

    def _apply_params(self, params: dict[str, Any], version: Any) -> None:
        cfg = self.term.cfg
        if isinstance(params.get("timeout_s"), int | float) and params["timeout_s"] > 0:
            cfg.timeout_s = float(params["timeout_s"])
            self.term.link.timeout_s = cfg.timeout_s
        if isinstance(params.get("receipt_header"), str):
            cfg.receipt_header = params["receipt_header"]
        modes = params.get("entry_modes")
        if isinstance(modes, list) and modes:
            cfg.entry_modes = [str(m) for m in modes]
        ops = params.get("operators")
        if isinstance(ops, list) and ops:
            cfg.operator = str(ops[0])
        if isinstance(params.get("training"), bool):
            self.term.training = params["training"] or self.training_asked
        if isinstance(version, int):
            cfg.params_version = version
        save(self.term.store, cfg)
        log.info("parameters version %s applied", cfg.params_version)

    # loop -----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until stopped; return the exit code."""
        self.start()
        while not self.stop.is_set():
            try:
                if (
                    self.term.wants_app_update
                    or time.monotonic() - self._last_beat >= self.heartbeat_s
                ):
                    self.heartbeat()
                deliver(self.term.store, self.client)
                self._idle()
                req = self.client.next_request(self.poll_wait_s)
                self._backoff = 1.0
            except ServerUnreachable as exc:
                log.warning("server unreachable (%s); again in %.0f s", exc, self._backoff)
                self.screen.show(
                    _("待机"), [_("终端号 ") + self.term.cfg.tid, _("无法连接收费系统, 稍后重试")]
                )
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
                continue
            except ServerRefused as exc:
                log.error("server refused this terminal: %s", exc)
                self.stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
                continue
            if req is None:
                continue
            self.handle(req)
            self.handled += 1
            if self.max_requests and self.handled >= self.max_requests:
                break
        deliver(self.term.store, self.client)
        return 0

    def _idle(self) -> None:
        self.screen.show(
            _("待机"),
            [_("终端号 ") + self.term.cfg.tid, _("批次号 ") + self.term.batch, _("等待收款请求…")],
        )

    def handle(self, req: dict[str, Any]) -> Outcome | None:
        """Run one pushed request exactly once; return its outcome (None when not run)."""
        rid = str(req.get("id", ""))
        row = self.term.store.db.execute(
            "SELECT state FROM handled_request WHERE request_id=?", (rid,)
        ).fetchone()
        if row is not None:
            # Already run (or cut short by a crash): finish and report, never run it again.
            if row["state"] == "started":
                self.term.recover()
            deliver(self.term.store, self.client)
            return None
        expires = req.get("expires_at")
        if expires:
            try:
                if datetime.fromisoformat(expires) <= datetime.now().astimezone():
                    log.info("request %s expired before it started", rid)
                    return None
            except ValueError:
                pass
        try:
            self.client.accept(rid)
        except ServerRefused as exc:
            log.info("request %s not accepted: %s", rid, exc)
            return None
        kind = req.get("kind")
        amount = int(req.get("amount_fen") or 0)
        try:
            out = self._perform(rid, kind, amount, req)
        except (TerminalError, CardError, NoResponse, ValueError) as exc:
            log.warning("request %s (%s) failed: %s", rid, kind, exc)
            self.screen.show(_("交易失败"), [str(exc)])
            # The server hands the request out again until it expires: don't spin on it.
            self.stop.wait(self._fail_backoff)
            self._fail_backoff = min(self._fail_backoff * 2, MAX_BACKOFF_S)
            out = (
                self._report_failure(rid, kind, amount, req) if kind in ("void", "refund") else None
            )
        if out is not None:
            self._fail_backoff = 1.0
            self._finish(out)
        deliver(self.term.store, self.client)
        try:
            self.heartbeat()
        except (ServerUnreachable, ServerRefused) as exc:
            log.warning("heartbeat after request %s failed: %s", rid, exc)
        return out

    def _cancelled(self, rid: str) -> None:
        with self.term.store.atomic():
            self.term.store.db.execute(
                "INSERT OR IGNORE INTO handled_request(request_id, state) VALUES (?, 'cancelled')",
                (rid,),
            )
        self.screen.show(_("已取消"), [])

    def _perform(self, rid: str, kind: Any, amount: int, req: dict[str, Any]) -> Outcome | None:
        term = self.term
        payee = str(req.get("payee") or term.cfg.merchant_name)
        original = req.get("original") or {}
        if kind == "settle":
            self.screen.show(_("结算中"), [_("批次号 ") + term.batch])
            return term.settle(request_id=rid)
        if not self.screen.confirm(payee, amount, str(kind)):
            self._cancelled(rid)
            return None
        if kind == "void":
            self.screen.show(_("撤销中"), [yuan(amount)])
            return term.void(rrn=str(original.get("rrn", "")), request_id=rid)
        card = self.screen.read_card(amount, term.cfg.entry_modes)
        if card is None:
            self._cancelled(rid)
            return None
        if kind == "purchase":
            no_pin = card.entry == "tap" and amount < TAP_NO_PIN_LIMIT_FEN
            self.screen.show(_("处理中"), [yuan(amount)])
            return term.purchase(
                amount_fen=amount,
                card=card,
                pin=None if no_pin else self.screen.read_pin,
                request_id=rid,
            )
        if kind == "refund":
            return term.refund(
                rrn=str(original.get("rrn", "")),
                amount_fen=amount,
                card=card,
                original=original or None,
                request_id=rid,
            )
        if kind == "balance":
            pin = self.screen.read_pin(1)
            return term.balance(card=card, pin=pin or "", request_id=rid)
        raise TerminalError(f"kind: {kind!r} is not a request this terminal runs")

    def _report_failure(self, rid: str, kind: Any, amount: int, req: dict[str, Any]) -> Outcome:
        """Record a void/refund the terminal could not even send (unknown original …)."""
        stan = self.term._next_stan()
        out = Outcome(
            kind=str(kind),
            approved=False,
            response_code="12",
            message="无效交易",
            batch=self.term.batch,
            stan=stan,
            amount_fen=amount,
            training=self.term.training,
            original=req.get("original"),
        )
        with self.term.store.atomic():
            self.term._record_report(out, {"request_id": rid})
        return out

    def _finish(self, out: Outcome) -> None:
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        with self.term.store.atomic():
            self.term.store.put("state.last_txn_at", now)
        title = _("交易成功") if out.approved else _("交易失败")
        detail = [out.message, yuan(out.amount_fen)]
        if out.kind == "settle":
            detail = [str(out.extra.get("verdict")), _("批次号 ") + out.batch]
        self.screen.show(title, detail)
        if out.kind in ("purchase", "void", "refund") and out.approved:
            text = slip_text(out, self.term.cfg)
            if self.slip_dir:
                write_slip(out, self.term.cfg, self.slip_dir)
            self.screen.show(_("签购单"), text.splitlines())


def _open_when_configured(opts: dict[str, Any], stop: threading.Event) -> Terminal | None:
    """Open the terminal; while it has no configuration yet, wait for one (or for stop).

    A terminal being provisioned (``wuye terminal init``, the demo loader) is not an error for
    a long-running process: it says so once and checks again every few seconds.
    """
    said = False
    while not stop.is_set():
        try:
            return open_terminal(opts)
        except ConfigError as exc:
            if opts.get("tmk") or "HOST:PORT" in str(exc):
                raise
            if not said:
                sys.stderr.write(f"wuye terminal run: {exc}; waiting for it\n")
                said = True
            stop.wait(5.0)
    return None


def run_command(opts: dict[str, Any]) -> int:
    """Run ``wuye terminal run`` with parsed options; return the exit code."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    if opts.get("lang"):
        translation.activate(opts["lang"])
    term = _open_when_configured(opts, stop)
    if term is None:
        return 0
    client = server_client(term)
    if client is None:
        sys.stderr.write("--server: run needs the Wuye server URL (and --token)\n")
        return 2
    slip_dir = Path(opts["slip_dir"]) if opts.get("slip_dir") else term.store.data_dir / "slips"
    kwargs = {
        "slip_dir": slip_dir,
        "poll_wait_s": opts["poll_wait"],
        "heartbeat_s": opts["heartbeat"],
        "max_requests": opts["max_requests"],
        "stop": stop,
    }
    try:
        if opts.get("headless") or opts.get("auto_card") or not sys.stdin.isatty():
            screen = HeadlessScreen(
                auto_card=opts.get("auto_card"),
                auto_pin=opts.get("auto_pin"),
                entry=opts.get("auto_entry") or "chip",
                echo=stdout_echo,
            )
            return Runner(term, screen, client, **kwargs).run()
        import curses

        def _main(stdscr: Any) -> int:
            header = term.cfg.receipt_header or term.cfg.merchant_name or "Wuye POS"
            return Runner(term, CursesScreen(stdscr, header=header), client, **kwargs).run()

        return int(curses.wrapper(_main))
    except KeyboardInterrupt:
        return 0
    finally:
        term.close()
        term.store.close()
