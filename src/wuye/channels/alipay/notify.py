"""Alipay's asynchronous notifications: verify the RSA2 signature and map to our vocabulary."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from wuye.channels.alipay import constants as C
from wuye.channels.alipay.signing import rsa2_verify, sign_content
from wuye.channels.base import ChannelResult, PaymentResponse
from wuye.channels.qrpay.base import BadSignature, Notification
from wuye.core.money import MoneyFormatError, parse_yuan


def funding_of(fund_bill_list: Any) -> tuple[str, str]:
    """Return (fund channel code, receipt label ``花呗/PCREDIT``) of the largest funding part.

    ``fund_bill_list`` is the API's list of ``{"fund_channel", "amount"}`` or the notification's
    JSON text of ``{"fundChannel", "amount"}``; empty or unreadable gives ``("", "")``.
    """
    if isinstance(fund_bill_list, str):
        try:
            fund_bill_list = json.loads(fund_bill_list) if fund_bill_list else []
        except ValueError:
            return "", ""
    best, best_fen = "", -1
    for part in fund_bill_list or []:
        if not isinstance(part, dict):
            continue
        code = str(part.get("fund_channel") or part.get("fundChannel") or "")
        try:
            fen = parse_yuan(str(part.get("amount", "0")))
        except MoneyFormatError:
            fen = 0
        if code and fen > best_fen:
            best, best_fen = code, fen
    if not best:
        return "", ""
    label = C.FUNDING_LABELS.get(best)
    return best, f"{label}/{best}" if label else best


def _fen(value: str, what: str) -> int:
    try:
        return parse_yuan(value)
    except MoneyFormatError as exc:
        raise BadSignature(f"notification {what}: not an amount: {value!r}") from exc


def notification_parse(body: bytes, *, public_key: RSAPublicKey, app_id: str) -> Notification:
    """Verify and decode an Alipay notification (form-encoded body); return it.

    Raise BadSignature when the signature does not verify, the sign type is not RSA2, the
    notification is for another app, or a field Alipay always sends is missing or malformed.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSignature("notification: not UTF-8") from exc
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise BadSignature("notification: a field appears twice")
    if fields.get("sign_type", "RSA2") != "RSA2":
        raise BadSignature(f"notification: sign_type {fields.get('sign_type')!r}, RSA2 expected")
    sign = fields.get("sign", "")
    content = sign_content(fields, exclude=("sign", "sign_type"))
    if not sign or not rsa2_verify(content, sign, public_key):
        raise BadSignature("notification: signature does not verify")
    if fields.get("app_id") != app_id:
        raise BadSignature(f"notification: app_id {fields.get('app_id')!r} is not ours")
    for name in ("out_trade_no", "trade_no", "trade_status", "total_amount"):
        if not fields.get(name):
            raise BadSignature(f"notification: {name} missing")
    status = fields["trade_status"]
    code, label = funding_of(fields.get("fund_bill_list", ""))
    details: dict[str, Any] = {"provider_txn_id": fields["trade_no"]}
    if label:
        details["funding_source"] = label
    if fields.get("refund_fee") and (fields.get("out_biz_no") or fields.get("gmt_refund")):
        kind = "refund"
        response = PaymentResponse(
            result=ChannelResult.PROCESSED,
            amount_fen=_fen(fields["refund_fee"], "refund_fee"),
            reference=fields.get("out_biz_no") or fields["trade_no"],
            message=status,
            details=details,
        )
    else:
        kind = "payment"
        result = {
            C.TRADE_SUCCESS: ChannelResult.PROCESSED,
            C.TRADE_FINISHED: ChannelResult.PROCESSED,
            C.TRADE_CLOSED: ChannelResult.DECLINED,
        }.get(status, ChannelResult.PENDING)
        response = PaymentResponse(
            result=result,
            amount_fen=_fen(fields["total_amount"], "total_amount"),
            reference=fields["trade_no"],
            message=status,
            details=details,
        )
    raw = {k: v for k, v in fields.items() if k != "sign"}
    raw["fund_channel"] = code
    if kind == "refund":
        raw["out_refund_no"] = f"{fields['trade_no']}|{fields.get('out_biz_no', '')}"
    return Notification(
        kind=kind,
        out_trade_no=fields["out_trade_no"],
        response=response,
        ack_body=C.NOTIFY_ACK,
        ack_content_type="text/plain",
        raw=raw,
    )
