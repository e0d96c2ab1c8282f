"""``wuye terminal``: the POS terminal client (one JSON object per command, or ``run``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wuye.posterm.card import Card, CardError
from wuye.posterm.cli import flush, open_terminal
from wuye.posterm.config import ConfigError
from wuye.posterm.engine import TerminalError
from wuye.posterm.link import NoResponse
from wuye.posterm.store import StoreError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="数据目录 (default $WUYE_DATA_DIR/terminal/<TID>/)")
    p.add_argument("--tid", help="终端号 TID (8)")
    p.add_argument("--mid", help="商户号 MID (15)")
    p.add_argument("--tmk", help="终端主密钥 TMK (32 hex)")
    p.add_argument("--acquirer", help="收单主机 HOST:PORT")
    p.add_argument("--server", help="Wuye server URL (http://127.0.0.1:8000)")
    p.add_argument("--token", help="terminal API token issued by terminal management")
    p.add_argument("--timeout", type=float, help="acquirer answer timeout, seconds (30)")
    p.add_argument("--training", action="store_true", help="培训模式 (test cards only)")
    p.add_argument("--verbose", action="store_true")


def _card(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--card", required=required, help="card number (PAN)")
    p.add_argument("--expiry", default="3012", help="card expiry YYMM (3012)")
    p.add_argument("--entry", choices=["stripe", "chip", "tap"], default="stripe")


class Command(BaseCommand):
    help = (
        "POS终端 (POS terminal client): init | sign-on | purchase | void | refund | balance"
        " | settle | report | status | run"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("init", help="write the terminal's configuration")
        _common(p)
        p.add_argument("--merchant-name", default="")
        p.add_argument("--serial", default="")
        p.add_argument("--operator", default="")
        for name in ("sign-on", "settle", "status", "report"):
            _common(sub.add_parser(name))
        p = sub.add_parser("purchase")
        _common(p)
        _card(p)
        p.add_argument("--amount", type=int, required=True, help="amount in fen")
        p.add_argument("--pin")
        p = sub.add_parser("void")
        _common(p)
        p.add_argument("--rrn", required=True)
        p = sub.add_parser("refund")
        _common(p)
        _card(p, required=False)
        p.add_argument("--rrn", required=True)
        p.add_argument("--amount", type=int, required=True, help="amount in fen")
        p = sub.add_parser("balance")
        _common(p)
        _card(p)
        p.add_argument("--pin", required=True)
        p = sub.add_parser("run", help="long-running: heartbeat, take Wuye's requests, screen")
        _common(p)
        p.add_argument("--headless", action="store_true", help="no interactive screen")
        p.add_argument("--auto-card", help="present this card by itself (demo, tests)")
        p.add_argument("--auto-pin", help="enter this PIN by itself")
        p.add_argument("--auto-entry", choices=["stripe", "chip", "tap"], default="chip")
        p.add_argument("--slip-dir", help="write slips (text and ESC/POS) here")
        p.add_argument("--poll-wait", type=int, default=25, help="long-poll seconds (25)")
        p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between heartbeats")
        p.add_argument("--max-requests", type=int, default=0, help="stop after N requests")
        p.add_argument("--lang", choices=["zh-hans", "en"], help="screen language (zh-hans)")

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        error = None
        try:
            if action == "run":
                from wuye.posterm.runner import run_command

                code = run_command(opts)
                if code:
                    raise CommandError(f"wuye terminal run: exit {code}", returncode=code)
                return
            result = self._one(action, opts)
        except (ConfigError, CardError, TerminalError, StoreError, NoResponse, ValueError) as exc:
            error = str(exc)
            result = {"ok": False, "error": error}
        self.stdout.write(json.dumps(result, ensure_ascii=False))
        self.stdout.flush()
        if error is not None:
            raise CommandError(error, returncode=1)

    def _one(self, action: str, opts: dict[str, Any]) -> dict[str, Any]:
        term = open_terminal(opts, create=action == "init")
        try:
            if action == "init":
                return {
                    "ok": True,
                    "tid": term.cfg.tid,
                    "mid": term.cfg.mid,
                    "data_dir": str(term.store.data_dir),
                    "acquirer": term.cfg.acquirer,
                    "server": term.cfg.server_url,
                    "batch": term.batch,
                }
            if action == "status":
                return {
                    "ok": True,
                    "tid": term.cfg.tid,
                    "batch": term.batch,
                    "stan": term.stan,
                    "signed_on": term.signed_on,
                    **term.counts(),
                    **term.totals(),
                }
            if action == "report":
                return {"ok": True, **flush(term)}
            if action == "sign-on":
                out = term.sign_on()
            elif action == "purchase":
                card = Card(opts["card"], expiry=opts["expiry"], entry=opts["entry"])
                out = term.purchase(amount_fen=opts["amount"], card=card, pin=opts.get("pin"))
            elif action == "void":
                out = term.void(rrn=opts["rrn"])
            elif action == "refund":
                given = (
                    Card(opts["card"], expiry=opts["expiry"], entry=opts["entry"])
                    if opts.get("card")
                    else None
                )
                out = term.refund(rrn=opts["rrn"], amount_fen=opts["amount"], card=given)
            elif action == "balance":
                card = Card(opts["card"], expiry=opts["expiry"], entry=opts["entry"])
                out = term.balance(card=card, pin=opts["pin"])
            else:
                out = term.settle()
            result = {"ok": True, **out.as_json()}
            if action != "sign-on":
                result["delivery"] = flush(term)
            return result
        finally:
            term.close()
            term.store.close()
