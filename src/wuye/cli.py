"""The ``wuye`` command: every operator action, as Django management commands.

``wuye demo``, ``wuye import units FILE``, ``wuye bill run ...``: each subcommand is a
management command in one of Wuye's apps, so the web, the CLI and scripts call the same
services.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    """Run a ``wuye`` subcommand."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuye.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["wuye", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
