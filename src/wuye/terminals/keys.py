"""Terminal master keys: generation, key check values and the two-component export.

A TMK is a double-length 3DES key (16 bytes, odd parity). Its key check value (KCV) is the
first bytes of the key's 3DES encryption of eight zero bytes (``psec.des.generate_kcv``), the
same value the acquirer and the device show, so a key loaded by hand can be checked.

Export for loading into a device: two random components whose XOR is the key, each with its
own KCV, to be handed to two different key custodians (split knowledge, dual control). Each
export draws new components.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from psec.des import adjust_key_parity, generate_kcv

KEY_BYTES = 16
KCV_BYTES = 3


class TmkFormatError(ValueError):
    """A key is not 16 bytes (32 hex digits)."""


def _kcv(key: bytes) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_kcv(key, KCV_BYTES).hex().upper()


def tmk_generate() -> bytes:
    """Return a new random double-length 3DES key with odd parity."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adjust_key_parity(secrets.token_bytes(KEY_BYTES))


def tmk_parse(text: str) -> bytes:
    """Return the key given as 32 hex digits; raise TmkFormatError for anything else."""
    clean = text.strip().replace(" ", "")
    try:
        key = bytes.fromhex(clean)
    except ValueError:
        raise TmkFormatError("TMK: 32 hex digits expected") from None
    if len(key) != KEY_BYTES:
        raise TmkFormatError("TMK: 32 hex digits expected")
    return key


def kcv(key: bytes) -> str:
    """Return the key check value of ``key`` (6 hex digits); raise TmkFormatError on length."""
    if len(key) != KEY_BYTES:
        raise TmkFormatError("TMK: 16 bytes expected")
    return _kcv(key)


@dataclass(frozen=True)
class KeyComponents:
    """Two components whose XOR is the key, each with its KCV, and the key's KCV."""

    component_1: str
    kcv_1: str
    component_2: str
    kcv_2: str
    kcv: str


def split_components(key: bytes) -> KeyComponents:
    """Split ``key`` into two fresh random components (XOR) for loading into a device."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = adjust_key_parity(secrets.token_bytes(KEY_BYTES))
    second = bytes(a ^ b for a, b in zip(key, first, strict=True))
    return KeyComponents(
        component_1=first.hex().upper(),
        kcv_1=_kcv(first),
        component_2=second.hex().upper(),
        kcv_2=_kcv(second),
        kcv=kcv(key),
    )


def join_components(first: str, second: str) -> bytes:
    """Return the key the two hex components make (what a device does when keys are loaded)."""
    a, b = tmk_parse(first), tmk_parse(second)
    return bytes(x ^ y for x, y in zip(a, b, strict=True))
