"""Builders and parsers for the structured fields (22, 48, 60, 61), response codes, test cards.

Every parser raises ``codec.FormatError`` naming the field when the digits cannot be that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from wuye.iso8583.codec import FormatError

__all__ = [
    "MAX_BATCH_ITEMS",
    "RESPONSE_CODES",
    "TEST_CARDS",
    "BatchItem",
    "EntryMedium",
    "Field60",
    "Field61",
    "SettlementField48",
    "TestCard",
    "Totals",
    "build_batch_end_48",
    "build_batch_upload_48",
    "entry_mode",
    "parse_batch_end_48",
    "parse_batch_upload_48",
    "parse_entry_mode",
    "test_card",
]

MAX_BATCH_ITEMS: Final = 8


def _digits(field: str, value: str, width: int, what: str) -> str:
    if len(value) != width or not value.isdigit():
        raise FormatError(field, f"{what} must be {width} digits, got {value!r}")
    return value


def _num(field: str, value: int, width: int, what: str) -> str:
    if not (0 <= value < 10**width):
        raise FormatError(field, f"{what} {value} does not fit {width} digits")
    return f"{value:0{width}d}"


# ---- field 22 ------------------------------------------------------------------------------


class EntryMedium(StrEnum):
    """How the card was read: the first two digits of field 22."""

    KEYED = "01"
    STRIPE = "02"
    CHIP = "05"
    CONTACTLESS = "07"


def entry_mode(medium: EntryMedium | str, *, pin_entered: bool) -> str:
    """Return field 22 (n3) for a read ``medium`` and whether a PIN was entered."""
    return f"{EntryMedium(medium).value}{'1' if pin_entered else '2'}"


def parse_entry_mode(value: str) -> tuple[EntryMedium, bool]:
    """Return (medium, pin_entered) from field 22; raise ``FormatError``."""
    _digits("22", value, 3, "entry mode")
    try:
        medium = EntryMedium(value[:2])
    except ValueError:
        raise FormatError("22", f"unknown entry medium {value[:2]!r}") from None
    if value[2] not in "12":
        raise FormatError("22", f"PIN capability digit must be 1 or 2, got {value[2]!r}")
    return medium, value[2] == "1"


# ---- field 60 / 61 -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field60:
    """60.1 type code, 60.2 batch, 60.3 network code, [60.4 capability, 60.5 chip condition]."""

    txn_type: str
    batch: str
    network_code: str = "000"
    capability: str = ""
    chip_condition: str = ""

    def build(self) -> str:
        """Return the field's digits; raise ``FormatError`` on a malformed part."""
        _digits("60", self.txn_type, 2, "60.1 transaction type")
        _digits("60", self.batch, 6, "60.2 batch number")
        _digits("60", self.network_code, 3, "60.3 network management code")
        if bool(self.capability) != bool(self.chip_condition):
            raise FormatError("60", "60.4 and 60.5 come together or not at all")
        if self.capability:
            _digits("60", self.capability, 1, "60.4 terminal capability")
            _digits("60", self.chip_condition, 1, "60.5 chip condition")
        return (
            self.txn_type + self.batch + self.network_code + self.capability + self.chip_condition
        )

    @classmethod
    def parse(cls, value: str) -> Field60:
        """Parse field 60's digits; raise ``FormatError``."""
        if len(value) not in (11, 13) or not value.isdigit():
            raise FormatError("60", f"must be 11 or 13 digits, got {value!r}")
        return cls(value[0:2], value[2:8], value[8:11], value[11:12], value[12:13])


@dataclass(frozen=True, slots=True)
class Field61:
    """61.1 original batch, 61.2 original STAN, [61.3 original date MMDD, refunds only]."""

    batch: str
    stan: str
    date: str = ""

    def build(self) -> str:
        """Return the field's digits; raise ``FormatError`` on a malformed part."""
        _digits("61", self.batch, 6, "61.1 original batch")
        _digits("61", self.stan, 6, "61.2 original STAN")
        if self.date:
            _digits("61", self.date, 4, "61.3 original date")
        return self.batch + self.stan + self.date

    @classmethod
    def parse(cls, value: str) -> Field61:
        """Parse field 61's digits; raise ``FormatError``."""
        if len(value) not in (12, 16) or not value.isdigit():
            raise FormatError("61", f"must be 12 or 16 digits, got {value!r}")
        return cls(value[0:6], value[6:12], value[12:16])


# ---- field 48 ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    """One half of settlement field 48: debit and credit sums (fen) and counts."""

    debit_fen: int = 0
    debit_count: int = 0
    credit_fen: int = 0
    credit_count: int = 0

    def build(self, code: str = "0") -> str:
        """Return the 31 digits of these totals followed by ``code``; raise ``FormatError``."""
        _digits("48", code, 1, "settlement code")
        return (
            _num("48", self.debit_fen, 12, "debit total")
            + _num("48", self.debit_count, 3, "debit count")
            + _num("48", self.credit_fen, 12, "credit total")
            + _num("48", self.credit_count, 3, "credit count")
            + code
        )

    @classmethod
    def parse(cls, value: str) -> tuple[Totals, str]:
        """Parse 31 digits into (totals, code); raise ``FormatError``."""
        _digits("48", value, 31, "settlement totals")
        totals = cls(int(value[0:12]), int(value[12:15]), int(value[15:27]), int(value[27:30]))
        return totals, value[30]


