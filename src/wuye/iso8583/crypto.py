"""Keys, PIN blocks and MACs of the POS ↔ acquirer contract (``pos-iso8583.md`` §4).

DES and 3DES run through ``cryptography``'s TripleDES (from ``hazmat.decrepit``, where it lives
now) with 24-byte keys: a double-length key K1‖K2 runs as K1‖K2‖K1 and a single-length key as
K‖K‖K, which is single DES. ISO 9564 format 0 PIN blocks are laid out by ``psec``.
"""

from __future__ import annotations

import secrets
import struct
from functools import lru_cache
from typing import Any, Final

import psec.des
import psec.pinblock
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from wuye.iso8583 import codec

__all__ = [
    "KeyCheckError",
    "PinBlockError",
    "build_field62",
    "decrypt_key",
    "encrypt_key",
    "generate_key",
    "kcv",
    "mac",
    "mac_message",
    "parse_field62",
    "pin_block",
    "pin_from_block",
    "verify_mac",
]

ZERO_BLOCK: Final = bytes(8)
FIELD62_LEN: Final = 40


class KeyCheckError(ValueError):
    """A working key whose check value does not match, or a key of the wrong length."""


class PinBlockError(ValueError):
    """A PIN or PIN block that cannot be what ISO 9564 format 0 allows."""


def _key24(key: bytes) -> bytes:
    if len(key) == 8:
        return key * 3
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise KeyCheckError(f"DES key must be 8, 16 or 24 bytes, got {len(key)}")


@lru_cache(maxsize=512)
def _ciphers(key: bytes) -> tuple[Any, Any]:
    # The contract mandates ECB on single 8-byte blocks (keys, PIN blocks, MAC steps); ECB keeps
    # no state between update() calls, so one context per key serves every call.
    cipher = Cipher(TripleDES(_key24(key)), modes.ECB())  # noqa: S305
    return cipher.encryptor(), cipher.decryptor()


def _check_blocks(data: bytes) -> None:
    if not data or len(data) % 8:
        raise ValueError(f"data must be a non-empty multiple of 8 bytes, got {len(data)}")


def encrypt(key: bytes, data: bytes) -> bytes:
    """Encrypt whole 8-byte blocks with (3)DES-ECB; raise ``ValueError`` on ragged data."""
    _check_blocks(data)
    return bytes(_ciphers(bytes(key))[0].update(data))


def decrypt(key: bytes, data: bytes) -> bytes:
    """Decrypt whole 8-byte blocks with (3)DES-ECB; raise ``ValueError`` on ragged data."""
    _check_blocks(data)
    return bytes(_ciphers(bytes(key))[1].update(data))


def kcv(key: bytes) -> bytes:
    """Return the key check value: the first 4 bytes of the key's encryption of zeros."""
    return encrypt(key, ZERO_BLOCK)[:4]


def generate_key(length: int = 16) -> bytes:
    """Return a fresh random DES key (8 or 16 bytes) with odd parity."""
    if length not in (8, 16):
        raise ValueError("key length must be 8 or 16")
    return psec.des.adjust_key_parity(secrets.token_bytes(length))


def encrypt_key(tmk: bytes, key: bytes) -> bytes:
    """Encrypt a working key under the TMK (3DES-ECB)."""
    return encrypt(tmk, key)


def decrypt_key(tmk: bytes, enc: bytes) -> bytes:
    """Decrypt a working key that was encrypted under the TMK (3DES-ECB)."""
    return decrypt(tmk, enc)


def mac(mak: bytes, mab: bytes) -> bytes:
    """Return field 64 over ``mab`` by the UnionPay ECB algorithm (8 ASCII hex bytes)."""
    data = mab + bytes(-len(mab) % 8)
    acc = 0
    for block in struct.unpack(f">{len(data) // 8}Q", data):
        acc ^= block
    hexed = acc.to_bytes(8, "big").hex().upper().encode("ascii")
    first = encrypt(mak, hexed[:8])
    mixed = (int.from_bytes(first, "big") ^ int.from_bytes(hexed[8:], "big")).to_bytes(8, "big")
    return encrypt(mak, mixed).hex().upper().encode("ascii")[:8]


