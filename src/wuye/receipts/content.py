"""What a receipt says: a frozen snapshot that payments build and receipts store and render.

The payment service fills a :class:`ReceiptContent` inside its transaction and hands it to
``receipts.services.receipt_issue``; the receipt keeps it as JSON and never changes it, so a
reprint years later prints exactly what the payer was given. Money is integer fen throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


class ReceiptContentError(ValueError):
    """Raised when receipt content is malformed (a float amount, a naive time, a bad line)."""


def _check_int(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    # bool is an int subclass; an amount of True is a bug, not one fen.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ReceiptContentError(f"{name} must be an integer number of fen, got {value!r}")


@dataclass(frozen=True)
class ReceiptLine:
    """One settled bill on a receipt: what it was for and how this payment settled it."""

    fee_item: str
    period: str
    principal_fen: int
    late_fee_fen: int
    waived_fen: int
    paid_fen: int
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("principal_fen", "late_fee_fen", "waived_fen", "paid_fen"):
            _check_int(name, getattr(self, name))


_INT_FIELDS = ("amount_fen", "prepaid_credit_fen")
_OPTIONAL_INT_FIELDS = ("tendered_fen", "change_fen", "prepaid_balance_after_fen")


@dataclass(frozen=True, kw_only=True)
class ReceiptContent:
    """Everything printed on a receipt, as given at the moment of payment."""

    company_name: str
    company_uscc: str
    community_name: str
    community_phone: str
    household_label: str
    payer_name: str
    lines: tuple[ReceiptLine, ...]
    amount_fen: int
    channel: str
    channel_label: str
    funding_source: str = ""
    masked_pan: str = ""
    rrn: str = ""
    auth_code: str = ""
    cashier_name: str = ""
    tendered_fen: int | None = None
    change_fen: int | None = None
    prepaid_credit_fen: int = 0
    prepaid_balance_after_fen: int | None = None
    allocation_note: str = ""
    paid_at: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            if not isinstance(line, ReceiptLine):
                raise ReceiptContentError(f"lines must be ReceiptLine, got {line!r}")
        for name in _INT_FIELDS:
            _check_int(name, getattr(self, name))
        for name in _OPTIONAL_INT_FIELDS:
            _check_int(name, getattr(self, name), optional=True)
        if not isinstance(self.paid_at, datetime) or self.paid_at.tzinfo is None:
            raise ReceiptContentError("paid_at must be an aware datetime")
        if self.masked_pan and _looks_like_full_pan(self.masked_pan):
            # A receipt is printed and stored: never let a full card number reach it.
            raise ReceiptContentError("masked_pan must be masked (first 6 and last 4 only)")

    @property
    def lines_paid_fen(self) -> int:
        """Return the sum paid on the lines (the amount less any surplus to prepaid)."""
        return sum(line.paid_fen for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the content as a JSON-ready dict (the time as ISO 8601 with its offset)."""
        # Built by hand: dataclasses.asdict deep-copies and costs ~10x on the payment path.
        data = {name: getattr(self, name) for name in _CONTENT_FIELDS}
        data["lines"] = [
            {name: getattr(line, name) for name in _LINE_FIELDS} for line in self.lines
        ]
        data["paid_at"] = self.paid_at.isoformat()
        return data

    def to_json(self) -> str:
        """Return the content as a JSON string; ``from_json`` gives back an equal object."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> ReceiptContent:
        """Return the content stored by ``to_json`` (a string) or ``to_dict`` (a dict).

        Raises ReceiptContentError on unknown or missing fields or wrongly typed amounts.
        """
        raw: Any = json.loads(data) if isinstance(data, str | bytes) else dict(data)
        if not isinstance(raw, dict):
            raise ReceiptContentError("receipt content must be a JSON object")
        unknown = set(raw) - set(_CONTENT_FIELDS)
        if unknown:
            raise ReceiptContentError(f"unknown receipt fields: {sorted(unknown)}")
        try:
            lines = tuple(ReceiptLine(**line) for line in raw.pop("lines"))
            paid_at = datetime.fromisoformat(raw.pop("paid_at"))
            return cls(lines=lines, paid_at=paid_at, **raw)
        except (KeyError, TypeError) as exc:
            raise ReceiptContentError(f"malformed receipt content: {exc}") from exc


_LINE_FIELDS = tuple(f.name for f in fields(ReceiptLine))
_CONTENT_FIELDS = tuple(f.name for f in fields(ReceiptContent))


def _looks_like_full_pan(value: str) -> bool:
    digits = "".join(ch for ch in value if ch.isdigit())
    return len(digits) > 10
