"""``WechatPayChannel``: WeChat Pay API v3 (Native, query, close, refunds, notifications) and
the v2 付款码 API (``/pay/micropay``, ``/secapi/pay/reverse``), which is what WeChat Pay offers
a directly connected merchant for customer-presented codes.

The same class talks to the real WeChat Pay or to ``wuye sim wechat``: only settings differ
(``wuye.conf.wechat``).
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import date, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from wuye.channels.base import (
    ChannelResult,
    PaymentRequest,
    PaymentResponse,
    RefundRequest,
    RefundResponse,
)
from wuye.channels.qrpay.base import (
    BadSignature,
    ChannelUnavailable,
    Notification,
    QrChannel,
    QrCode,
)
from wuye.channels.qrpay.conf import setting
from wuye.channels.wechat import constants as C
from wuye.channels.wechat import wire
from wuye.channels.wechat.client import Reply, Timeout, Unreachable, WechatClient
from wuye.channels.wechat.keys import keys_get

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACK = json.dumps({"code": "SUCCESS", "message": "成功"}, ensure_ascii=False).encode()
MICROPAY_DECLINE_CODES = frozenset(
    {
        "AUTHCODEEXPIRE",
        "AUTH_CODE_INVALID",
        "NOTENOUGH",
        "NOTSUPORTCARD",
        "ORDERCLOSED",
        "ORDERREVERSED",
        "BUYER_MISMATCH",
        "PARAM_ERROR",
        "TRADE_ERROR",
        "NOAUTH",
        "OUT_TRADE_NO_USED",
    }
)


def out_refund_no(idempotency_key: str) -> str:
    """Return WeChat's ``out_refund_no`` (≤64 of ``[A-Za-z0-9_-]``) for a refund key."""
    return "RF" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:30].upper()


def _details(data: dict[str, Any]) -> dict[str, Any]:
    payer = data.get("payer") or {}
    return {
        "provider_txn_id": data.get("transaction_id", ""),
        "funding_source": C.funding_source(str(data.get("bank_type", ""))),
        "bank_type": data.get("bank_type", ""),
        "trade_type": data.get("trade_type", ""),
        "openid": payer.get("openid", ""),
        "success_time": data.get("success_time", ""),
    }


def transaction_response(data: dict[str, Any]) -> PaymentResponse:
    """Map a v3 transaction (query answer or decrypted notification) to our vocabulary."""
    state = str(data.get("trade_state", ""))
    amount = data.get("amount") or {}
    total = amount.get("total", 0)
    total = total if isinstance(total, int) and not isinstance(total, bool) else 0
    message = f"{state} {data.get('trade_state_desc', '')}".strip()
    if state in C.PAID_STATES:
        return PaymentResponse(
            ChannelResult.PROCESSED,
            total,
            str(data.get("transaction_id", "")),
            message,
            _details(data),
        )
    if state in C.OPEN_STATES:
        return PaymentResponse(ChannelResult.PENDING, total, "", message)
    return PaymentResponse(ChannelResult.DECLINED, total, "", message)


def refund_response(data: dict[str, Any]) -> RefundResponse:
    """Map a v3 refund (answer or decrypted notification) to our vocabulary."""
    status = str(data.get("status") or data.get("refund_status") or "")
    amount = data.get("amount") or {}
    refund = amount.get("refund", 0)
    details = {
        "provider_txn_id": data.get("refund_id", ""),
        "out_refund_no": data.get("out_refund_no", ""),
        "status": status,
    }
    result = {
        "SUCCESS": ChannelResult.PROCESSED,
        "PROCESSING": ChannelResult.PENDING,
        "CLOSED": ChannelResult.DECLINED,
        "ABNORMAL": ChannelResult.DECLINED,
    }.get(status, ChannelResult.UNDEFINED)
    return RefundResponse(result, refund, str(data.get("refund_id", "")), status, details)


