"""The Alipay channel: OpenAPI gateway calls mapped onto ``QrChannel``.

``precreate`` is 主扫 (``alipay.trade.precreate``: a ``qr_code`` the resident scans);
``pay`` is 被扫 (``alipay.trade.pay``, scene ``bar_code``, the resident's payment code in
``request.extra["auth_code"]``): ``10003``/WAIT_BUYER_PAY answers PENDING for the caller
(``qrpay.services.qr_scan``) to poll with ``query``; ``close`` falls back to
``alipay.trade.cancel`` to reverse a trade whose outcome is unknown. ``query``, ``refund``
(with ``alipay.trade.fastpay.refund.query`` when the answer is unclear) and the daily bill's
download URL complete it. The funding source of a payment (``fund_bill_list``:
``PCREDIT`` = 花呗…) goes into ``details["funding_source"]`` as ``花呗/PCREDIT``.
"""

from __future__ import annotations

import urllib.request
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings

from wuye.channels.alipay import constants as C
from wuye.channels.alipay.client import (
    CHINA,
    AlipayClient,
    AlipayConfig,
    GatewayError,
    GatewayUnreachable,
)
from wuye.channels.alipay.keys import demo_keys, private_key_load, public_key_load
from wuye.channels.alipay.notify import funding_of, notification_parse
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
from wuye.core.money import MoneyFormatError, format_yuan, parse_yuan


def setting(name: str, default: Any = None) -> Any:
    """Return one of this part's settings (``wuye.conf.alipay``, merged into settings)."""
    return getattr(settings, name, default)


@lru_cache(maxsize=8)
def _keys(priv: str, pub: str, data_dir: str) -> tuple[RSAPrivateKey, RSAPublicKey]:
    # Parsed once per configuration (and demo keys read and decrypted once per data dir).
    if not priv or not pub:
        demo = demo_keys(Path(data_dir))
        priv = priv or demo.app_private
        pub = pub or demo.alipay_public
    return private_key_load(priv), public_key_load(pub)


def alipay_config() -> AlipayConfig:
    """Return the channel's configuration from settings (demo keys when none are set)."""
    priv, pub = _keys(
        setting("ALIPAY_APP_PRIVATE_KEY") or "",
        setting("ALIPAY_PUBLIC_KEY") or "",
        str(settings.DATA_DIR),
    )
    return AlipayConfig(
        gateway_url=setting("ALIPAY_GATEWAY_URL"),
        app_id=setting("ALIPAY_APP_ID"),
        app_private_key=priv,
        alipay_public_key=pub,
        notify_url=setting("ALIPAY_NOTIFY_URL"),
        timeout_s=float(setting("ALIPAY_TIMEOUT_S")),
    )


def _fen(value: Any) -> int:
    try:
        return parse_yuan(str(value))
    except MoneyFormatError:
        return 0


def _trade_key(reference: str) -> dict[str, str]:
    # 支付宝交易号 are 28+ digits (date first); anything else is our out_trade_no.
    if reference.isdigit() and len(reference) >= 28:
        return {"trade_no": reference}
    return {"out_trade_no": reference}


