"""The terminal's use of ``wuye.iso8583`` (codec, crypto, fields): frames in, frames out.

Everything ISO 8583 the terminal does goes through this module, so the engine deals in
field dicts and this is the one place that knows the codec's API.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from wuye.iso8583 import codec, crypto
from wuye.iso8583.fields import TEST_CARDS, Field60

MAC_MTIS = frozenset({"0200", "0210", "0220", "0230", "0400", "0410"})
TEST_PANS = frozenset(card.pan for card in TEST_CARDS)


@dataclass
class Reply:
    """A decoded response: its fields, the header's processing requirement, MAC verdict."""

    fields: dict[str, Any]
    processing: int
    mac_ok: bool | None


def _version_bcd(app_version: str) -> str:
    parts = [p for p in app_version.split(".") if p.isdigit()][:3]
    parts += ["0"] * (3 - len(parts))
    return "".join(f"{int(p) % 100:02d}" for p in parts)


def build_frame(
    fields: codec.Message, *, tpdu_dest: str, training: bool, app_version: str, mak: bytes | None
) -> bytes:
    """Encode ``fields`` (with field 64 when ``mak`` is given and the MTI carries one).

    Raises codec.FormatError naming the field that does not encode.
    """
    if mak is not None and fields["t"] in MAC_MTIS:
        body = crypto.mac_message(fields, mak)
    else:
        body = codec.encode(fields)
    header = codec.Header(
        status=1 if training else 0, processing=0, app_version=_version_bcd(app_version)
    ).pack()
    tpdu = bytes.fromhex(f"60{tpdu_dest}0000")
    return codec.frame(body, tpdu=tpdu, header=header)


def parse_frame(data: bytes, *, mak: bytes | None) -> Reply:
    """Decode a response frame. Raises codec.FormatError when it is not this contract's."""
    _, header, body = codec.unframe(data)
    fields = codec.decode(body)
    processing = codec.Header.unpack(header).processing
    mac_ok = None
    if mak is not None and fields.get("t") in MAC_MTIS:
        mac_ok = crypto.verify_mac(body, mak)
    return Reply(fields=dict(fields), processing=processing, mac_ok=mac_ok)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise codec.ConnectionClosed(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_frame(sock: socket.socket) -> bytes:
    """Read one frame (length prefix included) from a blocking socket.

    Raises codec.ConnectionClosed when the peer closes, TimeoutError/OSError from the socket.
    """
    prefix = _read_exactly(sock, 2)
    return prefix + _read_exactly(sock, int.from_bytes(prefix, "big"))


def field60(txn_type: str, batch: str, network: str, *, cap: str = "", chip: str = "") -> str:
    """Return field 60 (60.4 and 60.5 only for financial messages)."""
    return Field60(txn_type, batch, network, cap, chip).build()


def parse_field60(value: str) -> dict[str, str]:
    """Return field 60's parts (``batch`` empty when the field is absent or malformed)."""
    try:
        f = Field60.parse(value)
    except codec.FormatError:
        return {"batch": ""}
    return {"type": f.txn_type, "batch": f.batch, "network": f.network_code}


def working_keys(tmk: bytes, field62: bytes) -> tuple[bytes, bytes]:
    """Return (PIK, MAK) from sign-on field 62. Raises ValueError when a check value is wrong."""
    return crypto.parse_field62(tmk, bytes(field62))


def pin_block(pin: str, pan: str, pik: bytes) -> bytes:
    """Return the ISO 9564 format 0 PIN block under PIK. Raises ValueError on a bad PIN."""
    return crypto.pin_block(pin, pan, pik)


def parse_balance(value: str) -> int | None:
    """Return the balance in fen from field 54, or None when it cannot be read.

    Accepts UnionPay's layout (account type, amount type, currency, ``C``/``D``, 12 digits)
    and a plain run of digits.
    """
    value = (value or "").strip()
    if len(value) >= 13 and value[-13] in "CD" and value[-12:].isdigit():
        amount = int(value[-12:])
        return -amount if value[-13] == "D" else amount
    if value.isdigit():
        return int(value)
    return None
