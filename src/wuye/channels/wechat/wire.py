"""WeChat Pay's wire formats, shared by the adapter and the simulator (no Django, no network).

- API v3 request signing, ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  signature=…,timestamp=…,serial_no=…``: RSA-SHA256 (PKCS#1 v1.5) over
  ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` with the merchant's private key.
- Response and notification signatures: the same scheme over ``TIMESTAMP\\nNONCE\\nBODY\\n``
  with the platform's key, sent in ``Wechatpay-Timestamp``/``-Nonce``/``-Signature``/``-Serial``.
- Notification ``resource``: AEAD_AES_256_GCM with the 32-byte APIv3 key, the resource's
  ``nonce`` and ``associated_data``; ``ciphertext`` is base64 of ciphertext ‖ 16-byte tag.
- API v2 (付款码 ``/pay/micropay``, ``/pay/orderquery``, ``/secapi/pay/reverse``): XML bodies
  signed with HMAC-SHA256 over the sorted ``key=value`` pairs joined with ``&`` plus
  ``&key=<v2 key>``, upper-case hex.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import xml.etree.ElementTree as ET
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_S = 300
"""WeChat rejects (and we reject) a signed message more than five minutes from now."""


class WireError(ValueError):
    """A message that is malformed, badly signed or cannot be decrypted."""


def nonce() -> str:
    """Return a fresh 32-character random string."""
    return secrets.token_hex(16)


def rsa_sign(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Return base64 RSA-SHA256 (PKCS#1 v1.5) of ``message``."""
    sig = private_key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(sig).decode()


def rsa_verify(public_key: rsa.RSAPublicKey, message: str, signature: str) -> bool:
    """Return whether ``signature`` (base64) is RSA-SHA256 of ``message`` under ``public_key``."""
    try:
        public_key.verify(
            base64.b64decode(signature, validate=True),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def request_message(method: str, url_path: str, timestamp: str, nonce_str: str, body: str) -> str:
    """Return the string a v3 request signs (``url_path`` includes the query string)."""
    return f"{method.upper()}\n{url_path}\n{timestamp}\n{nonce_str}\n{body}\n"


def authorization(
    *,
    private_key: rsa.RSAPrivateKey,
    mchid: str,
    serial_no: str,
    method: str,
    url_path: str,
    body: str,
    timestamp: int | None = None,
    nonce_str: str | None = None,
) -> str:
    """Return the ``Authorization`` header of a v3 request."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nc = nonce_str or nonce()
    sig = rsa_sign(private_key, request_message(method, url_path, ts, nc, body))
    return (
        f'{SCHEMA} mchid="{mchid}",nonce_str="{nc}",signature="{sig}",'
        f'timestamp="{ts}",serial_no="{serial_no}"'
    )


def parse_authorization(header: str) -> dict[str, str]:
    """Split an ``Authorization`` header into its fields; raise WireError if it is not v3."""
    if not header.startswith(SCHEMA + " "):
        raise WireError("Authorization: not WECHATPAY2-SHA256-RSA2048")
    out: dict[str, str] = {}
    for part in header[len(SCHEMA) + 1 :].split(","):
        name, _sep, value = part.strip().partition("=")
        out[name] = value.strip('"')
    for need in ("mchid", "nonce_str", "signature", "timestamp", "serial_no"):
        if not out.get(need):
            raise WireError(f"Authorization: {need} missing")
    return out


def signed_headers(
    private_key: rsa.RSAPrivateKey, serial: str, body: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """Return the ``Wechatpay-*`` headers the platform puts on a response or notification."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nc = nonce()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nc,
        "Wechatpay-Signature": rsa_sign(private_key, f"{ts}\n{nc}\n{body}\n"),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SCHEMA,
    }


def _header(headers: dict[str, str], name: str) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower(), "")


