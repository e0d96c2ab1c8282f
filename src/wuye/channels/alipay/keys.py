"""RSA keys of the Alipay channel: loading (PEM or Alipay's bare base64) and the demo pair.

Alipay hands out keys as bare base64 (PKCS#8 private, SubjectPublicKeyInfo public); both that
and PEM are accepted. When no key is configured, ``demo_keys`` makes two RSA-2048 pairs once in
``<data dir>/alipay/`` — the app's and the simulated Alipay's — private halves encrypted at rest
with ``wuye.core.crypto`` (the field key), public halves in clear.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


class AlipayKeyError(ValueError):
    """A configured key that is not an RSA key in PEM or base64 DER."""


def _der_or_pem(text: str) -> tuple[bytes, bool]:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode(), True
    try:
        return base64.b64decode("".join(text.split()), validate=True), False
    except ValueError as exc:
        raise AlipayKeyError("RSA key: neither PEM nor base64 DER") from exc


def private_key_load(text: str) -> RSAPrivateKey:
    """Return the RSA private key in ``text``; raise AlipayKeyError if it is not one."""
    data, pem = _der_or_pem(text)
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if pem
            else serialization.load_der_private_key(data, password=None)
        )
    except ValueError as exc:
        raise AlipayKeyError(f"RSA private key unreadable: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise AlipayKeyError("private key: RSA expected")
    return key


def public_key_load(text: str) -> RSAPublicKey:
    """Return the RSA public key in ``text``; raise AlipayKeyError if it is not one."""
    data, pem = _der_or_pem(text)
    try:
        key = (
            serialization.load_pem_public_key(data)
            if pem
            else serialization.load_der_public_key(data)
        )
    except ValueError as exc:
        raise AlipayKeyError(f"RSA public key unreadable: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise AlipayKeyError("public key: RSA expected")
    return key


def private_pem(key: RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass(frozen=True)
class DemoKeys:
    """The demo's two key pairs (PEM text)."""

    app_private: str
    app_public: str
    alipay_private: str
    alipay_public: str


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def demo_keys(data_dir: Path) -> DemoKeys:
    """Return the demo key pairs kept in ``data_dir/alipay``, making them on first use."""
    from wuye.core.crypto import decrypt_text, encrypt_text

    folder = data_dir / "alipay"
    folder.mkdir(parents=True, exist_ok=True)
    pairs: dict[str, tuple[str, str]] = {}
    for who in ("app", "alipay"):
        priv_path = folder / f"{who}_private.pem.enc"
        pub_path = folder / f"{who}_public.pem"
        if not priv_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            tmp = folder / f".{who}.{os.getpid()}.tmp"
            _write(tmp, encrypt_text(private_pem(key)))
            try:
                os.link(tmp, priv_path)  # atomic: a concurrent maker keeps the first pair
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        priv = decrypt_text(priv_path.read_text())
        if not pub_path.exists():
            pub_path.write_text(public_pem(private_key_load(priv).public_key()))
        pairs[who] = (priv, pub_path.read_text())
    return DemoKeys(
        app_private=pairs["app"][0],
        app_public=pairs["app"][1],
        alipay_private=pairs["alipay"][0],
        alipay_public=pairs["alipay"][1],
    )
