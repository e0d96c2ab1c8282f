"""The simulator's HTTP face: the OpenAPI gateway, the resident's wallet and the bill files.

- ``POST /gateway.do``: the OpenAPI methods (``state.AlipaySim.gateway``).
- ``GET /qr/<token>``: the wallet page a scanned ``qr_code`` opens (pay by 余额, 银行卡 or 花呗);
  ``POST /qr/<token>`` pays it (form ``funding``).
- ``POST /wallet/paycode`` (``funding``, ``confirm``): a payment code for 被扫;
  ``POST /wallet/confirm`` (``code``): the buyer confirms a WAIT_BUYER_PAY trade;
  ``GET /wallet/`` a page with both.
- ``GET /bill/<YYYYMMDD>.zip``: the day's bill (the gateway's ``bill_download_url``).
- ``POST /faults`` (JSON): set fault injection (``state.Faults`` fields).

``SimServer`` runs it on a thread, so tests start it in-process on a free port.
"""

from __future__ import annotations

import html
import json
import threading
import time
from dataclasses import fields as dc_fields
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wuye.core.money import format_yuan
from wuye.sims.alipay.bills import FeeFn, bill_zip
from wuye.sims.alipay.notifier import Notifier
from wuye.sims.alipay.state import FUNDINGS, AlipaySim, Faults, form_decode

FUNDING_NAMES = {"balance": "余额", "bankcard": "银行卡", "huabei": "花呗", "creditcard": "信用卡"}