@dataclass(frozen=True, slots=True)
class SettlementField48:
    """Field 48 of 0500/0510: domestic then foreign totals, each with its code digit.

    In 0500 the codes are ``0``; in 0510 they carry the verdict: ``1`` balanced, ``2`` not
    balanced, ``3`` error.
    """

    domestic: Totals
    domestic_code: str = "0"
    foreign: Totals = Totals()
    foreign_code: str = "0"

    def build(self) -> str:
        """Return the 62 digits; raise ``FormatError``."""
        return self.domestic.build(self.domestic_code) + self.foreign.build(self.foreign_code)

    @classmethod
    def parse(cls, value: str) -> SettlementField48:
        """Parse the 62 digits; raise ``FormatError``."""
        _digits("48", value, 62, "settlement field 48")
        domestic, dcode = Totals.parse(value[:31])
        foreign, fcode = Totals.parse(value[31:])
        return cls(domestic, dcode, foreign, fcode)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One batch-upload item: card organisation, STAN, PAN, amount (fen)."""

    stan: str
    pan: str
    amount_fen: int
    card_org: str = "00"

    def build(self) -> str:
        """Return the item's 40 digits; raise ``FormatError``."""
        _digits("48", self.card_org, 2, "card organisation")
        _digits("48", self.stan, 6, "STAN")
        if not (self.pan.isdigit() and len(self.pan) <= 20):
            raise FormatError("48", "PAN must be at most 20 digits")
        return self.card_org + self.stan + self.pan.zfill(20) + _num(
            "48", self.amount_fen, 12, "amount"
        )


def build_batch_upload_48(items: list[BatchItem]) -> str:
    """Return field 48 of a 0320 detail message (1..8 items); raise ``FormatError``."""
    if not (1 <= len(items) <= MAX_BATCH_ITEMS):
        raise FormatError("48", f"a batch upload message carries 1 to {MAX_BATCH_ITEMS} items")
    return f"{len(items):02d}" + "".join(item.build() for item in items)


def parse_batch_upload_48(value: str) -> list[BatchItem]:
    """Parse field 48 of a 0320 detail message; raise ``FormatError``."""
    if len(value) < 2 or not value.isdigit():
        raise FormatError("48", "batch upload must be digits starting with a 2-digit count")
    count = int(value[:2])
    if not (1 <= count <= MAX_BATCH_ITEMS) or len(value) != 2 + 40 * count:
        raise FormatError("48", f"count {count} disagrees with {len(value)} digits")
    items = []
    for i in range(count):
        chunk = value[2 + 40 * i : 42 + 40 * i]
        pan = chunk[8:28].lstrip("0")
        items.append(BatchItem(stan=chunk[2:8], pan=pan, amount_fen=int(chunk[28:40]),
                               card_org=chunk[0:2]))
    return items


def build_batch_end_48(total_items: int) -> str:
    """Return field 48 of the 0320 end message (total items sent, n4)."""
    return _num("48", total_items, 4, "total items")


def parse_batch_end_48(value: str) -> int:
    """Parse field 48 of the 0320 end message; raise ``FormatError``."""
    return int(_digits("48", value, 4, "total items"))


# ---- response codes ------------------------------------------------------------------------

RESPONSE_CODES: Final[dict[str, tuple[str, str]]] = {
    "00": ("交易成功", "Approved"),
    "03": ("无效商户", "Invalid merchant"),
    "05": ("不予承兑", "Do not honour"),
    "12": ("无效交易", "Invalid transaction"),
    "13": ("无效金额", "Invalid amount"),
    "14": ("无效卡号", "Invalid card number"),
    "25": ("找不到原始交易", "Original transaction not found"),
    "30": ("报文格式错误", "Format error"),
    "51": ("余额不足", "Insufficient funds"),
    "54": ("卡已过期", "Expired card"),
    "55": ("密码错误", "Incorrect PIN"),
    "75": ("密码错误次数超限", "PIN tries exceeded"),
    "94": ("重复交易", "Duplicate transmission"),
    "96": ("系统故障", "System malfunction"),
    "97": ("终端未登记", "Terminal not registered"),
    "A0": ("MAC校验错", "MAC check failed"),
}


# ---- test cards ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestCard:
    """A card of the contract's test table and how the host treats it."""

    __test__ = False  # not a pytest test class

    pan: str
    card_type: str  # "DEBIT" or "CREDIT"
    response_code: str = "00"  # fixed answer for a purchase when not "00"
    pin: str = "123456"
    expiry: str = "3012"
    balance_fen: int | None = None  # debit cards: what the account holds
    limit_fen: int | None = None  # credit cards: the credit limit
    never_answers: bool = False
    no_pin_below_fen: int = 0  # contactless: no PIN needed under this amount


TEST_CARDS: Final[tuple[TestCard, ...]] = (
    TestCard("6222021000000000017", "DEBIT", balance_fen=10_000_000),
    TestCard("6228480000000000026", "DEBIT", balance_fen=5_000),
    TestCard("6259000000000000030", "CREDIT", limit_fen=5_000_000),
    TestCard("6234560000000000043", "DEBIT", response_code="54"),
    TestCard("6222021000000000058", "DEBIT", response_code="05"),
    TestCard("6217000000000000061", "DEBIT", never_answers=True),
    TestCard("6222021000000000074", "DEBIT", pin="654321", balance_fen=10_000_000),
    TestCard("6258000000000000081", "CREDIT", limit_fen=5_000_000, no_pin_below_fen=100_000),
)


def test_card(pan: str) -> TestCard | None:
    """Return the test card with this PAN, or ``None``."""
    for card in TEST_CARDS:
        if card.pan == pan:
            return card
    return None


test_card.__test__ = False  # type: ignore[attr-defined]
