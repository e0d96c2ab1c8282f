"""A presented card: what the reader hands the terminal (PAN, expiry, track 2, chip data).

The terminal has no card reader in tests and in the demo, so a card is given as its PAN (and
expiry); this module builds what a reader would produce: the track-2 string for a swipe and a
small but well-formed BER-TLV ICC data object (field 55) for an insert or a tap. The PAN never
leaves this module except into the request fields; ``masked`` is what everything else shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

ENTRY_CODES = {"stripe": "02", "chip": "05", "tap": "07", "manual": "01"}
# Issuer BINs the terminal treats as credit cards (the spec's test cards; a real terminal
# learns this from its card-BIN table).
CREDIT_BINS = ("6259", "6258", "6250", "6253")


class CardError(ValueError):
    """The card number, expiry or entry mode is not usable; the message names which."""


def luhn_ok(pan: str) -> bool:
    """Return whether ``pan``'s last digit is its Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask(pan: str) -> str:
    """Return the PAN with all but the first 6 and last 4 digits replaced by ``*``."""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _tlv(tag: str, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x81, n])
    return bytes.fromhex(tag) + length + value


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits if len(digits) % 2 == 0 else digits + "F")


@dataclass(frozen=True)
class Card:
    """A card as read by the terminal."""

    pan: str
    expiry: str = "3012"
    entry: str = "stripe"

    def __post_init__(self) -> None:
        if not self.pan.isdigit() or not 13 <= len(self.pan) <= 19 or not luhn_ok(self.pan):
            raise CardError("--card: not a card number (13–19 digits with a valid check digit)")
        if (
            len(self.expiry) != 4
            or not self.expiry.isdigit()
            or not 1 <= int(self.expiry[2:]) <= 12
        ):
            raise CardError("--expiry: must be YYMM")
        if self.entry not in ("stripe", "chip", "tap"):
            raise CardError(f"--entry: {self.entry!r} is not one of stripe, chip, tap")

    @property
    def masked(self) -> str:
        """The PAN as the slip and the reports show it."""
        return mask(self.pan)

    @property
    def card_class(self) -> str:
        """``CREDIT`` or ``DEBIT`` (from the BIN)."""
        return "CREDIT" if self.pan.startswith(CREDIT_BINS) else "DEBIT"

    @property
    def is_chip(self) -> bool:
        """Whether the card was read by its chip (insert or tap)."""
        return self.entry in ("chip", "tap")

    def track2(self) -> str:
        """Return track-2 (equivalent) data: PAN ``=`` expiry, service code, discretionary."""
        service = "220" if self.is_chip else "120"
        return f"{self.pan}={self.expiry}{service}0000000000"

    def entry_mode(self, *, pin: bool) -> str:
        """Return field 22 for this read (``051`` chip with PIN, ``022`` swipe without …)."""
        return ENTRY_CODES[self.entry] + ("1" if pin else "2")

    def icc_data(self, *, amount_fen: int, when: datetime, txn_type: str = "00") -> bytes:
        """Return field 55: a minimal ARQC data set as BER-TLV (amount, date, TVR, ATC …)."""
        seed = hashlib.sha256(f"{self.pan}{amount_fen}{when.isoformat()}".encode()).digest()
        aid = bytes.fromhex(
            "A000000333010101" if self.card_class == "DEBIT" else "A000000333010102"
        )
        items = [
            _tlv("9F26", seed[:8]),  # application cryptogram
            _tlv("9F27", b"\x80"),  # cryptogram information: ARQC
            _tlv("9F10", bytes.fromhex("07010103A0A000010A010000000000") + seed[8:9]),
            _tlv("9F37", seed[9:13]),  # unpredictable number
            _tlv("9F36", seed[13:15]),  # application transaction counter
            _tlv("95", bytes(5)),  # terminal verification results
            _tlv("9A", bytes.fromhex(when.strftime("%y%m%d"))),
            _tlv("9C", bytes.fromhex(txn_type)),
            _tlv("9F02", _bcd(f"{amount_fen:012d}")),
            _tlv("5F2A", bytes.fromhex("0156")),
            _tlv("82", bytes.fromhex("7C00")),
            _tlv("9F1A", bytes.fromhex("0156")),
            _tlv("9F03", bytes(6)),
            _tlv("9F33", bytes.fromhex("E0E1C8")),
            _tlv("9F34", bytes.fromhex("020300")),
            _tlv("9F35", bytes.fromhex("22")),
            _tlv("84", aid),
            _tlv("9F09", bytes.fromhex("0020")),
            _tlv("9F41", bytes.fromhex(when.strftime("%H%M%S") + "00")[:4]),
        ]
        return b"".join(items)
