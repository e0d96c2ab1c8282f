"""Delivering stored reports over HTTP: 200 marks sent, 409 and 5xx retry, other 4xx refused.

A small HTTP server in the test answers with the status each test sets, so the client's real
request and error handling run (the happy path against Wuye itself is in test_run.py).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wuye.posterm.card import Card
from wuye.posterm.reports import deliver
from wuye.posterm.server import ServerClient
from wuye.posterm.tests.conftest import GOOD


class Answers:
    status = 200
    body: dict = {"status": "posted", "payment_id": 1}
    seen: list[tuple[str, dict, str]] = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        Answers.seen.append(
            (self.path, json.loads(self.rfile.read(length)), self.headers.get("Authorization", ""))
        )
        data = json.dumps(Answers.body if Answers.status == 200 else {"error": "stan: 坏"})
        self.send_response(Answers.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Answers.status, Answers.seen = 200, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _pending(term) -> list[str]:
    return [r[0] for r in term.store.db.execute("SELECT state FROM report ORDER BY rowid")]


def test_a_200_marks_the_report_sent_and_it_is_not_sent_again(term, server):
    term.purchase(amount_fen=100, card=Card(GOOD), pin="123456")
    client = ServerClient(server, term.cfg.tid, "tok-123")
    assert deliver(term.store, client).sent == 1
    assert deliver(term.store, client).sent == 0
    path, body, auth = Answers.seen[0]
    assert path == "/api/terminal/v1/results" and auth == "Terminal 10000001 tok-123"
    assert body["masked_pan"] == "622202*********0017" and GOOD not in json.dumps(body)
    assert _pending(term) == ["sent"]


@pytest.mark.parametrize(
    ("status", "state"), [(409, "pending"), (500, "pending"), (400, "refused")]
)
def test_409_and_5xx_are_tried_again_other_4xx_are_kept_as_refused(term, server, status, state):
    term.purchase(amount_fen=100, card=Card(GOOD), pin="123456")
    Answers.status = status
    deliver(term.store, ServerClient(server, term.cfg.tid, "tok-123"))
    assert _pending(term) == [state]
    Answers.status = 200
    deliver(term.store, ServerClient(server, term.cfg.tid, "tok-123"))
    assert _pending(term) == ["refused" if status == 400 else "sent"]


def test_an_unreachable_server_keeps_every_report_in_order(term):
    term.purchase(amount_fen=100, card=Card(GOOD), pin="123456")
    term.purchase(amount_fen=200, card=Card(GOOD), pin="123456")
    d = deliver(term.store, ServerClient("http://127.0.0.1:9", term.cfg.tid, "t", timeout_s=1))
    assert d.unreachable and d.left == 2 and _pending(term) == ["pending", "pending"]
