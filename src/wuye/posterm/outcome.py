"""What a transaction came to (``Outcome``), the terminal's errors and its constants."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

MESSAGES = {
    "00": "承兑",
    "03": "无效商户",
    "05": "不予承兑",
    "12": "无效交易",
    "13": "无效金额",
    "14": "无效卡号",
    "25": "找不到原始交易",
    "30": "报文格式错误",
    "51": "余额不足",
    "54": "卡已过期",
    "55": "密码错误",
    "75": "密码错误次数超限",
    "94": "重复交易",
    "96": "系统故障",
    "97": "终端未登记",
    "98": "无应答，已冲正",
    "A0": "MAC校验错，请重新签到",
    "06": "交易异常，已冲正",
}
REVERSAL_TRIES = 3
PIN_TRIES = 3
TAP_NO_PIN_LIMIT_FEN = 100_000  # contactless under ¥1,000.00: no PIN, no signature


class TerminalError(Exception):
    """The terminal cannot do what was asked (not signed on, unknown original, bad input)."""


class SignOnRefused(TerminalError):
    """The acquirer refused sign-on, or its working keys failed their check values."""


@dataclass
class Outcome:
    """The result of one transaction, as the CLI prints it and the server receives it."""

    kind: str
    approved: bool
    response_code: str | None
    message: str = ""
    rrn: str = ""
    auth_code: str = ""
    masked_pan: str = ""
    batch: str = ""
    stan: str = ""
    amount_fen: int = 0
    card_type: str = ""
    entry_mode: str = ""
    txn_date: str = ""
    txn_time: str = ""
    settle_date: str = ""
    reversed: bool = False
    pending: bool = False
    training: bool = False
    balance_fen: int | None = None
    report_id: str = ""
    original: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the JSON object the CLI prints (never a full PAN)."""
        data = asdict(self)
        data.update(data.pop("extra"))
        return data


def year_of(mmdd: str, ref: date) -> str:
    """Return YYYYMMDD for an MMDD near ``ref`` (a date across new year belongs to the next)."""
    if not mmdd or len(mmdd) != 4:
        return ref.strftime("%Y%m%d")
    year = ref.year
    if int(mmdd[:2]) < ref.month - 6:
        year += 1
    elif int(mmdd[:2]) > ref.month + 6:
        year -= 1
    return f"{year}{mmdd}"


def jsonable(fields: dict[str, Any]) -> dict[str, Any]:
    """Return fields with bytes as ``{"hex": ...}`` (for sealed storage)."""
    return {k: ({"hex": v.hex()} if isinstance(v, bytes) else v) for k, v in fields.items()}


def unjson(fields: dict[str, Any]) -> dict[str, Any]:
    """Undo ``jsonable``."""
    return {k: (bytes.fromhex(v["hex"]) if isinstance(v, dict) else v) for k, v in fields.items()}
