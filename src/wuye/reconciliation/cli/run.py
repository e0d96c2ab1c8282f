"""``wuye reconcile run --date YYYYMMDD [--channel C] [--as-of YYYYMMDD] [--company C]``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from wuye.reconciliation.calendar import CalendarUnknown
from wuye.reconciliation.matching import reconcile_day
from wuye.reconciliation.models import Channel

from ._common import company_pick, parse_day, user_pick

HELP = "对账 match one settlement date (all channels or one)"


def add_arguments(parser: CommandParser) -> None:
    """Add the ``run`` subcommand's arguments to ``parser``."""
    parser.add_argument("--date", required=True, help="结算日期 settlement date, YYYYMMDD")
    parser.add_argument("--channel", choices=list(Channel.values), help="只对一个渠道")
    parser.add_argument(
        "--as-of", help="today's date: a credit not yet due is not reported missing"
    )
    parser.add_argument("--company", help="公司 id 或统一社会信用代码")
    parser.add_argument("--user", help="执行人 username")
    parser.add_argument(
        "--no-rules",
        action="store_true",
        help="只匹配, 不自动处理 (match only; leave every exception to finance)",
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")


def handle(command: Any, **opts: Any) -> None:
    """Run the matching, then (unless ``--no-rules``) the automatic rules; print each
    channel's counts and every resolution the rules made (to stderr with ``--json``)."""
    settle_date = parse_day(opts["date"])
    as_of = parse_day(opts["as_of"], "--as-of") if opts.get("as_of") else None
    company = company_pick(opts.get("company"))
    channel = opts.get("channel")
    try:
        runs = reconcile_day(
            company=company,
            settle_date=settle_date,
            channels=[channel] if channel else None,
            as_of=as_of,
            user=user_pick(opts.get("user")),
        )
    except CalendarUnknown as exc:
        raise CommandError(str(exc)) from None
    rule_lines: list[str] = []
    if not opts.get("no_rules"):
        # The same automatic resolutions the finance page's run applies (each undoable there).
        from wuye.reconciliation.rules import rules_apply

        rules = rules_apply(
            company_id=company.pk, settle_date=settle_date, now=timezone.now(), channel=channel
        )
        done = rules.as_dict()
        rule_lines = [
            "rules: {payments_posted} channel-only payments posted, {arrivals_booked} arrivals "
            "booked, {arrived} closed by arrival, {left_open} left to finance".format(**done),
            *("  " + line for line in rules.lines()),
        ]
        if opts.get("json"):
            # stdout stays the runs' JSON; what the rules did goes to stderr.
            for line in rule_lines:
                command.stderr.write(line)
    if opts.get("json"):
        command.stdout.write(
            json.dumps(
                [
                    {
                        "run": r.pk,
                        "channel": r.channel,
                        "settle_date": r.settle_date.isoformat(),
                        "matched_count": r.matched_count,
                        "matched_fen": r.matched_fen,
                        "exception_count": r.exception_count,
                        "categories": r.categories,
                    }
                    for r in runs
                ],
                ensure_ascii=False,
            )
        )
        return
    for r in runs:
        cats = ", ".join(f"{k} {v['count']}" for k, v in sorted(r.categories.items())) or "-"
        command.stdout.write(
            f"{r.channel} {r.settle_date:%Y%m%d}: matched {r.matched_count} "
            f"({r.matched_fen} fen) of {r.channel_count} channel / {r.internal_count} ours; "
            f"exceptions {r.exception_count}: {cats}"
        )
    for line in rule_lines:
        command.stdout.write(line)
