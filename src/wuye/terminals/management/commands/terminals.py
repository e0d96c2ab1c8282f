"""``wuye terminals``: register, list, reset a token of, and enable/disable POS terminals.

Every action prints one JSON object (a token only once, when issued).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wuye.accounts.selectors import AccessDenied
from wuye.estates.models import Community
from wuye.terminals import keys, services
from wuye.terminals.models import Terminal


class Command(BaseCommand):
    help = "终端管理 (terminal management): register | list | token | enable | disable"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        p = sub.add_parser("register", help="register a terminal; prints its API token once")
        p.add_argument("--community", required=True, help="community code or id")
        p.add_argument("--counter", required=True, help="counter name (收费台), as shifts use it")
        p.add_argument("--serial", required=True)
        p.add_argument("--tid", required=True)
        p.add_argument("--mid", required=True)
        p.add_argument("--model", default="")
        p.add_argument("--kind", choices=["countertop", "handheld"], default="countertop")
        p.add_argument("--location", default="")
        p.add_argument("--ip", default=None)
        p.add_argument("--cert", default="", help="network-access certificate number")
        p.add_argument("--tmk", help="32 hex digits of a key the device already holds")
        p.add_argument("--by", required=True, help="username of the administrator")
        sub.add_parser("list")
        for name in ("token", "enable", "disable"):
            p = sub.add_parser(name)
            p.add_argument("--tid", required=True)
            p.add_argument("--by", required=True, help="username of the administrator")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            out = self._run(opts)
        except (services.TerminalError, keys.TmkFormatError, AccessDenied) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps(out, ensure_ascii=False))

    def _run(self, opts: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        action = opts["action"]
        if action == "list":
            return {
                "terminals": [
                    {
                        "tid": t.tid,
                        "mid": t.mid,
                        "serial": t.serial_no,
                        "community": t.community.name,
                        "counter": t.counter_name,
                        "kcv": t.tmk_kcv,
                        "enabled": t.enabled,
                        "last_seen_at": t.last_seen_at.isoformat() if t.last_seen_at else None,
                    }
                    for t in Terminal.objects.select_related("community").order_by("tid")
                ]
            }
        by = _user(opts["by"])
        if action == "register":
            ref = opts["community"]
            community = Community.objects.filter(code=ref).first() or (
                Community.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
            )
            if community is None:
                raise CommandError(f"--community: no community {ref!r}")
            terminal, token = services.terminal_register(
                community=community,
                counter_name=opts["counter"],
                serial_no=opts["serial"],
                tid=opts["tid"],
                mid=opts["mid"],
                model=opts["model"],
                kind=opts["kind"],
                location=opts["location"],
                ip_address=opts["ip"],
                network_cert_no=opts["cert"],
                tmk=keys.tmk_parse(opts["tmk"]) if opts.get("tmk") else None,
                by=by,
                now=now,
            )
            return {"tid": terminal.tid, "kcv": terminal.tmk_kcv, "token": token}
        found = Terminal.objects.filter(tid=opts["tid"]).first()
        if found is None:
            raise CommandError(f"--tid: no terminal {opts['tid']!r}")
        terminal = found
        if action == "token":
            return {
                "tid": terminal.tid,
                "token": services.terminal_token_reset(terminal=terminal, by=by, now=now),
            }
        services.terminal_enable(terminal=terminal, enabled=action == "enable", by=by, now=now)
        return {"tid": terminal.tid, "enabled": action == "enable"}


def _user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--by: no user {username!r}")
    return user
