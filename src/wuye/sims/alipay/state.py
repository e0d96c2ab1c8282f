"""The simulated Alipay: trades, payment codes, refunds and the OpenAPI methods over them.

``AlipaySim.gateway(form)`` takes the form of a gateway POST and returns the JSON text Alipay
would answer, signed with the simulated Alipay's key; the HTTP server (``server.py``) and the
tests both go through it. State lives in memory and, given a ``state_dir``, in a JSON-lines
journal there so the CLI (``export``) and a restarted server see the same trades.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from wuye.channels.alipay import constants as C
from wuye.channels.alipay.client import CHINA
from wuye.channels.alipay.signing import (
    response_build,
    response_node_name,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from wuye.core.money import MoneyFormatError, format_yuan, parse_yuan

FUNDINGS = {
    "balance": "ALIPAYACCOUNT",
    "bankcard": "BANKCARD",
    "huabei": "PCREDIT",
    "creditcard": "CREDIT_CARD",
}
"""Wallet choice → ``fund_channel``."""

TIME_FMT = "%Y-%m-%d %H:%M:%S"


@dataclass
class Refund:
    out_request_no: str
    amount_fen: int
    at: str


@dataclass
class Trade:
    out_trade_no: str
    trade_no: str
    amount_fen: int
    subject: str
    notify_url: str
    created_at: str
    status: str = "PRECREATED"  # not visible to query until scanned (as at Alipay)
    qr_token: str = ""
    time_expire: str = ""
    paid_at: str = ""
    fund_channel: str = ""
    buyer_logon_id: str = ""
    closed_at: str = ""
    refunds: list[Refund] = field(default_factory=list)

    @property
    def refunded_fen(self) -> int:
        return sum(r.amount_fen for r in self.refunds)


@dataclass
class Faults:
    """What goes wrong next (tests and ``wuye sim alipay fault``)."""

    lose_notifications: int = 0
    """Drop the next N notifications entirely (no retries)."""
    duplicate_notifications: int = 1
    """Deliver each notification this many times."""
    delay_notifications_s: float = 0.0
    """Hold each notification this long before its first delivery."""
    reorder_notifications: bool = False
    """Deliver the notifications due together newest first."""
    bad_notification_signature: int = 0
    """Sign the next N notifications with a key that is not Alipay's."""
    bad_response_signature: int = 0
    """Sign the next N gateway answers with a key that is not Alipay's."""
    timeout_next: int = 0
    """Do the next N gateway calls but answer only after ``timeout_s`` (the caller gives up)."""
    timeout_s: float = 2.0