def verify_signed(
    public_key: rsa.RSAPublicKey,
    serial: str,
    headers: dict[str, str],
    body: str,
    *,
    now_ts: int | None = None,
) -> None:
    """Check the ``Wechatpay-*`` signature of a response or notification body.

    Raise WireError when a header is missing, the serial is not the platform key we know, the
    timestamp is more than five minutes off, or the signature does not verify.
    """
    ts = _header(headers, "Wechatpay-Timestamp")
    nc = _header(headers, "Wechatpay-Nonce")
    sig = _header(headers, "Wechatpay-Signature")
    got_serial = _header(headers, "Wechatpay-Serial")
    if not (ts and nc and sig and got_serial):
        raise WireError("Wechatpay-Timestamp/Nonce/Signature/Serial: missing")
    if got_serial != serial:
        raise WireError(f"Wechatpay-Serial: unknown platform key {got_serial!r}")
    try:
        skew = abs((int(time.time()) if now_ts is None else now_ts) - int(ts))
    except ValueError:
        raise WireError("Wechatpay-Timestamp: not a number") from None
    if skew > MAX_SKEW_S:
        raise WireError("Wechatpay-Timestamp: more than 5 minutes off")
    if not rsa_verify(public_key, f"{ts}\n{nc}\n{body}\n", sig):
        raise WireError("Wechatpay-Signature: does not verify")


def encrypt_resource(
    apiv3_key: bytes, plaintext: dict[str, Any], *, associated_data: str, original_type: str
) -> dict[str, str]:
    """Return a notification ``resource`` holding ``plaintext`` (AEAD_AES_256_GCM)."""
    nc = secrets.token_hex(6)  # WeChat uses a 12-character nonce
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode()
    ct = AESGCM(apiv3_key).encrypt(nc.encode(), data, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ct).decode(),
        "associated_data": associated_data,
        "original_type": original_type,
        "nonce": nc,
    }


def decrypt_resource(apiv3_key: bytes, resource: dict[str, Any]) -> dict[str, Any]:
    """Decrypt a notification ``resource``; raise WireError if it does not open."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise WireError("resource.algorithm: AEAD_AES_256_GCM expected")
    try:
        ct = base64.b64decode(str(resource["ciphertext"]), validate=True)
        plain = AESGCM(apiv3_key).decrypt(
            str(resource["nonce"]).encode(),
            ct,
            str(resource.get("associated_data", "")).encode(),
        )
        out = json.loads(plain)
    except (KeyError, ValueError, InvalidTag) as exc:
        raise WireError(f"resource: cannot decrypt ({exc.__class__.__name__})") from None
    if not isinstance(out, dict):
        raise WireError("resource: not a JSON object")
    return out


# --- API v2 (付款码) ------------------------------------------------------------------------


def v2_sign(params: dict[str, str], key: str) -> str:
    """Return the HMAC-SHA256 ``sign`` of v2 ``params`` (empty values and ``sign`` skipped)."""
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] and k != "sign")
    text += f"&key={key}"
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def v2_xml(params: dict[str, str]) -> bytes:
    """Return ``params`` as WeChat's flat ``<xml>`` body."""
    root = ET.Element("xml")
    for k, v in params.items():
        ET.SubElement(root, k).text = v
    return ET.tostring(root, encoding="utf-8")


def v2_parse(body: bytes) -> dict[str, str]:
    """Parse a flat ``<xml>`` body; raise WireError if it is not one."""
    try:
        root = ET.fromstring(body)  # noqa: S314 - a flat document from a configured peer
    except ET.ParseError as exc:
        raise WireError(f"xml: {exc}") from None
    if root.tag != "xml":
        raise WireError("xml: <xml> root expected")
    return {child.tag: child.text or "" for child in root}


def v2_verify(params: dict[str, str], key: str) -> None:
    """Raise WireError unless ``params['sign']`` is their HMAC-SHA256 sign under ``key``."""
    if not hmac.compare_digest(params.get("sign", ""), v2_sign(params, key)):
        raise WireError("sign: does not verify")


# --- keys -----------------------------------------------------------------------------------


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """Return ``key`` as unencrypted PKCS#8 PEM (callers encrypt it at rest)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPublicKey) -> str:
    """Return ``key`` as SubjectPublicKeyInfo PEM."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM; raise WireError for anything else."""
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WireError("merchant key: RSA expected")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """Load an RSA public key (or the key of an X.509 certificate) from PEM."""
    if "BEGIN CERTIFICATE" in pem:
        from cryptography import x509

        key: Any = x509.load_pem_x509_certificate(pem.encode()).public_key()
    else:
        key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise WireError("platform key: RSA expected")
    return key