def mac_message(fields: codec.Message, mak: bytes) -> bytes:
    """Encode ``fields`` with field 64 set to the MAC over the rest; return the message bytes.

    Raise ``codec.FormatError`` when the fields do not encode.
    """
    body = codec.encode({**fields, "64": ZERO_BLOCK})
    head = body[:-8]
    return head + mac(mak, head)


def verify_mac(body: bytes, mak: bytes) -> bool:
    """Tell whether ``body`` carries field 64 and it is right for ``mak``."""
    if not codec.has_mac(body):
        return False
    return secrets.compare_digest(body[-8:], mac(mak, body[:-8]))


def _pan_digits(pan: str) -> str:
    if not (12 < len(pan) <= 19 and pan.isdigit()):
        raise PinBlockError("PAN must be 13 to 19 digits")
    return pan


def pin_block(pin: str, pan: str, pik: bytes) -> bytes:
    """Return the ISO 9564 format 0 PIN block under PIK (8 bytes).

    Raise ``PinBlockError`` when the PIN is not 4 to 12 digits or the PAN not 13 to 19.
    """
    if not (4 <= len(pin) <= 12 and pin.isdigit()):
        raise PinBlockError("PIN must be 4 to 12 digits")
    clear = psec.pinblock.encode_pinblock_iso_0(pin, _pan_digits(pan))
    return encrypt(pik, clear)


def pin_from_block(block: bytes, pan: str, pik: bytes) -> str:
    """Recover the PIN from a format 0 PIN block (host side); raise ``PinBlockError``."""
    if len(block) != 8:
        raise PinBlockError(f"PIN block must be 8 bytes, got {len(block)}")
    clear = decrypt(pik, block)
    try:
        return str(psec.pinblock.decode_pinblock_iso_0(clear, _pan_digits(pan)))
    except ValueError as exc:
        raise PinBlockError(f"PIN block does not decode: {exc}") from None


def build_field62(tmk: bytes, pik: bytes, mak: bytes, single_mak: bool = True) -> bytes:
    """Return sign-on field 62: enc(PIK) + KCV + enc(MAK) [+ 8 zeros if single] + KCV.

    Raise ``KeyCheckError`` when a key has the wrong length.
    """
    if len(tmk) != 16 or len(pik) != 16:
        raise KeyCheckError("TMK and PIK must be 16 bytes")
    if len(mak) != (8 if single_mak else 16):
        raise KeyCheckError(f"MAK must be {8 if single_mak else 16} bytes")
    enc_mak = encrypt_key(tmk, mak)
    if single_mak:
        enc_mak += ZERO_BLOCK
    return encrypt_key(tmk, pik) + kcv(pik) + enc_mak + kcv(mak)


def parse_field62(tmk: bytes, data: bytes) -> tuple[bytes, bytes]:
    """Decrypt (PIK, MAK) from sign-on field 62 and verify both check values.

    A MAK whose second 8 encrypted bytes are zero is single-length (8 bytes returned).
    Raise ``KeyCheckError`` naming the key whose check value is wrong, or on a bad length.
    """
    if len(data) != FIELD62_LEN:
        raise KeyCheckError(f"field 62 must be {FIELD62_LEN} bytes, got {len(data)}")
    if len(tmk) != 16:
        raise KeyCheckError("TMK must be 16 bytes")
    pik = decrypt_key(tmk, data[0:16])
    if not secrets.compare_digest(kcv(pik), data[16:20]):
        raise KeyCheckError("PIK check value does not match")
    enc_mak = data[20:36]
    mak = decrypt_key(tmk, enc_mak[:8]) if enc_mak[8:] == ZERO_BLOCK else decrypt_key(tmk, enc_mak)
    if not secrets.compare_digest(kcv(mak), data[36:40]):
        raise KeyCheckError("MAK check value does not match")
    return pik, mak
