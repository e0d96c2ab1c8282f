"""Subcommands of ``wuye reconcile``: one module per subcommand in this package.

The command (``management/commands/reconcile.py``) finds every module here and makes each a
subcommand, so adding one is adding a module; nothing else is edited. A module provides:

- ``NAME`` (optional): the subcommand's name; defaults to the module's name
  (``import`` is a keyword, so ``importing.py`` sets ``NAME = "import"``);
- ``HELP``: one line for ``wuye reconcile --help``;
- ``add_arguments(parser)``: fills the subcommand's ``argparse`` parser;
- ``handle(command, **opts)``: runs it; writes to ``command.stdout``/``command.stderr``,
  raises ``CommandError`` for bad input.

Subcommands today: ``import``, ``run``, ``watch`` (reca) and ``report`` (recb).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def subcommands() -> dict[str, ModuleType]:
    """Return the subcommand modules of this package by subcommand name, sorted."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "handle") and hasattr(module, "add_arguments"):
            found[getattr(module, "NAME", info.name)] = module
    return dict(sorted(found.items()))
