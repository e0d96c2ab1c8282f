"""``wuye worker``: run queued background tasks (billing runs, imports) from the database."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from wuye.core.management.commands.serve import wuye_argv


class Command(BaseCommand):
    help = "运行后台任务进程 (run the database task worker; WUYE_TASK_BACKEND=database)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="空闲时轮询间隔秒数 (seconds between polls when idle)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        backend = settings.TASKS["default"]["BACKEND"]
        if backend != "django_tasks_db.DatabaseBackend":
            # Settings are read once per process: start again with the database backend.
            env = {**os.environ, "WUYE_TASK_BACKEND": "database"}
            argv = wuye_argv("worker", "--interval", str(opts["interval"]))
            os.execve(argv[0], argv, env)  # noqa: S606 - our own interpreter and module
        call_command("db_worker", interval=opts["interval"], verbosity=opts["verbosity"])
