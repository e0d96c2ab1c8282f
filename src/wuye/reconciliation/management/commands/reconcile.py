"""``wuye reconcile SUBCOMMAND …``: reconciliation from the command line.

Subcommands are the modules of :mod:`wuye.reconciliation.cli` (import, run, watch, report…);
see that package's docstring for how to add one.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from wuye.reconciliation.cli import subcommands


class Command(BaseCommand):
    help = "对账 reconciliation: " + ", ".join(subcommands())

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for name, module in subcommands().items():
            child = sub.add_parser(name, help=getattr(module, "HELP", ""))
            module.add_arguments(child)

    def handle(self, *args: Any, **opts: Any) -> None:
        subcommands()[opts["subcommand"]].handle(self, **opts)
