"""``python -m wuye.sims.wechat ...``: the same as ``wuye sim wechat ...``."""

from __future__ import annotations

import os
import sys


def run() -> int:
    """Set Django up and run the simulator's command line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wuye.settings")
    import django

    django.setup()
    from wuye.sims.wechat.cli import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(run())