class WechatPayChannel(QrChannel):
    """WeChat Pay (微信支付) for a directly connected merchant (直连商户)."""

    code: ClassVar[str] = C.CODE
    name: ClassVar[str] = "微信支付"
    notify_timeout_s: ClassVar[int] = 60

    def client(self) -> WechatClient:
        """Return a client for the configured host, merchant and keys."""
        return WechatClient(
            base_url=setting("WUYE_WECHAT_BASE_URL"),
            mchid=setting("WUYE_WECHAT_MCHID"),
            appid=setting("WUYE_WECHAT_APPID"),
            merchant_serial=setting("WUYE_WECHAT_MERCHANT_SERIAL"),
            platform_serial=setting("WUYE_WECHAT_PLATFORM_SERIAL"),
            keys=keys_get(),
            timeout_s=setting("WUYE_WECHAT_TIMEOUT_S"),
            client_cert=setting("WUYE_WECHAT_CLIENT_CERT"),
        )

    # --- merchant-presented (Native) ---------------------------------------------------------

    def precreate(self, request: PaymentRequest, *, expires_at: datetime) -> QrCode:
        """Create a Native order and return its ``code_url``; raise ChannelUnavailable."""
        cl = self.client()
        payload = {
            "appid": cl.appid,
            "mchid": cl.mchid,
            "description": str(request.extra.get("description") or "物业费")[:127],
            "out_trade_no": request.idempotency_key,
            "time_expire": expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            "notify_url": setting("WUYE_WECHAT_NOTIFY_URL"),
            "amount": {"total": request.amount_fen, "currency": "CNY"},
            "attach": f"order:{request.order_id}",
        }
        try:
            reply = cl.v3("POST", C.NATIVE, payload)
        except (Timeout, Unreachable, BadSignature) as exc:
            raise ChannelUnavailable(f"WeChat Pay native: {exc}") from None
        if reply.status != 200 or not reply.body.get("code_url"):
            raise ChannelUnavailable(
                f"WeChat Pay native: HTTP {reply.status} {reply.body.get('code', '')} "
                f"{reply.body.get('message', '')}".strip()
            )
        return QrCode(str(reply.body["code_url"]), request.idempotency_key, expires_at)

    # --- customer-presented (付款码, v2) ------------------------------------------------------

    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Take the payment code in ``request.extra['auth_code']`` (v2 ``/pay/micropay``).

        USERPAYING (the payer is entering a password) answers PENDING; a timeout UNDEFINED.
        """
        auth_code = str(request.extra.get("auth_code", "")).strip()
        if not (auth_code.isdigit() and 16 <= len(auth_code) <= 24):
            return PaymentResponse(
                ChannelResult.NOT_SENT, request.amount_fen, "", "auth_code: 付款码应为16-24位数字"
            )
        params = {
            "body": str(request.extra.get("description") or "物业费")[:127],
            "out_trade_no": request.idempotency_key,
            "total_fee": str(request.amount_fen),
            "fee_type": "CNY",
            "spbill_create_ip": "127.0.0.1",
            "auth_code": auth_code,
            "attach": f"order:{request.order_id}",
        }
        try:
            ans = self.client().v2(C.MICROPAY, params)
        except Unreachable as exc:
            return PaymentResponse(ChannelResult.NOT_SENT, request.amount_fen, "", str(exc))
        except (Timeout, BadSignature) as exc:
            return PaymentResponse(ChannelResult.UNDEFINED, request.amount_fen, "", str(exc))
        if ans.get("return_code") != "SUCCESS":
            return PaymentResponse(
                ChannelResult.UNDEFINED, request.amount_fen, "", ans.get("return_msg", "")
            )
        if ans.get("result_code") == "SUCCESS":
            data = {
                "transaction_id": ans.get("transaction_id", ""),
                "bank_type": ans.get("bank_type", ""),
                "trade_type": "MICROPAY",
                "payer": {"openid": ans.get("openid", "")},
            }
            return PaymentResponse(
                ChannelResult.PROCESSED,
                int(ans.get("total_fee", "0")),
                ans.get("transaction_id", ""),
                "SUCCESS",
                _details(data),
            )
        err = ans.get("err_code", "")
        message = f"{err} {ans.get('err_code_des', '')}".strip()
        if err == "USERPAYING":
            return PaymentResponse(ChannelResult.PENDING, request.amount_fen, "", message)
        if err in MICROPAY_DECLINE_CODES:
            return PaymentResponse(ChannelResult.DECLINED, request.amount_fen, "", message)
        return PaymentResponse(ChannelResult.UNDEFINED, request.amount_fen, "", message)

    # --- query / close -----------------------------------------------------------------------

    def _query(self, reference: str) -> Reply:
        mchid = setting("WUYE_WECHAT_MCHID")
        if reference.isdigit() and len(reference) >= 28:  # 微信订单号
            path = C.QUERY_ID.format(transaction_id=reference)
        else:
            path = C.QUERY_OUT_TRADE_NO.format(out_trade_no=reference)
        return self.client().v3("GET", f"{path}?mchid={mchid}")

    def query(self, reference: str) -> PaymentResponse:
        """Ask what became of the order ``reference`` (out_trade_no or 微信订单号)."""
        try:
            reply = self._query(reference)
        except (Timeout, Unreachable, BadSignature) as exc:
            return PaymentResponse(ChannelResult.UNDEFINED, 0, "", str(exc))
        if reply.status == 404:
            return PaymentResponse(ChannelResult.DECLINED, 0, "", "ORDER_NOT_EXIST")
        if reply.status != 200:
            return PaymentResponse(
                ChannelResult.UNDEFINED, 0, "", f"HTTP {reply.status} {reply.body.get('code', '')}"
            )
        return transaction_response(reply.body)

    def close(self, out_trade_no: str) -> ChannelResult:
        """Close an unpaid Native order, or reverse (撤销) a payment code left USERPAYING.

        PROCESSED when closed, DECLINED when it was paid meanwhile, UNDEFINED on no answer.
        """
        try:
            reply = self._query(out_trade_no)
            if reply.status == 404:
                return ChannelResult.PROCESSED  # never reached WeChat: nothing to close
            if reply.status != 200:
                return ChannelResult.UNDEFINED
            state = str(reply.body.get("trade_state", ""))
            if state in C.PAID_STATES:
                return ChannelResult.DECLINED
            if state in C.DEAD_STATES:
                return ChannelResult.PROCESSED
            if reply.body.get("trade_type") == "MICROPAY":
                ans = self.client().v2(C.REVERSE, {"out_trade_no": out_trade_no})
                ok = ans.get("return_code") == "SUCCESS" and ans.get("result_code") == "SUCCESS"
                return ChannelResult.PROCESSED if ok else ChannelResult.UNDEFINED
            mchid = setting("WUYE_WECHAT_MCHID")
            closed = self.client().v3(
                "POST", C.CLOSE.format(out_trade_no=out_trade_no), {"mchid": mchid}
            )
        except (Timeout, Unreachable, BadSignature):
            return ChannelResult.UNDEFINED
        if closed.status in (200, 204):
            return ChannelResult.PROCESSED
        if closed.body.get("code") == "ORDERPAID":
            return ChannelResult.DECLINED
        return ChannelResult.UNDEFINED

    # --- refunds -----------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundResponse:
        """Refund (part of) the payment ``request.payment_reference`` (微信订单号).

        A refund WeChat accepts as PROCESSING is polled for ``WUYE_WECHAT_REFUND_WAIT_S``;
        still processing, it answers PENDING with ``details['out_refund_no']`` to track it.
        """
        number = out_refund_no(request.idempotency_key)
        try:
            paid = self._query(request.payment_reference)
            total = int((paid.body.get("amount") or {}).get("total", 0))
            if paid.status != 200 or total <= 0:
                return RefundResponse(
                    ChannelResult.DECLINED,
                    request.amount_fen,
                    "",
                    f"原交易不存在 {request.payment_reference}",
                )
            payload = {
                "transaction_id": request.payment_reference,
                "out_refund_no": number,
                "reason": str(request.extra.get("reason") or "")[:80],
                "notify_url": setting("WUYE_WECHAT_NOTIFY_URL"),
                "amount": {"refund": request.amount_fen, "total": total, "currency": "CNY"},
            }
            reply = self.client().v3("POST", C.REFUNDS, payload)
        except (Timeout, Unreachable, BadSignature) as exc:
            return RefundResponse(
                ChannelResult.UNDEFINED, request.amount_fen, "", str(exc), {"out_refund_no": number}
            )
        if reply.status != 200:
            return RefundResponse(
                ChannelResult.DECLINED,
                request.amount_fen,
                "",
                f"{reply.body.get('code', '')} {reply.body.get('message', '')}",
                {"out_refund_no": number},
            )
        answer = refund_response(reply.body)
        deadline = time.monotonic() + float(setting("WUYE_WECHAT_REFUND_WAIT_S"))
        while answer.result == ChannelResult.PENDING and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = self.refund_query(number)
        return answer

    def refund_query(self, number: str) -> RefundResponse:
        """Ask the state of the refund ``number`` (our out_refund_no)."""
        try:
            reply = self.client().v3("GET", C.REFUND_QUERY.format(out_refund_no=number))
        except (Timeout, Unreachable, BadSignature) as exc:
            return RefundResponse(
                ChannelResult.UNDEFINED, 0, "", str(exc), {"out_refund_no": number}
            )
        if reply.status != 200:
            return RefundResponse(
                ChannelResult.UNDEFINED,
                0,
                "",
                str(reply.body.get("code", "")),
                {"out_refund_no": number},
            )
        return refund_response(reply.body)

    # --- daily bill ------------------------------------------------------------------------

    def trade_bill(self, day: date) -> bytes:
        """Download the trade bill (交易账单, all trades) of ``day``; return the CSV bytes.

        The file's SHA1 is checked against the signed answer that handed out its URL. Raise
        ChannelUnavailable when WeChat cannot be reached, has no bill, or the hash differs.
        """
        cl = self.client()
        try:
            reply = cl.v3("GET", f"{C.TRADEBILL}?bill_date={day:%Y-%m-%d}&bill_type=ALL")
            if reply.status != 200 or not reply.body.get("download_url"):
                raise ChannelUnavailable(
                    f"WeChat Pay tradebill {day}: HTTP {reply.status} {reply.body.get('code', '')}"
                )
            data = cl.download(str(reply.body["download_url"]))
        except (Timeout, Unreachable, BadSignature) as exc:
            raise ChannelUnavailable(f"WeChat Pay tradebill {day}: {exc}") from None
        if hashlib.sha1(data).hexdigest() != str(reply.body.get("hash_value", "")).lower():  # noqa: S324
            raise ChannelUnavailable(f"WeChat Pay tradebill {day}: SHA1 does not match")
        return data

    # --- notifications -----------------------------------------------------------------------

    def parse_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Verify the platform signature, decrypt the resource; raise BadSignature."""
        keys = keys_get()
        try:
            text = body.decode("utf-8")
            wire.verify_signed(
                keys.platform_pub, setting("WUYE_WECHAT_PLATFORM_SERIAL"), headers, text
            )
            envelope = json.loads(text)
            if not isinstance(envelope, dict):
                raise wire.WireError("body: JSON object expected")
            data = wire.decrypt_resource(keys.apiv3_key, envelope.get("resource") or {})
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadSignature(f"WeChat Pay notification: {exc}") from None
        event = str(envelope.get("event_type", ""))
        raw = {"id": str(envelope.get("id", "")), "event_type": event, **data}
        if event.startswith("REFUND."):
            r = refund_response(data)
            response = PaymentResponse(r.result, r.amount_fen, r.reference, r.message, r.details)
            kind = "refund"
        else:
            response = transaction_response(data)
            kind = "payment"
        return Notification(
            kind, str(data.get("out_trade_no", "")), response, ACK, "application/json", raw
        )
