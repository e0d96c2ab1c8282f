"""The WeChat Pay keys, read from the key directory (encrypted at rest), demo keys made once.

Files in ``settings.WUYE_WECHAT_KEY_DIR`` (default ``$WUYE_DATA_DIR/wechat``):

- ``merchant_key.pem.enc`` — the merchant's API private key (signs our requests);
- ``merchant_pub.pem`` — its public half (the simulator checks our signatures with it);
- ``platform_key.pem.enc`` — demo only: the simulator's platform private key;
- ``platform_pub.pem`` — the platform public key or certificate (checks WeChat's signatures);
- ``apiv3_key.enc`` — the 32-byte APIv3 key (decrypts notification resources);
- ``v2_key.enc`` — the 32-character API v2 key (signs 付款码 calls).

``*.enc`` files hold ``wuye.core.crypto.encrypt_text`` of their content.
"""

from __future__ import annotations

import os
import secrets
import string
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from wuye.channels.wechat import wire
from wuye.core.crypto import decrypt_text, encrypt_text

_lock = threading.Lock()


@dataclass(frozen=True)
class WechatKeys:
    merchant_key: rsa.RSAPrivateKey
    merchant_pub: rsa.RSAPublicKey
    platform_pub: rsa.RSAPublicKey
    platform_key: rsa.RSAPrivateKey | None
    apiv3_key: bytes
    v2_key: str


def key_dir() -> Path:
    """Return the directory of the WeChat Pay keys."""
    configured = getattr(settings, "WUYE_WECHAT_KEY_DIR", "")
    return Path(configured) if configured else Path(settings.DATA_DIR) / "wechat"


def _write(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def keys_write(
    directory: Path,
    *,
    merchant_key_pem: str,
    platform_pub_pem: str,
    apiv3_key: str,
    v2_key: str,
    platform_key_pem: str = "",
) -> None:
    """Write a key set into ``directory``, the secrets encrypted with the field key.

    Raise ValueError when the APIv3 key is not 32 characters or a PEM does not load.
    """
    if len(apiv3_key.encode()) != 32:
        raise ValueError("APIv3 key: 32 characters expected")
    merchant = wire.load_private_key(merchant_key_pem)
    wire.load_public_key(platform_pub_pem)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / "merchant_key.pem.enc", encrypt_text(merchant_key_pem))
    _write(directory / "merchant_pub.pem", wire.public_key_pem(merchant.public_key()))
    _write(directory / "platform_pub.pem", platform_pub_pem)
    _write(directory / "apiv3_key.enc", encrypt_text(apiv3_key))
    _write(directory / "v2_key.enc", encrypt_text(v2_key))
    if platform_key_pem:
        _write(directory / "platform_key.pem.enc", encrypt_text(platform_key_pem))


def _demo_keys(directory: Path) -> None:
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    alphabet = string.ascii_letters + string.digits
    keys_write(
        directory,
        merchant_key_pem=wire.private_key_pem(merchant),
        platform_pub_pem=wire.public_key_pem(platform.public_key()),
        apiv3_key="".join(secrets.choice(alphabet) for _ in range(32)),
        v2_key="".join(secrets.choice(alphabet) for _ in range(32)),
        platform_key_pem=wire.private_key_pem(platform),
    )


@cache
def _load(directory: str) -> WechatKeys:
    path = Path(directory)
    with _lock:
        if not (path / "merchant_key.pem.enc").exists():
            _demo_keys(path)
    platform_key_file = path / "platform_key.pem.enc"
    return WechatKeys(
        merchant_key=wire.load_private_key(
            decrypt_text((path / "merchant_key.pem.enc").read_text())
        ),
        merchant_pub=wire.load_public_key((path / "merchant_pub.pem").read_text()),
        platform_pub=wire.load_public_key((path / "platform_pub.pem").read_text()),
        platform_key=(
            wire.load_private_key(decrypt_text(platform_key_file.read_text()))
            if platform_key_file.exists()
            else None
        ),
        apiv3_key=decrypt_text((path / "apiv3_key.enc").read_text()).encode(),
        v2_key=decrypt_text((path / "v2_key.enc").read_text()),
    )


def keys_get() -> WechatKeys:
    """Return the configured keys, generating a demo set into an empty key directory."""
    return _load(str(key_dir()))