_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:26rem;margin:1rem auto;padding:0 1rem}}
button{{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1.1rem}}
.amount{{font-size:2rem;margin:.5rem 0}}.ok{{color:#1677ff}}.err{{color:#c00}}</style>
</head><body><h1>支付宝 (模拟)</h1>{body}</body></html>"""


def page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=body).encode("utf-8")


class SimServer:
    """The simulator on a thread: ``start()``, ``url``, ``stop()``."""

    def __init__(
        self,
        sim: AlipaySim,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        notifier: Notifier | None = None,
        fee: FeeFn | None = None,
    ) -> None:
        self.sim = sim
        self.notifier = notifier or Notifier()
        self.fee = fee
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, *, deliver: bool = True) -> SimServer:
        """Serve on a thread; with ``deliver`` also a thread that sends notifications."""
        t = threading.Thread(target=self.httpd.serve_forever, name="alipay-sim", daemon=True)
        t.start()
        self._threads.append(t)
        if deliver:
            d = threading.Thread(target=self._deliver_loop, name="alipay-notify", daemon=True)
            d.start()
            self._threads.append(d)
        return self

    def pump(self) -> int:
        """Move new notifications to the notifier and deliver what is due; return tries."""
        delay = self.sim.faults.delay_notifications_s
        for url, form in self.sim.outbox_take():
            self.notifier.add(url, form, delay_s=delay)
        return self.notifier.run_due()

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self.pump()
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)


def _handler(server: SimServer) -> type[BaseHTTPRequestHandler]:
    sim = server.sim

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests and the demo read the state, not the access log

        def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path.startswith("/qr/"):
                return self._qr_page(path[4:])
            if path in ("/wallet", "/wallet/"):
                return self._send(200, page("钱包", _wallet_html()))
            if path.startswith("/bill/") and path.endswith(".zip"):
                return self._bill(path[6:-4])
            if path == "/trades":
                data = {
                    k: v.__dict__ | {"refunds": [r.__dict__ for r in v.refunds]}
                    for k, v in sim.trades.items()
                }
                return self._send(
                    200, json.dumps(data, ensure_ascii=False).encode(), "application/json"
                )
            self._send(404, page("404", "<p>not found</p>"))

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            body = self._body()
            if path == "/gateway.do":
                answer = sim.gateway(form_decode(body, parts.query))
                if sim.faults.timeout_next > 0:
                    sim.faults.timeout_next -= 1
                    time.sleep(sim.faults.timeout_s)  # done, but the caller has given up
                return self._send(200, answer.encode("utf-8"), "application/json; charset=utf-8")
            form = dict(parse_qsl(body.decode("utf-8")))
            if path.startswith("/qr/"):
                return self._qr_pay(path[4:], form)
            if path == "/wallet/paycode":
                try:
                    code = sim.payment_code(
                        funding=form.get("funding", "balance"), confirm=form.get("confirm") == "1"
                    )
                except ValueError as exc:
                    return self._send(400, str(exc).encode(), "text/plain; charset=utf-8")
                return self._send(200, code.encode(), "text/plain")
            if path == "/wallet/confirm":
                try:
                    trade = sim.code_confirm(form.get("code", ""))
                except LookupError as exc:
                    return self._send(404, str(exc).encode(), "text/plain; charset=utf-8")
                return self._send(200, trade.trade_no.encode(), "text/plain")
            if path == "/faults":
                return self._faults(body)
            self._send(404, b"not found", "text/plain")

        def _faults(self, body: bytes) -> None:
            try:
                wanted = json.loads(body or b"{}")
                names = {f.name for f in dc_fields(Faults)}
                unknown = set(wanted) - names
                if unknown:
                    raise ValueError(f"unknown faults: {sorted(unknown)}")
                for k, v in wanted.items():
                    setattr(sim.faults, k, v)
            except ValueError as exc:
                return self._send(400, str(exc).encode(), "text/plain; charset=utf-8")
            self._send(200, json.dumps(sim.faults.__dict__).encode(), "application/json")

        def _qr_page(self, token: str) -> None:
            trade = sim.trade_for_qr(token)
            if trade is None:
                return self._send(404, page("二维码无效", '<p class="err">二维码无效</p>'))
            if trade.status == "TRADE_SUCCESS":
                return self._send(200, page("已支付", _paid_html(trade.trade_no)))
            buttons = "".join(
                f'<button name="funding" value="{k}">{FUNDING_NAMES[k]}付款</button>'
                for k in FUNDINGS
            )
            body = (
                f"<p>{html.escape(trade.subject)}</p>"
                f'<p class="amount">¥{format_yuan(trade.amount_fen)}</p>'
                f'<form method="post">{buttons}</form>'
            )
            self._send(200, page("确认付款", body))

        def _qr_pay(self, token: str, form: dict[str, str]) -> None:
            try:
                trade = sim.qr_pay(token, funding=form.get("funding", "balance"))
            except LookupError as exc:
                return self._send(404, page("失败", f'<p class="err">{html.escape(str(exc))}</p>'))
            except ValueError as exc:
                return self._send(409, page("失败", f'<p class="err">{html.escape(str(exc))}</p>'))
            self._send(200, page("支付成功", _paid_html(trade.trade_no)))

        def _bill(self, day_text: str) -> None:
            try:
                day = datetime.strptime(day_text, "%Y%m%d").date()
            except ValueError:
                return self._send(400, b"bad date", "text/plain")
            if server.fee is None:
                return self._send(503, "未配置费率".encode(), "text/plain; charset=utf-8")
            try:
                data = bill_zip(sim, day, server.fee, exported_at=sim.now())
            except LookupError as exc:  # no merchant or no contracted rate in Wuye
                return self._send(503, str(exc).encode(), "text/plain; charset=utf-8")
            self._send(200, data, "application/zip")

    return Handler


def _paid_html(trade_no: str) -> str:
    return f'<p class="ok" id="paid">支付成功</p><p>交易号 {html.escape(trade_no)}</p>'


def _wallet_html() -> str:
    options = "".join(f'<option value="{k}">{v}</option>' for k, v in FUNDING_NAMES.items())
    return (
        '<h2>付款码</h2><form method="post" action="/wallet/paycode">'
        f'<select name="funding">{options}</select>'
        '<label><input type="checkbox" name="confirm" value="1"> 需要确认</label>'
        "<button>生成付款码</button></form>"
        '<h2>确认付款</h2><form method="post" action="/wallet/confirm">'
        '<input name="code" placeholder="付款码"><button>确认</button></form>'
    )
