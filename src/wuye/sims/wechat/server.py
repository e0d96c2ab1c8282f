"""A WeChat Pay simulator speaking the real wire formats (``wuye sim wechat``).

Endpoints (the ones Wuye uses): v3 ``/v3/pay/transactions/native``, query by out_trade_no and
by transaction id, close, ``/v3/refund/domestic/refunds`` and its query, ``/v3/bill/tradebill``
with its download; v2 ``/pay/micropay``, ``/pay/orderquery``, ``/secapi/pay/reverse``. Every
v3 request's ``Authorization`` is checked against the merchant's public key; every answer and
notification is signed with the platform key, the notification resource AES-256-GCM encrypted.

A resident's wallet: ``/wallet`` (a small page), ``POST /wallet/pay`` (pay a ``code_url`` by
balance, debit or credit card) and ``POST /wallet/paycode`` (show a payment code).
``POST /_sim/faults`` sets fault injection (see ``Faults``). State is kept in memory and saved
to ``state.json`` in the key directory's ``sim`` folder, so ``export`` can write the bills.
"""

from __future__ import annotations

import heapq
import html
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import rsa

from wuye.channels.wechat import wire
from wuye.channels.wechat.constants import NOTIFY_BACKOFF_S
from wuye.channels.wechat.keys import WechatKeys

log = logging.getLogger("wuye.sims.wechat")
SHANGHAI = ZoneInfo("Asia/Shanghai")
FUNDING = {"balance": "OTHERS", "debit": "CMB_DEBIT", "card": "CMB_DEBIT", "credit": "CMB_CREDIT"}


@dataclass
class Faults:
    """Fault injection; each count is consumed by the next matching event."""

    lose_notifications: int = 0
    """Never deliver the next N notifications (every retry lost)."""
    duplicate_notifications: int = 0
    """Deliver each of the next N notifications ``duplicate_times`` times."""
    duplicate_times: int = 10
    delay_notifications_s: float = 0.0
    """Deliver notifications this much later."""
    reorder_notifications: int = 0
    """Hold the next N notifications, then deliver them newest first."""
    bad_signature_notifications: int = 0
    """Sign the next N notifications with a key that is not the platform's."""
    timeout_requests: int = 0
    """Do the next N API requests, then answer only after ``timeout_s`` (the caller times out)."""
    timeout_s: float = 15.0
    userpaying_queries: int = -1
    """A payment code of mode ``password`` turns SUCCESS after this many queries (-1: never)."""
    processing_refunds: int = 0
    """Leave the next N refunds PROCESSING until ``refund_complete`` (the bank is slow)."""


@dataclass
class Outgoing:
    url: str
    headers: dict[str, str]
    body: bytes
    attempt: int = 0
    retry_delays_s: list[float] = field(default_factory=list)
    first_delay_s: float = 0.0
    """The waits before each retry, as scheduled (WeChat's back-off × the scale)."""


@dataclass
class SimState:
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    paycodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: int = 0


def _wall_clock() -> datetime:
    return datetime.now(SHANGHAI)


