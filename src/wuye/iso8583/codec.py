"""Encode, decode and frame the ISO 8583 messages of the POS ↔ acquirer contract.

A message is a ``dict`` keyed as pyiso8583 keys it: ``"t"`` for the MTI and ``"2"`` … ``"64"``
for the fields. Numeric and text fields are ``str``; binary fields (52, 55, 62, 64) are
``bytes``; track 2 (35) is a ``str`` with ``=`` as the separator. The bitmap is derived, never
passed in and never returned.

On the wire a frame is ``LEN(2, big-endian) + TPDU(5) + HEADER(6) + message``
(``shared/spec/pos-iso8583.md`` §1). :func:`frame` and :func:`read_frame` include the two length
bytes; :func:`unframe` takes them back off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final

import iso8583
from iso8583.decoder import DecodeError
from iso8583.encoder import EncodeError

from wuye.iso8583.spec import BINARY_FIELDS, NUMERIC_FIELDS, SPEC, TRACK2_FIELDS

__all__ = [
    "DEFAULT_TPDU",
    "ConnectionClosed",
    "FormatError",
    "Header",
    "Message",
    "decode",
    "encode",
    "frame",
    "has_mac",
    "mab",
    "read_frame",
    "reply_tpdu",
    "unframe",
    "write_frame",
]

Message = dict[str, str | bytes]

DEFAULT_TPDU: Final = bytes.fromhex("6000030000")
TPDU_LEN: Final = 5
HEADER_LEN: Final = 6
_ALLOWED_KEYS: Final = frozenset({"t", *(str(n) for n in range(2, 65))})
_DIGITS: Final = frozenset("0123456789")
_TRACK2: Final = frozenset("0123456789=")


class FormatError(ValueError):
    """A message, field or frame that does not follow the contract; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field {field}: {message}")
        self.field = field
        self.reason = message


class ConnectionClosed(EOFError):
    """The peer closed the connection before a whole frame arrived."""


def _check_field(key: str, value: object) -> None:
    """Raise ``FormatError`` if ``value`` cannot be field ``key`` (the slow, precise path)."""
    if key not in _ALLOWED_KEYS:
        raise FormatError(key, "no such field in this contract (only t and 2..64)")
    if key in BINARY_FIELDS:
        if not isinstance(value, bytes | bytearray):
            raise FormatError(key, "binary field must be bytes")
        return
    if not isinstance(value, str):
        raise FormatError(key, "must be str")
    if key in NUMERIC_FIELDS and not (value.isascii() and value.isdigit()):
        raise FormatError(key, f"numeric field holds non-digits: {value!r}")
    if key in TRACK2_FIELDS and not _TRACK2.issuperset(value):
        raise FormatError(key, "track 2 holds characters other than digits and '='")


def encode(fields: Message) -> bytes:
    """Pack a message (MTI, bitmap, fields) into bytes; raise ``FormatError`` naming the field."""
    if "t" not in fields:
        raise FormatError("t", "message type is missing")
    doc: dict[str, Any] = dict(fields)
    try:
        numeric = "".join([doc[k] for k in NUMERIC_FIELDS.intersection(doc)])
        if not (numeric.isascii() and numeric.isdigit()) or not _ALLOWED_KEYS.issuperset(doc):
            raise TypeError
        for key in BINARY_FIELDS.intersection(doc):
            doc[key] = doc[key].hex()
        if "35" in doc:
            if not _TRACK2.issuperset(doc["35"]):
                raise TypeError
            doc["35"] = doc["35"].replace("=", "D")
        packed, _ = iso8583.encode(doc, SPEC)
    except EncodeError as exc:
        for key, value in fields.items():
            _check_field(key, value)
        raise FormatError(str(exc.field), exc.msg) from None
    except (TypeError, AttributeError):
        for key, value in fields.items():
            _check_field(key, value)
        raise FormatError("?", "a field has the wrong type") from None
    return bytes(packed)


def decode(body: bytes) -> Message:
    """Unpack a message (no TPDU, no header) into a dict; raise ``FormatError`` naming the field."""
    try:
        doc, _ = iso8583.decode(body, SPEC)
    except DecodeError as exc:
        raise FormatError(str(exc.field), f"{exc.msg} (byte {exc.pos})") from None
    doc.pop("h", None)
    doc.pop("p", None)
    if "1" in doc:
        raise FormatError("1", "secondary bitmap is not used by this contract")
    numeric_keys = NUMERIC_FIELDS.intersection(doc)
    # pyiso8583 gives BCD fields as upper-case hex, so only A-F can be wrong here
    if not "".join([doc[k] for k in numeric_keys]).isdigit():
        for key in numeric_keys:
            if not doc[key].isdigit():
                raise FormatError(key, f"BCD field holds non-digit nibbles: {doc[key]!r}")
    out: dict[str, Any] = doc
    for key in BINARY_FIELDS.intersection(doc):
        out[key] = bytes.fromhex(doc[key])
    if "35" in doc:
        track = doc["35"].replace("D", "=")
        if not _TRACK2.issuperset(track):
            raise FormatError("35", f"track 2 holds invalid nibbles: {doc['35']!r}")
        out["35"] = track
    return out


