"""The pyiso8583 specification of Wuye's POS ↔ acquirer contract (UnionPay-style, BCD-packed).

See ``shared/spec/pos-iso8583.md`` §2. Numeric fields are BCD with their length counted in
digits (nibbles); LLVAR lengths are one BCD byte, LLLVAR lengths two. Binary fields (52, 55,
62, 64) travel as raw bytes; pyiso8583 hands them to us as hex strings, which
:mod:`wuye.iso8583.codec` turns back into ``bytes``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BINARY_FIELDS", "NUMERIC_FIELDS", "SPEC", "TRACK2_FIELDS"]


def _fixed_n(digits: int, desc: str, *, pad: str = "left_pad") -> dict[str, Any]:
    field: dict[str, Any] = {
        "data_enc": "b",
        "len_enc": "b",
        "len_type": 0,
        "len_count": "nibbles",
        "max_len": digits,
        "desc": desc,
    }
    if digits % 2:
        field[pad] = "0"
    return field


def _var_n(len_bytes: int, max_digits: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "len_count": "nibbles",
        "right_pad": "0",
        "max_len": max_digits,
        "desc": desc,
    }


def _fixed_a(chars: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "ascii", "len_enc": "b", "len_type": 0, "max_len": chars, "desc": desc}


def _var_a(len_bytes: int, max_chars: int, desc: str, enc: str = "ascii") -> dict[str, Any]:
    return {
        "data_enc": enc,
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_chars,
        "desc": desc,
    }


def _fixed_b(nbytes: int, desc: str) -> dict[str, Any]:
    return {"data_enc": "b", "len_enc": "b", "len_type": 0, "max_len": nbytes, "desc": desc}


def _var_b(len_bytes: int, max_bytes: int, desc: str) -> dict[str, Any]:
    return {
        "data_enc": "b",
        "len_enc": "bcd",
        "len_type": len_bytes,
        "max_len": max_bytes,
        "desc": desc,
    }


SPEC: dict[str, dict[str, Any]] = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "none"},
    "t": _fixed_n(4, "Message Type Identifier"),
    "p": _fixed_b(8, "Primary bitmap"),
    # Never used by this contract (no field above 64); present because pyiso8583 wants it.
    "1": _fixed_b(8, "Secondary bitmap"),
    "2": _var_n(1, 19, "Primary Account Number"),
    "3": _fixed_n(6, "Processing Code"),
    "4": _fixed_n(12, "Amount, fen"),
    "11": _fixed_n(6, "System Trace Audit Number"),
    "12": _fixed_n(6, "Local time hhmmss"),
    "13": _fixed_n(4, "Local date MMDD"),
    "14": _fixed_n(4, "Card expiry YYMM"),
    "15": _fixed_n(4, "Settlement date MMDD"),
    "22": _fixed_n(3, "POS entry mode", pad="right_pad"),
    "23": _fixed_n(3, "Card sequence number", pad="left_pad"),
    "25": _fixed_n(2, "POS condition code"),
    "26": _fixed_n(2, "PIN capture code"),
    "32": _var_n(1, 11, "Acquiring institution id"),
    "35": _var_n(1, 37, "Track 2 data"),
    "37": _fixed_a(12, "Retrieval reference number"),
    "38": _fixed_a(6, "Authorization id"),
    "39": _fixed_a(2, "Response code"),
    "41": _fixed_a(8, "Terminal id"),
    "42": _fixed_a(15, "Merchant id"),
    "44": _var_a(1, 25, "Additional response data"),
    "48": _var_n(2, 322, "Settlement totals / batch upload"),
    "49": _fixed_a(3, "Currency"),
    "52": _fixed_b(8, "PIN block"),
    "53": _fixed_n(16, "Security control info"),
    "54": _var_a(2, 20, "Balance"),
    "55": _var_b(2, 255, "ICC data"),
    "60": _var_n(2, 17, "Transaction type, batch, network code"),
    "61": _var_n(2, 29, "Original transaction"),
    "62": _var_b(2, 512, "Working keys"),
    "63": _var_a(2, 163, "Operator / card organisation"),
    "64": _fixed_b(8, "MAC"),
}

# Field numbers 2..64 that this contract defines; anything else is a format error.
NUMERIC_FIELDS: frozenset[str] = frozenset(
    {"t", "2", "3", "4", "11", "12", "13", "14", "15", "22", "23", "25", "26", "32", "48", "53",
     "60", "61"}
)
BINARY_FIELDS: frozenset[str] = frozenset({"52", "55", "62", "64"})
TRACK2_FIELDS: frozenset[str] = frozenset({"35"})