class WechatSim:
    """The simulator's state and behaviour; ``serve``/``start`` put it on HTTP."""

    def __init__(
        self,
        *,
        keys: WechatKeys,
        mchid: str,
        appid: str,
        merchant_serial: str,
        platform_serial: str,
        state_path: Path | None = None,
        deliver: str = "http",
        backoff_scale: float = 1.0,
    ) -> None:
        if keys.platform_key is None:
            raise ValueError("simulator: the platform private key is missing (demo keys only)")
        self.keys = keys
        self.platform_key: rsa.RSAPrivateKey = keys.platform_key
        self.mchid = mchid
        self.appid = appid
        self.merchant_serial = merchant_serial
        self.platform_serial = platform_serial
        self.state_path = state_path
        self.deliver = deliver
        self.backoff_scale = backoff_scale
        self.faults = Faults()
        self.clock: Callable[[], datetime] = _wall_clock
        """What time it is at the provider (the demo replays history with a past clock)."""
        self.lock = threading.RLock()
        self.state = self._load()
        self.outbox: list[Outgoing] = []
        self.delivered: list[Outgoing] = []
        self._held: list[Outgoing] = []
        self._queue: list[tuple[float, int, Outgoing]] = []
        self._wake = threading.Condition(self.lock)
        self._seq = 0
        self._stop = False
        self.server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # --- persistence ---------------------------------------------------------------------------

    def _load(self) -> SimState:
        if self.state_path and self.state_path.exists():
            data = json.loads(self.state_path.read_text())
            return SimState(**data)
        return SimState()

    def _save(self) -> None:
        if self.state_path is None:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state), ensure_ascii=False))
        tmp.replace(self.state_path)

    def _now_text(self) -> str:
        return self.clock().astimezone(SHANGHAI).isoformat(timespec="seconds")

    # --- ids -----------------------------------------------------------------------------------

    def _transaction_id(self) -> str:
        day = self.clock().strftime("%Y%m%d")
        return "4200" + "00" + day + f"{secrets.randbelow(10**14):014d}"

    def _openid(self) -> str:
        return "oUpF8u" + secrets.token_urlsafe(16)[:22]

    # --- payments ------------------------------------------------------------------------------

    def native(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Create a Native order; answer its code_url (the same order again: the same code)."""
        need = ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount")
        missing = [k for k in need if not body.get(k)]
        if missing:
            return 400, {"code": "PARAM_ERROR", "message": f"缺少参数 {missing[0]}"}
        if body["mchid"] != self.mchid or body["appid"] != self.appid:
            return 400, {"code": "APPID_MCHID_NOT_MATCH", "message": "appid和mch_id不匹配"}
        total = (body.get("amount") or {}).get("total")
        if not isinstance(total, int) or total <= 0:
            return 400, {"code": "PARAM_ERROR", "message": "amount.total 应为正整数"}
        otn = str(body["out_trade_no"])
        with self.lock:
            existing = self.state.orders.get(otn)
            if existing is not None:
                if existing["amount"] != total or existing["trade_type"] != "NATIVE":
                    return 400, {"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"}
                return 200, {"code_url": existing["code_url"]}
            code_url = "weixin://wxpay/bizpayurl?pr=" + secrets.token_urlsafe(6)[:7]
            self.state.orders[otn] = {
                "out_trade_no": otn,
                "trade_type": "NATIVE",
                "trade_state": "NOTPAY",
                "amount": total,
                "description": body["description"],
                "attach": body.get("attach", ""),
                "notify_url": body["notify_url"],
                "time_expire": body.get("time_expire", ""),
                "code_url": code_url,
                "created": self._now_text(),
                "transaction_id": "",
                "bank_type": "",
                "openid": "",
                "success_time": "",
                "queries": 0,
                "refunded": 0,
            }
            self.state.codes[code_url] = otn
            self._save()
        return 200, {"code_url": code_url}

    def wallet_pay(self, code_url: str, funding: str = "balance") -> tuple[int, dict[str, Any]]:
        """A resident scans ``code_url`` and pays it from ``funding``."""
        bank_type = FUNDING.get(funding, funding if funding.endswith(("_DEBIT", "_CREDIT")) else "")
        if not bank_type:
            return 400, {"code": "PARAM_ERROR", "message": f"未知付款方式 {funding}"}
        with self.lock:
            otn = self.state.codes.get(code_url.strip())
            if otn is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "二维码无效"}
            order = self.state.orders[otn]
            if order["trade_state"] != "NOTPAY":
                return 400, {
                    "code": "ORDERPAID" if order["trade_state"] == "SUCCESS" else "ORDER_CLOSED",
                    "message": order["trade_state"],
                }
            if (
                order.get("time_expire")
                and datetime.fromisoformat(order["time_expire"]) < self.clock()
            ):
                order["trade_state"] = "CLOSED"
                self._save()
                return 400, {"code": "ORDER_CLOSED", "message": "二维码已过期"}
            self._succeed(order, bank_type)
        return 200, self.transaction(order)

    def _succeed(self, order: dict[str, Any], bank_type: str) -> None:
        order.update(
            trade_state="SUCCESS",
            bank_type=bank_type,
            transaction_id=self._transaction_id(),
            openid=order.get("openid") or self._openid(),
            success_time=self._now_text(),
        )
        self._save()
        if order.get("notify_url"):
            self._notify(
                order["notify_url"],
                "TRANSACTION.SUCCESS",
                "transaction",
                self.transaction(order),
                "支付成功",
            )

    def transaction(self, order: dict[str, Any]) -> dict[str, Any]:
        """Return an order as v3 answers it (query, notification resource)."""
        out: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "out_trade_no": order["out_trade_no"],
            "trade_type": order["trade_type"],
            "trade_state": order["trade_state"],
            "trade_state_desc": {
                "SUCCESS": "支付成功",
                "NOTPAY": "未支付",
                "CLOSED": "已关闭",
                "USERPAYING": "用户支付中",
                "REVOKED": "已撤销",
                "REFUND": "转入退款",
                "PAYERROR": "支付失败",
            }.get(order["trade_state"], ""),
            "attach": order.get("attach", ""),
            "amount": {"total": order["amount"], "currency": "CNY"},
        }
        if order.get("transaction_id"):
            out.update(
                transaction_id=order["transaction_id"],
                bank_type=order["bank_type"],
                success_time=order["success_time"],
                payer={"openid": order["openid"]},
            )
            out["amount"].update(payer_total=order["amount"], payer_currency="CNY")
        return out

    def query(self, out_trade_no: str = "", transaction_id: str = "") -> tuple[int, dict]:
        with self.lock:
            order = self.state.orders.get(out_trade_no)
            if transaction_id:
                order = next(
                    (
                        o
                        for o in self.state.orders.values()
                        if o.get("transaction_id") == transaction_id
                    ),
                    None,
                )
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            if order["trade_state"] == "USERPAYING":
                order["queries"] = order.get("queries", 0) + 1
                after = self.faults.userpaying_queries
                paycode = self.state.paycodes.get(order.get("auth_code", ""), {})
                if paycode.get("confirmed") or (after >= 0 and order["queries"] >= after):
                    self._succeed(order, paycode.get("bank_type", "OTHERS"))
            self._save()
            return 200, self.transaction(order)

    def close(self, out_trade_no: str) -> tuple[int, dict]:
        with self.lock:
            order = self.state.orders.get(out_trade_no)
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            if order["trade_state"] == "SUCCESS":
                return 400, {"code": "ORDERPAID", "message": "订单已支付"}
            order["trade_state"] = "CLOSED"
            self._save()
        return 204, {}

    # --- payment codes (v2) --------------------------------------------------------------------

    def paycode(self, funding: str = "balance", mode: str = "ok") -> str:
        """Show a resident's payment code: ``mode`` ok | password (USERPAYING) | poor."""
        code = "13" + f"{secrets.randbelow(10**16):016d}"
        with self.lock:
            self.state.paycodes[code] = {
                "bank_type": FUNDING.get(funding, "OTHERS"),
                "mode": mode,
                "confirmed": False,
            }
            self._save()
        return code

    def confirm(self, auth_code: str) -> None:
        """The resident enters the password for a payment code left USERPAYING."""
        with self.lock:
            if auth_code in self.state.paycodes:
                self.state.paycodes[auth_code]["confirmed"] = True
                self._save()

    def micropay(self, p: dict[str, str]) -> dict[str, str]:
        otn = p.get("out_trade_no", "")
        code = p.get("auth_code", "")
        try:
            total = int(p.get("total_fee", ""))
        except ValueError:
            return self._v2_fail("PARAM_ERROR", "total_fee 应为整数")
        with self.lock:
            if otn in self.state.orders:
                return self._v2_fail("OUT_TRADE_NO_USED", "商户订单号重复")
            known = self.state.paycodes.get(code)
            if known is None and not (
                code[:2] in {"10", "11", "12", "13", "14", "15"}
                and len(code) == 18
                and code.isdigit()
            ):
                return self._v2_fail("AUTH_CODE_INVALID", "付款码无效")
            known = known or {"bank_type": "OTHERS", "mode": "ok", "confirmed": False}
            order: dict[str, Any] = {
                "out_trade_no": otn,
                "trade_type": "MICROPAY",
                "trade_state": "USERPAYING",
                "amount": total,
                "description": p.get("body", ""),
                "attach": p.get("attach", ""),
                "notify_url": "",
                "time_expire": "",
                "code_url": "",
                "created": self._now_text(),
                "transaction_id": "",
                "bank_type": "",
                "openid": "",
                "success_time": "",
                "queries": 0,
                "refunded": 0,
                "auth_code": code,
            }
            self.state.orders[otn] = order
            if known["mode"] == "poor":
                order["trade_state"] = "PAYERROR"
                self._save()
                return self._v2_fail("NOTENOUGH", "余额不足")
            if known["mode"] == "password" and not known.get("confirmed"):
                self._save()
                return self._v2_fail("USERPAYING", "需要用户输入支付密码")
            self._succeed(order, known["bank_type"])
            return self._v2_ok(
                {
                    "openid": str(order["openid"]),
                    "trade_type": "MICROPAY",
                    "bank_type": str(order["bank_type"]),
                    "fee_type": "CNY",
                    "total_fee": str(total),
                    "transaction_id": str(order["transaction_id"]),
                    "out_trade_no": otn,
                    "attach": str(order["attach"]),
                    "time_end": datetime.fromisoformat(order["success_time"]).strftime(
                        "%Y%m%d%H%M%S"
                    ),
                }
            )

    def orderquery(self, p: dict[str, str]) -> dict[str, str]:
        status, data = self.query(
            out_trade_no=p.get("out_trade_no", ""), transaction_id=p.get("transaction_id", "")
        )
        if status != 200:
            return self._v2_fail("ORDERNOTEXIST", "此交易订单号不存在")
        return self._v2_ok(
            {
                "out_trade_no": data["out_trade_no"],
                "trade_state": data["trade_state"],
                "total_fee": str(data["amount"]["total"]),
                "transaction_id": data.get("transaction_id", ""),
            }
        )

    def reverse(self, p: dict[str, str]) -> dict[str, str]:
        with self.lock:
            order = self.state.orders.get(p.get("out_trade_no", ""))
            if order is None:
                return self._v2_fail("ORDERNOTEXIST", "订单不存在")
            if order["trade_state"] == "SUCCESS":  # WeChat refunds a reversed paid code
                order["trade_state"] = "REVOKED"
                order["reversed_paid"] = True
            elif order["trade_state"] in ("USERPAYING", "NOTPAY", "PAYERROR"):
                order["trade_state"] = "REVOKED"
            self._save()
        return self._v2_ok({"recall": "N"})

    def _v2_ok(self, fields: dict[str, str]) -> dict[str, str]:
        out = {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "appid": self.appid,
            "mch_id": self.mchid,
            "nonce_str": wire.nonce(),
            "result_code": "SUCCESS",
            **fields,
        }
        out["sign"] = wire.v2_sign(out, self.keys.v2_key)
        return out

    def _v2_fail(self, err: str, des: str) -> dict[str, str]:
        out = {
            "return_code": "SUCCESS",
            "return_msg": "OK",
            "appid": self.appid,
            "mch_id": self.mchid,
            "nonce_str": wire.nonce(),
            "result_code": "FAIL",
            "err_code": err,
            "err_code_des": des,
        }
        out["sign"] = wire.v2_sign(out, self.keys.v2_key)
        return out

    # --- refunds -------------------------------------------------------------------------------

    def refund(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = str(body.get("out_refund_no", ""))
        amount = body.get("amount") or {}
        refund = amount.get("refund")
        if not number or not isinstance(refund, int) or refund <= 0:
            return 400, {"code": "PARAM_ERROR", "message": "out_refund_no/amount.refund"}
        with self.lock:
            if number in self.state.refunds:
                return 200, self._refund_view(self.state.refunds[number])
            order = next(
                (
                    o
                    for o in self.state.orders.values()
                    if body.get("transaction_id")
                    and o.get("transaction_id") == body.get("transaction_id")
                ),
                None,
            ) or self.state.orders.get(str(body.get("out_trade_no", "")))
            if order is None or order["trade_state"] not in ("SUCCESS", "REFUND"):
                return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在或未支付"}
            if amount.get("total") != order["amount"]:
                return 400, {"code": "PARAM_ERROR", "message": "订单金额与原订单不符"}
            if order.get("refunded", 0) + refund > order["amount"]:
                return 400, {"code": "NOT_ENOUGH", "message": "退款金额超过可退金额"}
            order["refunded"] = order.get("refunded", 0) + refund
            order["trade_state"] = "REFUND"
            row = {
                "refund_id": "5030" + f"{secrets.randbelow(10**25):025d}",
                "out_refund_no": number,
                "transaction_id": order["transaction_id"],
                "out_trade_no": order["out_trade_no"],
                "refund": refund,
                "total": order["amount"],
                "status": "SUCCESS",
                "created": self._now_text(),
                "success_time": self._now_text(),
                "notify_url": body.get("notify_url", ""),
            }
            self.state.refunds[number] = row
            if self.faults.processing_refunds > 0:
                self.faults.processing_refunds -= 1
                row.update(status="PROCESSING", success_time="")
                self._save()
                return 200, self._refund_view(row)
            self._refund_done(row)
        return 200, self._refund_view(row)

    def _refund_done(self, row: dict[str, Any]) -> None:
        row.update(status="SUCCESS", success_time=self._now_text())
        self._save()
        if row["notify_url"]:
            self._notify(
                row["notify_url"],
                "REFUND.SUCCESS",
                "refund",
                self._refund_resource(row),
                "退款成功",
            )

    def refund_complete(self, number: str) -> None:
        """The bank finished a PROCESSING refund: mark it SUCCESS and notify."""
        with self.lock:
            row = self.state.refunds[number]
            if row["status"] == "PROCESSING":
                self._refund_done(row)

    def _refund_view(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "refund_id": r["refund_id"],
            "out_refund_no": r["out_refund_no"],
            "transaction_id": r["transaction_id"],
            "out_trade_no": r["out_trade_no"],
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "success_time": r["success_time"],
            "create_time": r["created"],
            "status": r["status"],
            "amount": {
                "total": r["total"],
                "refund": r["refund"],
                "payer_total": r["total"],
                "payer_refund": r["refund"],
                "currency": "CNY",
            },
        }

    def _refund_resource(self, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "mchid": self.mchid,
            "out_trade_no": r["out_trade_no"],
            "transaction_id": r["transaction_id"],
            "out_refund_no": r["out_refund_no"],
            "refund_id": r["refund_id"],
            "refund_status": r["status"],
            "success_time": r["success_time"],
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": r["total"],
                "refund": r["refund"],
                "payer_total": r["total"],
                "payer_refund": r["refund"],
            },
        }

    def refund_query(self, number: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            r = self.state.refunds.get(number)
        if r is None:
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
        return 200, self._refund_view(r)

    # --- notifications -------------------------------------------------------------------------

    def notification(
        self,
        event_type: str,
        original_type: str,
        plaintext: dict[str, Any],
        summary: str,
        *,
        bad_signature: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """Build one signed notification (headers, body) as WeChat sends it."""
        with self.lock:
            self.state.events += 1
            n = self.state.events
        envelope = {
            "id": f"EV-{self.clock():%Y%m%d%H%M%S}{n:06d}{secrets.token_hex(3)}",
            "create_time": self._now_text(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": wire.encrypt_resource(
                self.keys.apiv3_key,
                plaintext,
                associated_data=original_type,
                original_type=original_type,
            ),
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        key = self.platform_key
        if bad_signature:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        headers = wire.signed_headers(key, self.platform_serial, body)
        headers["Content-Type"] = "application/json"
        return headers, body.encode()

    def _notify(
        self, url: str, event_type: str, original_type: str, plaintext: dict[str, Any], summary: str
    ) -> None:
        f = self.faults
        bad = f.bad_signature_notifications > 0
        if bad:
            f.bad_signature_notifications -= 1
        headers, body = self.notification(
            event_type, original_type, plaintext, summary, bad_signature=bad
        )
        if f.lose_notifications > 0:
            f.lose_notifications -= 1
            log.info("sim: notification to %s lost (fault)", url)
            return
        copies = 1
        if f.duplicate_notifications > 0:
            f.duplicate_notifications -= 1
            copies = max(1, f.duplicate_times)
        items = [Outgoing(url, dict(headers), body) for _ in range(copies)]
        if f.reorder_notifications > 0:
            f.reorder_notifications -= 1
            self._held.extend(items)
            if f.reorder_notifications > 0:
                return
            items, self._held = list(reversed(self._held)), []
        for item in items:
            self._enqueue(item, f.delay_notifications_s)

    def _enqueue(self, item: Outgoing, delay_s: float) -> None:
        if not item.retry_delays_s:
            item.first_delay_s = delay_s
        if self.deliver == "manual":
            self.outbox.append(item)
            return
        with self._wake:
            self._seq += 1
            heapq.heappush(self._queue, (time.monotonic() + delay_s, self._seq, item))
            self._wake.notify()

    def outbox_take(self) -> list[Outgoing]:
        """Return and clear the notifications waiting (``deliver='manual'``, for tests)."""
        with self.lock:
            items, self.outbox = self.outbox, []
        return items

    def _sender(self) -> None:
        while True:
            with self._wake:
                while not self._stop and (not self._queue or self._queue[0][0] > time.monotonic()):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout=wait)
                if self._stop:
                    return
                _due, _seq, item = heapq.heappop(self._queue)
            ok = self._post(item)
            with self.lock:
                self.delivered.append(item)
            if not ok and item.attempt < len(NOTIFY_BACKOFF_S):
                delay = NOTIFY_BACKOFF_S[item.attempt] * self.backoff_scale
                item.attempt += 1
                item.retry_delays_s.append(delay)
                self._enqueue(item, delay)

    def _post(self, item: Outgoing) -> bool:
        req = urllib.request.Request(  # noqa: S310 - the merchant's notify URL
            item.url,
            data=item.body,
            headers=item.headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                return resp.status in (200, 204)
        except urllib.error.HTTPError as exc:
            log.info("sim: notification to %s answered %s", item.url, exc.code)
        except OSError as exc:
            log.info("sim: notification to %s failed: %s", item.url, exc)
        return False

    # --- HTTP ----------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve in background threads; return the port."""
        sim = self

        class Handler(_Handler):
            simulator = sim

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        t = threading.Thread(target=self.server.serve_forever, daemon=True, name="wechat-sim")
        t.start()
        self._threads.append(t)
        if self.deliver == "http":
            s = threading.Thread(target=self._sender, daemon=True, name="wechat-sim-notify")
            s.start()
            self._threads.append(s)
        return int(self.server.server_address[1])

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def check_auth(self, method: str, target: str, body: str, header: str) -> str:
        """Return '' when the request's v3 signature is the merchant's, else why not."""
        try:
            fields = wire.parse_authorization(header)
        except wire.WireError as exc:
            return str(exc)
        if fields["mchid"] != self.mchid:
            return "mchid: unknown merchant"
        if fields["serial_no"] != self.merchant_serial:
            return "serial_no: not the merchant certificate"
        if abs(int(time.time()) - int(fields["timestamp"] or 0)) > wire.MAX_SKEW_S:
            return "timestamp: more than 5 minutes off"
        message = wire.request_message(
            method, target, fields["timestamp"], fields["nonce_str"], body
        )
        if not wire.rsa_verify(self.keys.merchant_pub, message, fields["signature"]):
            return "signature: does not verify"
        return ""

    def take_timeout(self) -> float:
        with self.lock:
            if self.faults.timeout_requests > 0:
                self.faults.timeout_requests -= 1
                return self.faults.timeout_s
        return 0.0


WALLET_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>微信支付模拟钱包 WeChat Pay simulator wallet</title>
<style>body{{font-family:sans-serif;max-width:420px;margin:2em auto;padding:0 1em}}
input,select,button{{font-size:1.1em;width:100%;margin:.3em 0;padding:.4em}}
.ok{{color:#07c160}}.err{{color:#c00}}</style></head><body>
<h1>微信支付 · 模拟钱包</h1><p>WeChat Pay simulator wallet</p>{result}
<form method="post" action="/wallet/pay">
<label>二维码内容 (code_url)
<input name="code_url" id="code_url" value="{code_url}" required></label>
<label>付款方式 (funding)<select name="funding" id="funding">
<option value="balance">零钱 balance</option><option value="debit">储蓄卡 debit card</option>
<option value="credit">信用卡 credit card</option></select></label>
<button type="submit" id="pay">确认支付 Pay</button></form>
<form method="post" action="/wallet/paycode"><button type="submit">付款码 Show payment code</button>
</form></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    simulator: WechatSim
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("sim: " + format, *args)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(
        self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _v3(self, status: int, data: dict[str, Any]) -> None:
        sim = self.simulator
        pause = sim.take_timeout()
        if pause:
            time.sleep(pause)
        if status == 204:
            self._send(204, b"", "application/json")
            return
        text = json.dumps(data, ensure_ascii=False)
        headers = (
            wire.signed_headers(sim.platform_key, sim.platform_serial, text) if status < 300 else {}
        )
        self._send(status, text.encode(), "application/json", headers)

    def _v2(self, fields: dict[str, str]) -> None:
        pause = self.simulator.take_timeout()
        if pause:
            time.sleep(pause)
        self._send(200, wire.v2_xml(fields), "text/xml; charset=utf-8")

    def do_GET(self) -> None:
        sim = self.simulator
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path in ("/", "/wallet"):
            page = WALLET_PAGE.format(
                result="", code_url=html.escape(query.get("code_url", [""])[0])
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")
            return
        if path.startswith("/v3/"):
            why = sim.check_auth("GET", self.path, "", self.headers.get("Authorization", ""))
            if why:
                self._v3(401, {"code": "SIGN_ERROR", "message": why})
                return
        if path == "/v3/billdownload/file":  # the file itself is not signed: its hash is
            day = query.get("bill_date", [""])[0]
            self._send(200, self._bill(day).encode(), "text/csv; charset=utf-8")
            return
        if path.startswith("/v3/pay/transactions/out-trade-no/"):
            self._v3(*sim.query(out_trade_no=path.rsplit("/", 1)[1]))
        elif path.startswith("/v3/pay/transactions/id/"):
            self._v3(*sim.query(transaction_id=path.rsplit("/", 1)[1]))
        elif path.startswith("/v3/refund/domestic/refunds/"):
            self._v3(*sim.refund_query(path.rsplit("/", 1)[1]))
        elif path == "/v3/bill/tradebill":
            import hashlib

            day = query.get("bill_date", [""])[0]
            text = self._bill(day)
            host = self.headers.get("Host", "127.0.0.1")
            self._v3(
                200,
                {
                    "hash_type": "SHA1",
                    "hash_value": hashlib.sha1(text.encode()).hexdigest(),  # noqa: S324
                    "download_url": f"http://{host}/v3/billdownload/file?bill_date={day}",
                },
            )
        else:
            self._send(404, b'{"code":"NOT_FOUND"}', "application/json")

    def _bill(self, day: str) -> str:
        from datetime import date

        from wuye.sims.wechat.bills import trade_bill

        sim = self.simulator
        try:
            d = date.fromisoformat(day)
        except ValueError:
            return ""
        with sim.lock:
            state = json.loads(json.dumps(asdict(sim.state)))
        return trade_bill(state, mchid=sim.mchid, appid=sim.appid, day=d).text

    def do_POST(self) -> None:
        sim = self.simulator
        path = urlsplit(self.path).path
        raw = self._body()
        if path in ("/pay/micropay", "/pay/orderquery", "/secapi/pay/reverse"):
            try:
                p = wire.v2_parse(raw)
                wire.v2_verify(p, sim.keys.v2_key)
            except wire.WireError as exc:
                self._v2({"return_code": "FAIL", "return_msg": str(exc)})
                return
            handler = {
                "/pay/micropay": sim.micropay,
                "/pay/orderquery": sim.orderquery,
                "/secapi/pay/reverse": sim.reverse,
            }[path]
            self._v2(handler(p))
            return
        if path.startswith("/wallet") or path.startswith("/_sim"):
            self._wallet(path, raw)
            return
        text = raw.decode("utf-8", "replace")
        why = sim.check_auth("POST", self.path, text, self.headers.get("Authorization", ""))
        if why:
            self._v3(401, {"code": "SIGN_ERROR", "message": why})
            return
        try:
            body = json.loads(text) if text else {}
        except ValueError:
            self._v3(400, {"code": "PARAM_ERROR", "message": "body: JSON expected"})
            return
        if path == "/v3/pay/transactions/native":
            self._v3(*sim.native(body))
        elif path.startswith("/v3/pay/transactions/out-trade-no/") and path.endswith("/close"):
            self._v3(*sim.close(path.split("/")[-2]))
        elif path == "/v3/refund/domestic/refunds":
            self._v3(*sim.refund(body))
        else:
            self._send(404, b'{"code":"NOT_FOUND"}', "application/json")

    def _wallet(self, path: str, raw: bytes) -> None:
        sim = self.simulator
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            form = json.loads(raw or b"{}")
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        wants_json = "json" in ctype or "json" in self.headers.get("Accept", "")
        if path == "/wallet/pay":
            status, data = sim.wallet_pay(
                str(form.get("code_url", "")), str(form.get("funding", "balance"))
            )
            if wants_json:
                self._send(
                    status, json.dumps(data, ensure_ascii=False).encode(), "application/json"
                )
                return
            msg = (
                (
                    f'<p class="ok" id="result">支付成功 Paid ¥{data["amount"]["total"] / 100:.2f}'
                    f" ({html.escape(data.get('bank_type', ''))})</p>"
                )
                if status == 200
                else f'<p class="err" id="result">{html.escape(str(data.get("message")))}</p>'
            )
            self._send(
                status,
                WALLET_PAGE.format(result=msg, code_url="").encode(),
                "text/html; charset=utf-8",
            )
        elif path == "/wallet/paycode":
            code = sim.paycode(str(form.get("funding", "balance")), str(form.get("mode", "ok")))
            if wants_json:
                self._send(200, json.dumps({"auth_code": code}).encode(), "application/json")
                return
            msg = f'<p class="ok">付款码 payment code: <b id="paycode">{code}</b></p>'
            self._send(
                200,
                WALLET_PAGE.format(result=msg, code_url="").encode(),
                "text/html; charset=utf-8",
            )
        elif path == "/wallet/confirm":
            sim.confirm(str(form.get("auth_code", "")))
            self._send(200, b'{"ok":true}', "application/json")
        elif path == "/_sim/faults":
            with sim.lock:
                for k, v in form.items():
                    if hasattr(sim.faults, k):
                        setattr(sim.faults, k, type(getattr(sim.faults, k))(v))
                data = asdict(sim.faults)
            self._send(200, json.dumps(data).encode(), "application/json")
        else:
            self._send(404, b'{"code":"NOT_FOUND"}', "application/json")