class AlipaySim:
    """One simulated Alipay merchant account (one app)."""

    def __init__(
        self,
        *,
        app_id: str,
        pid: str,
        app_public_key: RSAPublicKey,
        alipay_private_key: RSAPrivateKey,
        base_url: str = "http://127.0.0.1:8602",
        state_dir: Path | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app_id = app_id
        self.pid = pid
        self.app_public_key = app_public_key
        self.alipay_private_key = alipay_private_key
        self.base_url = base_url.rstrip("/")
        self.state_dir = state_dir
        self.clock = clock or (lambda: datetime.now(CHINA))
        self.faults = Faults()
        self.trades: dict[str, Trade] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self._seq = 0
        self._wrong_key: RSAPrivateKey | None = None
        self.outbox: list[tuple[str, dict[str, str]]] = []
        """Notifications made and not yet handed to the notifier: (url, form)."""
        if state_dir is not None:
            self._load()

    # persistence --------------------------------------------------------------------------
    def _journal(self) -> Path | None:
        if self.state_dir is None:
            return None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir / "sim-trades.jsonl"

    def _load(self) -> None:
        path = self._journal()
        if path is None or not path.exists():
            return
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            data = json.loads(line)
            data["refunds"] = [Refund(**r) for r in data.get("refunds", [])]
            trade = Trade(**data)
            self.trades[trade.out_trade_no] = trade
        self._seq = len(self.trades)

    def _save(self, trade: Trade) -> None:
        path = self._journal()
        if path is not None:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(trade), ensure_ascii=False) + "\n")

    # helpers ------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(CHINA)

    def _trade_no(self) -> str:
        self._seq += 1
        return (
            self.now().strftime("%Y%m%d")
            + "2200"
            + f"{self._seq:06d}"
            + (f"{secrets.randbelow(10**10):010d}")
        )

    def _key(self) -> RSAPrivateKey:
        if self.faults.bad_response_signature > 0:
            self.faults.bad_response_signature -= 1
            return self._wrong()
        return self.alipay_private_key

    def _wrong(self) -> RSAPrivateKey:
        if self._wrong_key is None:
            self._wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._wrong_key

    def _find(self, biz: dict[str, Any]) -> Trade | None:
        if biz.get("out_trade_no"):
            return self.trades.get(str(biz["out_trade_no"]))
        for t in self.trades.values():
            if t.trade_no == biz.get("trade_no"):
                return t
        return None

    @staticmethod
    def _fund_list(trade: Trade, key: str = "fund_channel") -> list[dict[str, str]]:
        return [{key: trade.fund_channel, "amount": format_yuan(trade.amount_fen)}]

    def _paid_fields(self, trade: Trade) -> dict[str, Any]:
        return {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "total_amount": format_yuan(trade.amount_fen),
            "receipt_amount": format_yuan(trade.amount_fen),
            "buyer_pay_amount": format_yuan(trade.amount_fen),
            "gmt_payment": trade.paid_at,
            "fund_bill_list": self._fund_list(trade),
        }

    # the gateway --------------------------------------------------------------------------
    def gateway(self, form: dict[str, str]) -> str:
        """Answer one gateway request (its form fields) the way Alipay does."""
        method = form.get("method", "")
        if method not in C.METHODS:
            return self._unsigned(method, "40004", "Business Failed", "isv.invalid-method")
        if form.get("app_id") != self.app_id:
            return self._unsigned(method, "40002", "Invalid Arguments", "isv.invalid-app-id")
        if form.get("sign_type") != "RSA2" or not rsa2_verify(
            sign_content(form), form.get("sign", ""), self.app_public_key
        ):
            return self._unsigned(method, "40002", "Invalid Arguments", "isv.invalid-signature")
        try:
            biz = json.loads(form.get("biz_content") or "{}")
        except ValueError:
            return self._unsigned(method, "40002", "Invalid Arguments", "isv.invalid-biz-content")
        handler = getattr(self, "_" + method.rsplit(".", 2)[-2] + "_" + method.rsplit(".", 1)[-1])
        with self.lock:
            try:
                payload = handler(biz, form)
            except MoneyFormatError:
                payload = self._fail("isv.invalid-total-amount", "金额格式错误", code="40002")
            return response_build(method, payload, self._key())

    def _unsigned(self, method: str, code: str, msg: str, sub_code: str) -> str:
        body = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_code}
        node = response_node_name(method) if method else "error_response"
        return json.dumps({node: body}, ensure_ascii=False)

    @staticmethod
    def _fail(sub_code: str, sub_msg: str, code: str = "40004") -> dict[str, Any]:
        return {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg}

    @staticmethod
    def _ok(**fields: Any) -> dict[str, Any]:
        return {"code": "10000", "msg": "Success", **fields}

    def _new_trade(self, biz: dict[str, Any], form: dict[str, str]) -> Trade | dict[str, Any]:
        out_trade_no = str(biz.get("out_trade_no", ""))
        if not out_trade_no or len(out_trade_no) > 64:
            return self._fail("isv.invalid-out-trade-no", "out_trade_no 无效", code="40002")
        amount = parse_yuan(str(biz.get("total_amount", "")))
        if amount <= 0:
            return self._fail("isv.invalid-total-amount", "金额须大于0", code="40002")
        return Trade(
            out_trade_no=out_trade_no,
            trade_no=self._trade_no(),
            amount_fen=amount,
            subject=str(biz.get("subject", "")),
            notify_url=form.get("notify_url", ""),
            created_at=self.now().strftime(TIME_FMT),
            time_expire=str(biz.get("time_expire", "")),
        )

    def _trade_precreate(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        existing = self.trades.get(str(biz.get("out_trade_no", "")))
        if existing is not None:
            if existing.status in (C.TRADE_SUCCESS, C.TRADE_FINISHED):
                return self._fail("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.status == C.TRADE_CLOSED:
                return self._fail("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.amount_fen != parse_yuan(str(biz.get("total_amount", ""))):
                return self._fail("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return self._ok(out_trade_no=existing.out_trade_no, qr_code=self.qr_url(existing))
        trade = self._new_trade(biz, form)
        if isinstance(trade, dict):
            return trade
        trade.qr_token = "bax" + secrets.token_hex(10)
        self.trades[trade.out_trade_no] = trade
        self._save(trade)
        return self._ok(out_trade_no=trade.out_trade_no, qr_code=self.qr_url(trade))

    def qr_url(self, trade: Trade) -> str:
        """The ``qr_code`` of a precreated trade: opens this simulator's wallet."""
        return f"{self.base_url}/qr/{trade.qr_token}"

    def _trade_pay(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        existing = self.trades.get(str(biz.get("out_trade_no", "")))
        if existing is not None:  # a retry of the same payment: answer as it stands
            if existing.status in (C.TRADE_SUCCESS, C.TRADE_FINISHED):
                return self._ok(**self._paid_fields(existing))
            if existing.status == C.WAIT_BUYER_PAY:
                return {**self._paid_fields(existing), "code": "10003", "msg": "等待用户付款"}
            return self._fail("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if biz.get("scene") != "bar_code":
            return self._fail("ACQ.INVALID_PARAMETER", "scene 须为 bar_code", code="40002")
        code = self.codes.get(str(biz.get("auth_code", "")))
        if code is None or code.get("used"):
            return self._fail("ACQ.PAYMENT_AUTH_CODE_INVALID", "付款码无效, 请重新扫码")
        trade = self._new_trade(biz, form)
        if isinstance(trade, dict):
            return trade
        code["used"] = True
        code["out_trade_no"] = trade.out_trade_no
        trade.fund_channel = code["fund_channel"]
        trade.buyer_logon_id = code["buyer"]
        self.trades[trade.out_trade_no] = trade
        if code["confirm"]:
            trade.status = C.WAIT_BUYER_PAY
            self._save(trade)
            return {**self._paid_fields(trade), "code": "10003", "msg": "等待用户付款"}
        self._mark_paid(trade, fund_channel=trade.fund_channel)
        return self._ok(**self._paid_fields(trade))

    def _trade_query(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None or trade.status == "PRECREATED":
            return self._fail(C.TRADE_NOT_EXIST, "交易不存在")
        fields = self._paid_fields(trade)
        fields["trade_status"] = trade.status
        fields["send_pay_date"] = fields.pop("gmt_payment")
        if trade.status != C.TRADE_SUCCESS:
            fields.pop("fund_bill_list")
        return self._ok(**fields)

    def _trade_close(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._fail(C.TRADE_NOT_EXIST, "交易不存在")
        if trade.status in (C.TRADE_SUCCESS, C.TRADE_FINISHED):
            return self._fail(C.TRADE_STATUS_ERROR, "交易状态不合法")
        self._close(trade)
        return self._ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no)

    def _close(self, trade: Trade) -> None:
        if trade.status != C.TRADE_CLOSED:
            trade.status = C.TRADE_CLOSED
            trade.closed_at = self.now().strftime(TIME_FMT)
            self._save(trade)

    def _trade_cancel(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            # Cancelling an order Alipay never saw blocks it: a late pay with it is refused.
            number = str(biz.get("out_trade_no", ""))
            if number:
                blocked = Trade(number, self._trade_no(), 0, "", "", self.now().strftime(TIME_FMT))
                self.trades[number] = blocked
                self._close(blocked)
            return self._ok(out_trade_no=number, retry_flag="N", action="close")
        action = "close"
        if trade.status == C.TRADE_SUCCESS:
            left = trade.amount_fen - trade.refunded_fen
            if left:
                trade.refunds.append(Refund("cancel", left, self.now().strftime(TIME_FMT)))
            action = "refund"
        self._close(trade)
        return self._ok(
            trade_no=trade.trade_no, out_trade_no=trade.out_trade_no, retry_flag="N", action=action
        )

    def _trade_refund(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._fail(C.TRADE_NOT_EXIST, "交易不存在")
        if trade.status not in (C.TRADE_SUCCESS, C.TRADE_CLOSED) or not trade.paid_at:
            return self._fail(C.TRADE_STATUS_ERROR, "交易状态不合法")
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        amount = parse_yuan(str(biz.get("refund_amount", "")))
        done = next((r for r in trade.refunds if r.out_request_no == request_no), None)
        if done is not None:
            if done.amount_fen != amount:
                return self._fail("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原请求不一致")
            return self._ok(
                trade_no=trade.trade_no,
                out_trade_no=trade.out_trade_no,
                fund_change="N",
                refund_fee=format_yuan(trade.refunded_fen),
            )
        if amount <= 0 or amount > trade.amount_fen - trade.refunded_fen:
            return self._fail("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        trade.refunds.append(Refund(request_no, amount, self.now().strftime(TIME_FMT)))
        if trade.refunded_fen == trade.amount_fen:
            trade.status = C.TRADE_CLOSED
        self._save(trade)
        self._notify(trade, refund=trade.refunds[-1])
        return self._ok(
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            buyer_logon_id=trade.buyer_logon_id,
            fund_change="Y",
            refund_fee=format_yuan(trade.refunded_fen),
            gmt_refund_pay=trade.refunds[-1].at,
        )

    def _refund_query(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        trade = self._find(biz)
        if trade is None:
            return self._fail(C.TRADE_NOT_EXIST, "交易不存在")
        request_no = str(biz.get("out_request_no", ""))
        done = next((r for r in trade.refunds if r.out_request_no == request_no), None)
        if done is None:
            return self._ok(trade_no=trade.trade_no, out_trade_no=trade.out_trade_no)
        return self._ok(
            trade_no=trade.trade_no,
            out_trade_no=trade.out_trade_no,
            out_request_no=request_no,
            total_amount=format_yuan(trade.amount_fen),
            refund_amount=format_yuan(done.amount_fen),
            refund_status="REFUND_SUCCESS",
        )

    def _downloadurl_query(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        day = str(biz.get("bill_date", ""))
        try:
            when = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            return self._fail("isv.invalid-bill-date", "bill_date 须为 yyyy-MM-dd", "40002")
        if when >= self.now().date():
            return self._fail("isp.bill_not_exist", "账单不存在 (当日账单次日生成)")
        return self._ok(bill_download_url=f"{self.base_url}/bill/{when:%Y%m%d}.zip")

    # the wallet ---------------------------------------------------------------------------
    def payment_code(self, *, funding: str, confirm: bool = False) -> str:
        """Make a one-time payment code (付款码) for the wallet; return its 18 digits."""
        if funding not in FUNDINGS:
            raise ValueError(f"funding: one of {', '.join(FUNDINGS)}")
        with self.lock:
            code = "28" + f"{secrets.randbelow(10**16):016d}"
            self.codes[code] = {
                "fund_channel": FUNDINGS[funding],
                "confirm": confirm,
                "buyer": "139****" + f"{secrets.randbelow(10**4):04d}",
                "used": False,
            }
            return code

    def code_confirm(self, code: str) -> Trade:
        """The buyer confirms a payment-code trade waiting for them. Raise LookupError."""
        with self.lock:
            info = self.codes.get(code)
            trade = self.trades.get(str(info.get("out_trade_no", ""))) if info else None
            if trade is None or trade.status != C.WAIT_BUYER_PAY:
                raise LookupError("没有等待确认的交易")
            self._mark_paid(trade, fund_channel=trade.fund_channel)
            return trade

    def trade_for_qr(self, token: str) -> Trade | None:
        """Return the precreated trade behind a QR token (or full qr_code URL)."""
        token = token.rstrip("/").rsplit("/", 1)[-1]
        with self.lock:
            return next((t for t in self.trades.values() if t.qr_token == token), None)

    def qr_pay(self, token: str, *, funding: str) -> Trade:
        """Pay a scanned QR from the wallet. Raise LookupError / ValueError when it cannot."""
        if funding not in FUNDINGS:
            raise ValueError(f"funding: one of {', '.join(FUNDINGS)}")
        trade = self.trade_for_qr(token)
        if trade is None:
            raise LookupError("二维码无效")
        with self.lock:
            if trade.status in (C.TRADE_SUCCESS, C.TRADE_FINISHED):
                raise ValueError("该订单已支付")
            if trade.status == C.TRADE_CLOSED:
                raise ValueError("该订单已关闭")
            if trade.time_expire:
                expire = datetime.strptime(trade.time_expire, TIME_FMT).replace(tzinfo=CHINA)
                if self.now() > expire:
                    raise ValueError("二维码已过期")
            trade.buyer_logon_id = "139****" + f"{secrets.randbelow(10**4):04d}"
            self._mark_paid(trade, fund_channel=FUNDINGS[funding])
            return trade

    def _mark_paid(self, trade: Trade, *, fund_channel: str) -> None:
        trade.status = C.TRADE_SUCCESS
        trade.fund_channel = fund_channel
        trade.paid_at = self.now().strftime(TIME_FMT)
        self._save(trade)
        self._notify(trade)

    # notifications ------------------------------------------------------------------------
    def notification_form(self, trade: Trade, *, refund: Refund | None = None) -> dict[str, str]:
        """Return the signed form Alipay posts for ``trade`` (payment or refund)."""
        now = self.now().strftime(TIME_FMT)
        form = {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": trade.buyer_logon_id,
            "seller_id": self.pid,
            "trade_status": trade.status,
            "total_amount": format_yuan(trade.amount_fen),
            "receipt_amount": format_yuan(trade.amount_fen),
            "buyer_pay_amount": format_yuan(trade.amount_fen),
            "subject": trade.subject,
            "gmt_create": trade.created_at,
            "gmt_payment": trade.paid_at,
            "fund_bill_list": json.dumps(
                self._fund_list(trade, "fundChannel"), separators=(",", ":")
            ),
        }
        if refund is not None:
            form.update(
                out_biz_no=refund.out_request_no,
                refund_fee=format_yuan(trade.refunded_fen),
                gmt_refund=refund.at,
            )
        key = self.alipay_private_key
        if self.faults.bad_notification_signature > 0:
            self.faults.bad_notification_signature -= 1
            key = self._wrong()
        form["sign"] = rsa2_sign(sign_content(form), key)
        form["sign_type"] = "RSA2"
        return form

    def _notify(self, trade: Trade, *, refund: Refund | None = None) -> None:
        if not trade.notify_url:
            return
        if self.faults.lose_notifications > 0:
            self.faults.lose_notifications -= 1
            return
        form = self.notification_form(trade, refund=refund)
        for _ in range(max(1, self.faults.duplicate_notifications)):
            self.outbox.append((trade.notify_url, form))

    def outbox_take(self) -> list[tuple[str, dict[str, str]]]:
        """Hand over the notifications made since the last call (reordered if asked)."""
        with self.lock:
            taken, self.outbox = self.outbox, []
        if self.faults.reorder_notifications:
            taken.reverse()
        return taken

    def bill_trades(self, day_start: datetime, day_end: datetime) -> list[Trade]:
        """Trades paid or refunded in ``[day_start, day_end)`` (China time)."""
        lo, hi = day_start.strftime(TIME_FMT), day_end.strftime(TIME_FMT)
        with self.lock:
            return [
                t
                for t in self.trades.values()
                if (t.paid_at and lo <= t.paid_at < hi) or any(lo <= r.at < hi for r in t.refunds)
            ]


def form_decode(body: bytes, query: str = "") -> dict[str, str]:
    """Return a gateway POST's fields (query string and form body), one value each."""
    fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    fields.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return fields


def day_bounds(day: Any) -> tuple[datetime, datetime]:
    """Return the China-time ``[start, end)`` of a date."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA)
    return start, start + timedelta(days=1)