def _details(answer: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if answer.get("trade_no"):
        out["provider_txn_id"] = answer["trade_no"]
    _code, label = funding_of(answer.get("fund_bill_list"))
    if label:
        out["funding_source"] = label
    return out


def _message(answer: dict[str, Any]) -> str:
    return str(answer.get("sub_msg") or answer.get("msg") or answer.get("sub_code") or "")


def refund_number(trade_no: str, out_request_no: str) -> str:
    """Return our handle of one refund: ``<trade_no>|<out_request_no>`` (both are needed to
    ask Alipay about it; notifications carry both too)."""
    return f"{trade_no}|{out_request_no}"


def _subject(request: PaymentRequest) -> str:
    text = request.extra.get("description") or request.extra.get("subject")
    return str(text or f"物业缴费 #{request.order_id}")[:128]


class AlipayChannel(QrChannel):
    """支付宝 through its OpenAPI gateway (real or ``wuye sim alipay``)."""

    code: ClassVar[str] = C.CODE
    name: ClassVar[str] = "支付宝"

    def client(self) -> AlipayClient:
        """Return a client for the configured gateway."""
        return AlipayClient(alipay_config())

    # 主扫 ------------------------------------------------------------------------------------
    def precreate(self, request: PaymentRequest, *, expires_at: datetime) -> QrCode:
        """Create the order's dynamic QR (``alipay.trade.precreate``); return it.

        Raise ChannelUnavailable when the gateway cannot be reached or refuses.
        """
        biz = {
            "out_trade_no": request.idempotency_key,
            "total_amount": format_yuan(request.amount_fen),
            "subject": _subject(request),
            "time_expire": expires_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
        }
        try:
            answer = self.client().call(C.PRECREATE, biz, notify=True)
        except (GatewayError, BadSignature) as exc:
            raise ChannelUnavailable(str(exc)) from exc
        if answer.get("code") != C.SUCCESS or not answer.get("qr_code"):
            raise ChannelUnavailable(_message(answer) or "precreate refused")
        return QrCode(
            code_url=str(answer["qr_code"]),
            out_trade_no=request.idempotency_key,
            expires_at=expires_at,
        )

    # 被扫 ------------------------------------------------------------------------------------
    def pay(self, request: PaymentRequest) -> PaymentResponse:
        """Charge the resident's payment code; never raise for a refusal or a timeout.

        ``10000`` PROCESSED; ``10003`` (WAIT_BUYER_PAY: the buyer confirms in the wallet)
        PENDING, for the caller to poll with ``query``; ``40004`` DECLINED; ``20000``, a timeout
        or an answer that does not verify UNDEFINED (query, then ``close`` cancels it); no
        connection at all NOT_SENT.
        """
        auth_code = str(request.extra.get("auth_code", "")).strip()
        if not auth_code.isdigit():
            return self._answer(request, ChannelResult.NOT_SENT, "付款码无效")
        biz = {
            "out_trade_no": request.idempotency_key,
            "scene": "bar_code",
            "auth_code": auth_code,
            "total_amount": format_yuan(request.amount_fen),
            "subject": _subject(request),
        }
        try:
            answer = self.client().call(C.PAY, biz, notify=True)
        except GatewayUnreachable as exc:
            return self._answer(request, ChannelResult.NOT_SENT, str(exc))
        except (GatewayError, BadSignature) as exc:
            return self._answer(request, ChannelResult.UNDEFINED, str(exc))
        code = answer.get("code")
        if code == C.SUCCESS:
            return self._paid(answer, request.amount_fen)
        if code == C.WAITING:
            return PaymentResponse(
                result=ChannelResult.PENDING,
                amount_fen=request.amount_fen,
                reference=str(answer.get("trade_no", "")),
                message=C.WAIT_BUYER_PAY,
            )
        if code in (C.BUSINESS_FAILED, C.INVALID_PARAM, C.MISSING_PARAM, C.AUTH_FAILED):
            return self._answer(request, ChannelResult.DECLINED, _message(answer))
        return self._answer(request, ChannelResult.UNDEFINED, _message(answer))

    def _answer(self, request: PaymentRequest, result: ChannelResult, msg: str) -> PaymentResponse:
        return PaymentResponse(
            result=result, amount_fen=request.amount_fen, reference="", message=msg
        )

    def _paid(self, answer: dict[str, Any], amount_fen: int) -> PaymentResponse:
        return PaymentResponse(
            result=ChannelResult.PROCESSED,
            amount_fen=_fen(answer.get("total_amount")) or amount_fen,
            reference=str(answer.get("trade_no", "")),
            message=str(answer.get("trade_status", "")) or _message(answer),
            details=_details(answer),
        )

    # query / close ---------------------------------------------------------------------------
    def query(self, reference: str) -> PaymentResponse:
        """Ask what became of a trade (our out_trade_no or Alipay's trade_no)."""
        return self._query(self.client(), reference)

    def _query(self, client: AlipayClient, reference: str) -> PaymentResponse:
        try:
            answer = client.call(C.QUERY, _trade_key(reference))
        except (GatewayError, BadSignature) as exc:
            return PaymentResponse(
                result=ChannelResult.UNDEFINED, amount_fen=0, reference="", message=str(exc)
            )
        if answer.get("code") != C.SUCCESS:
            # Not (yet) a trade: a QR not scanned, or a micropay that never arrived.
            return PaymentResponse(
                result=ChannelResult.PENDING
                if answer.get("sub_code") == C.TRADE_NOT_EXIST
                else ChannelResult.UNDEFINED,
                amount_fen=0,
                reference="",
                message=_message(answer),
            )
        status = answer.get("trade_status")
        if status in (C.TRADE_SUCCESS, C.TRADE_FINISHED):
            return self._paid(answer, 0)
        result = ChannelResult.DECLINED if status == C.TRADE_CLOSED else ChannelResult.PENDING
        return PaymentResponse(
            result=result,
            amount_fen=_fen(answer.get("total_amount")),
            reference=str(answer.get("trade_no", "")),
            message=str(status),
            details=_details(answer),
        )

    def close(self, out_trade_no: str) -> ChannelResult:
        """Close an unpaid trade; return PROCESSED (closed: no money kept), DECLINED (paid
        meanwhile: query and post it) or UNDEFINED (no answer).

        ``alipay.trade.close`` first. When Alipay does not know the trade (a QR never scanned,
        or a payment-code request whose answer was lost and may still land) or close gets no
        clear answer, ``alipay.trade.cancel`` reverses it: it blocks a late payment and gives
        back one that went through.
        """
        client = self.client()
        try:
            answer = client.call(C.CLOSE, {"out_trade_no": out_trade_no})
        except (GatewayError, BadSignature):
            answer = {}
        if answer.get("code") == C.SUCCESS:
            return ChannelResult.PROCESSED
        if answer.get("sub_code") == C.TRADE_STATUS_ERROR:
            return ChannelResult.DECLINED
        return self.cancel(out_trade_no)

    def cancel(self, out_trade_no: str) -> ChannelResult:
        """Reverse a trade (``alipay.trade.cancel``): PROCESSED when Alipay confirms it (closed,
        or refunded in full if it had been paid), UNDEFINED otherwise."""
        try:
            answer = self.client().call(C.CANCEL, {"out_trade_no": out_trade_no})
        except (GatewayError, BadSignature):
            return ChannelResult.UNDEFINED
        if answer.get("code") == C.SUCCESS:
            return ChannelResult.PROCESSED
        return ChannelResult.UNDEFINED

    # refunds ---------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundResponse:
        """Refund (part of) a trade (``alipay.trade.refund``, out_request_no = our key).

        Alipay refunds synchronously: ``fund_change=Y`` is PROCESSED; an unclear answer or a
        timeout is settled by ``alipay.trade.fastpay.refund.query``. ``details["out_refund_no"]``
        is ``<trade_no>|<out_request_no>``, what ``refund_query`` needs to ask again.
        """
        number = refund_number(request.payment_reference, request.idempotency_key)
        biz = {
            **_trade_key(request.payment_reference),
            "refund_amount": format_yuan(request.amount_fen),
            "out_request_no": request.idempotency_key,
            "refund_reason": str(request.extra.get("reason", ""))[:80],
        }
        try:
            answer = self.client().call(C.REFUND, biz)
        except GatewayUnreachable as exc:
            return RefundResponse(
                result=ChannelResult.NOT_SENT,
                amount_fen=request.amount_fen,
                reference="",
                message=str(exc),
            )
        except (GatewayError, BadSignature):
            return self._refund_query(number, request.amount_fen)
        if answer.get("code") == C.SUCCESS and answer.get("fund_change") == "Y":
            return RefundResponse(
                result=ChannelResult.PROCESSED,
                amount_fen=request.amount_fen,
                reference=request.idempotency_key,
                message="REFUND_SUCCESS",
                details={
                    "provider_txn_id": str(answer.get("trade_no", "")),
                    "out_refund_no": number,
                },
            )
        if answer.get("code") == C.BUSINESS_FAILED:
            return RefundResponse(
                result=ChannelResult.DECLINED,
                amount_fen=request.amount_fen,
                reference="",
                message=_message(answer),
            )
        return self._refund_query(number, request.amount_fen)

    def refund_query(self, out_refund_no: str) -> RefundResponse:
        """Ask what became of a refund (``alipay.trade.fastpay.refund.query``).

        ``out_refund_no`` is ``<trade_no>|<out_request_no>`` as ``refund`` gave it.
        """
        return self._refund_query(out_refund_no, 0)

    def _refund_query(self, number: str, amount_fen: int) -> RefundResponse:
        trade_ref, _sep, request_no = number.partition("|")
        biz = {**_trade_key(trade_ref), "out_request_no": request_no}
        details = {"out_refund_no": number}
        try:
            answer = self.client().call(C.REFUND_QUERY, biz)
        except (GatewayError, BadSignature) as exc:
            return RefundResponse(ChannelResult.UNDEFINED, amount_fen, "", str(exc), details)
        if answer.get("code") == C.SUCCESS and answer.get("refund_status") == "REFUND_SUCCESS":
            details["provider_txn_id"] = str(answer.get("trade_no", ""))
            amount = _fen(answer.get("refund_amount")) or amount_fen
            return RefundResponse(
                ChannelResult.PROCESSED, amount, request_no, "REFUND_SUCCESS", details
            )
        if answer.get("code") == C.SUCCESS:
            # Alipay answers 10000 without refund_status for a refund it never took.
            return RefundResponse(
                ChannelResult.DECLINED, amount_fen, "", "refund not found", details
            )
        return RefundResponse(ChannelResult.UNDEFINED, amount_fen, "", _message(answer), details)

    # notifications and bills -----------------------------------------------------------------
    def parse_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Verify and decode an Alipay notification; raise BadSignature if it does not verify."""
        config = alipay_config()
        return notification_parse(body, public_key=config.alipay_public_key, app_id=config.app_id)

    def bill_download_url(self, bill_date: date) -> str:
        """Return the URL of the day's trade bill (``bill_type=trade``).

        Raise ChannelUnavailable when the gateway cannot be reached or has no bill.
        """
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        try:
            answer = self.client().call(C.BILL_URL, biz)
        except (GatewayError, BadSignature) as exc:
            raise ChannelUnavailable(str(exc)) from exc
        if answer.get("code") != C.SUCCESS or not answer.get("bill_download_url"):
            raise ChannelUnavailable(_message(answer) or "no bill")
        return str(answer["bill_download_url"])

    def bill_download(self, bill_date: date) -> bytes:
        """Return the day's bill (a zip of GBK CSV files). Raise ChannelUnavailable."""
        url = self.bill_download_url(bill_date)
        try:
            with urllib.request.urlopen(  # noqa: S310 - the gateway's https/http URL
                url, timeout=float(setting("ALIPAY_TIMEOUT_S"))
            ) as r:
                return bytes(r.read())
        except OSError as exc:
            raise ChannelUnavailable(f"bill download: {exc}") from exc
