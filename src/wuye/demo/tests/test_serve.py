"""`wuye serve` starts the web server and a database task worker, and stops both together."""

from __future__ import annotations

import signal
from io import StringIO

import pytest
from django.core.management import call_command

from wuye.core.management.commands import serve


class FakeProcess:
    started: list[FakeProcess] = []

    def __init__(self, args, env):
        self.args, self.env = args, env
        self.returncode: int | None = None
        self.terminated = False
        FakeProcess.started.append(self)

    def poll(self):
        return self.returncode

    def terminate(self):
        self.terminated = True
        self.returncode = -15

    def wait(self, timeout=None):
        return self.returncode

    def kill(self):
        self.returncode = -9


@pytest.fixture
def fake_processes(monkeypatch):
    FakeProcess.started = []
    monkeypatch.setattr(serve.subprocess, "Popen", FakeProcess)
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    yield FakeProcess.started
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])


def test_serve_runs_the_server_and_a_worker_on_the_database_queue_and_ctrl_c_stops_both(
    fake_processes, monkeypatch
):
    def press_ctrl_c(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(serve.time, "sleep", press_ctrl_c)

    call_command("serve", "--port", "8123", "--no-collectstatic", stdout=StringIO())

    web, worker = fake_processes
    assert web.args[-3:] == ["runserver", "--noreload", "127.0.0.1:8123"]
    assert worker.args[-1] == "worker"
    assert web.env["WUYE_TASK_BACKEND"] == worker.env["WUYE_TASK_BACKEND"] == "database"
    assert web.terminated and worker.terminated


def test_serve_stops_the_worker_when_the_server_exits(fake_processes, monkeypatch):
    def server_dies(_seconds):
        fake_processes[0].returncode = 1

    monkeypatch.setattr(serve.time, "sleep", server_dies)
    err = StringIO()

    call_command("serve", "--no-collectstatic", stdout=StringIO(), stderr=err)

    assert fake_processes[1].terminated
    assert "runserver" in err.getvalue()


def test_serve_without_a_worker_keeps_the_in_process_task_backend(fake_processes, monkeypatch):
    monkeypatch.delenv("WUYE_TASK_BACKEND", raising=False)
    monkeypatch.setattr(serve.time, "sleep", lambda _s: (_ for _ in ()).throw(KeyboardInterrupt))

    call_command("serve", "--no-worker", "--no-collectstatic", stdout=StringIO())

    (web,) = fake_processes
    assert "WUYE_TASK_BACKEND" not in web.env
