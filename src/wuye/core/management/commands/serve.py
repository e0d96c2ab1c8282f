"""``wuye serve``: the web server and a background task worker, stopped together by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


def wuye_argv(*args: str) -> list[str]:
    """Return the command line that runs ``wuye <args>`` with this interpreter."""
    return [sys.executable, "-m", "wuye.cli", *args]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "启动网站和后台任务进程 (serve the web site and run a task worker)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="不启动后台任务进程 (tasks then run in the web process)",
        )
        parser.add_argument("--no-collectstatic", action="store_true")
        parser.add_argument(
            "--with-companions",
            action="store_true",
            help="也启动演示的模拟器与终端 (also start wuye.demo.companions: simulators, terminal)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        # Ctrl-C or a service manager's SIGTERM stop both children (a shell may have started
        # us with SIGINT ignored, so install the handlers explicitly).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        if not opts["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        env = dict(os.environ)
        env.setdefault("WUYE_DEBUG", "0")
        if not opts["no_worker"]:
            # Both processes enqueue to / read from the database queue (django-tasks-db).
            env["WUYE_TASK_BACKEND"] = "database"
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    wuye_argv("runserver", "--noreload", f"{opts['host']}:{opts['port']}"), env=env
                )
            )
            if not opts["no_worker"]:
                procs.append(subprocess.Popen(wuye_argv("worker"), env=env))  # noqa: S603
            if opts["with_companions"]:
                from wuye.demo.companions import DEMO_COMPANIONS

                for name, argv in DEMO_COMPANIONS:
                    self.stdout.write(f"启动 (starting) {name}: wuye {' '.join(argv)}")
                    procs.append(subprocess.Popen(wuye_argv(*argv), env=env))  # noqa: S603
            self.stdout.write(f"Wuye: http://{opts['host']}:{opts['port']}/  (Ctrl-C 停止)")
            while all(p.poll() is None for p in procs):
                time.sleep(0.5)
            failed = [p for p in procs if p.returncode not in (None, 0)]
            if failed:
                self.stderr.write(f"进程退出 (a process exited): {failed[0].args!r}")
        except KeyboardInterrupt:
            self.stdout.write("停止中 (stopping)…")
        finally:
            # A second Ctrl-C/SIGTERM (a service manager, a terminal sending it to the whole
            # group) must not cut the orderly stop of the children short.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            for p in procs:
                if p.poll() is None:
                    p.terminate()  # SIGTERM: the worker finishes its task, the server stops
            deadline = time.monotonic() + 10
            for p in procs:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