def has_mac(body: bytes) -> bool:
    """Tell whether bit 64 is set in the message's bitmap; raise ``FormatError`` if too short."""
    if len(body) < 10:
        raise FormatError("p", f"message is {len(body)} bytes, too short for MTI and bitmap")
    return bool(body[9] & 0x01)


def mab(body: bytes) -> bytes:
    """Return the MAC block: every byte from the MTI up to (not including) field 64.

    Field 64 is fixed-length and the last field, so when bit 64 is set the MAB is the message
    less its last 8 bytes. Raise ``FormatError`` when the message is too short.
    """
    if has_mac(body):
        if len(body) < 18:
            raise FormatError("64", "bit 64 set but the message has no room for a MAC")
        return body[:-8]
    return body


@dataclass(frozen=True, slots=True)
class Header:
    """The 6-byte application header: ``60 31 XY`` + 3 bytes BCD application version.

    ``status`` is X (0 normal, 1 test/training); ``processing`` is Y (what the host asks the
    terminal to do next, 0 nothing).
    """

    status: int = 0
    processing: int = 0
    app_version: str = "310000"

    def pack(self) -> bytes:
        """Return the header's 6 bytes; raise ``FormatError`` on out-of-range parts."""
        if not (0 <= self.status <= 9 and 0 <= self.processing <= 9):
            raise FormatError("header", "status and processing must be one digit each")
        if len(self.app_version) != 6 or not _DIGITS.issuperset(self.app_version):
            raise FormatError("header", "application version must be 6 digits")
        return (
            bytes((0x60, 0x31, (self.status << 4) | self.processing))
            + bytes.fromhex(self.app_version)
        )

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parse 6 header bytes; raise ``FormatError`` when they are not this contract's."""
        if len(data) != HEADER_LEN:
            raise FormatError("header", f"{len(data)} bytes, expected {HEADER_LEN}")
        if data[0] != 0x60 or data[1] != 0x31:
            raise FormatError("header", f"expected 60 31, got {data[:2].hex().upper()}")
        version = data[3:].hex()
        if not _DIGITS.issuperset(version):
            raise FormatError("header", f"application version is not BCD: {version}")
        return cls(status=data[2] >> 4, processing=data[2] & 0x0F, app_version=version)


def reply_tpdu(tpdu: bytes) -> bytes:
    """Return the TPDU for an answer: same ID, destination and source swapped."""
    if len(tpdu) != TPDU_LEN:
        raise FormatError("tpdu", f"{len(tpdu)} bytes, expected {TPDU_LEN}")
    return tpdu[:1] + tpdu[3:5] + tpdu[1:3]


def frame(body: bytes, *, tpdu: bytes = DEFAULT_TPDU, header: bytes) -> bytes:
    """Return the wire frame LEN + TPDU + HEADER + body; raise ``FormatError`` on bad parts."""
    if len(tpdu) != TPDU_LEN or tpdu[0] != 0x60:
        raise FormatError("tpdu", f"expected 5 bytes starting 60, got {tpdu.hex().upper()}")
    if len(header) != HEADER_LEN:
        raise FormatError("header", f"{len(header)} bytes, expected {HEADER_LEN}")
    size = TPDU_LEN + HEADER_LEN + len(body)
    if size > 0xFFFF:
        raise FormatError("length", f"frame of {size} bytes does not fit a 2-byte length")
    return size.to_bytes(2, "big") + tpdu + header + body


def unframe(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a wire frame (with its 2 length bytes) into (tpdu, header, body).

    Raise ``FormatError`` when the length disagrees with the data or the TPDU is not ``60…``.
    """
    if len(data) < 2:
        raise FormatError("length", "frame shorter than its length prefix")
    size = int.from_bytes(data[:2], "big")
    if size != len(data) - 2:
        raise FormatError("length", f"prefix says {size} bytes, frame carries {len(data) - 2}")
    if size < TPDU_LEN + HEADER_LEN:
        raise FormatError("length", f"{size} bytes cannot hold TPDU and header")
    tpdu = data[2:7]
    if tpdu[0] != 0x60:
        raise FormatError("tpdu", f"ID byte is {tpdu[0]:02X}, expected 60")
    return tpdu, data[7:13], data[13:]


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one whole frame (length prefix included) from ``reader``.

    Raise ``ConnectionClosed`` when the peer closes before or inside a frame, and
    ``FormatError`` when the length prefix cannot be a frame of this contract.
    """
    try:
        prefix = await reader.readexactly(2)
    except asyncio.IncompleteReadError as exc:
        raise ConnectionClosed("connection closed before a frame") from exc
    size = int.from_bytes(prefix, "big")
    if size < TPDU_LEN + HEADER_LEN:
        raise FormatError("length", f"{size} bytes cannot hold TPDU and header")
    try:
        rest = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ConnectionClosed(f"connection closed inside a {size}-byte frame") from exc
    return prefix + rest


def write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Queue a whole frame (from :func:`frame`) on ``writer``; ``await writer.drain()`` after."""
    writer.write(data)
