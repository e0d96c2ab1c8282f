"""RSA2 (SHA256withRSA) signatures the way the Alipay OpenAPI makes and checks them.

- Request: every parameter except ``sign`` with a non-empty value, sorted by name, joined as
  ``k=v&k=v`` (raw values, not URL-encoded), signed, base64.
- Response: the JSON text of the ``<method>_response`` member *exactly as sent* is what
  Alipay signed; ``sign`` sits next to it.
- Notification: form fields except ``sign`` and ``sign_type``, sorted and joined as for a
  request (values URL-decoded), then verified with Alipay's public key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey


def sign_content(params: Mapping[str, Any], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """Return the string Alipay signs for ``params``: sorted non-empty ``k=v`` joined by ``&``."""
    return "&".join(
        f"{k}={params[k]}"
        for k in sorted(params)
        if k not in exclude and params[k] is not None and params[k] != ""
    )


def rsa2_sign(content: str, key: RSAPrivateKey) -> str:
    """Return the base64 SHA256withRSA (PKCS#1 v1.5) signature of ``content`` (UTF-8)."""
    raw = key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode("ascii")


def rsa2_verify(content: str, signature: str, key: RSAPublicKey) -> bool:
    """Return True when ``signature`` (base64) is the RSA2 signature of ``content``."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def response_node_name(method: str) -> str:
    """Return the JSON member that carries ``method``'s answer (``alipay_trade_pay_response``)."""
    return method.replace(".", "_") + "_response"


class ResponseFormatError(ValueError):
    """A gateway answer that is not the JSON Alipay sends (names what is missing)."""


def response_signed_text(body: str, method: str) -> tuple[str, str]:
    """Return (signed JSON text of the ``*_response`` member, ``sign``) from a gateway answer.

    The member's text is cut out of ``body`` as sent, because re-serialising it would change
    the bytes that were signed. Raise ResponseFormatError when the member is missing.
    """
    node = response_node_name(method)
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise ResponseFormatError(f"gateway answer is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ResponseFormatError("gateway answer is not a JSON object")
    if node not in parsed:
        node = "error_response"  # what the gateway answers for a bad app_id/sign
        if node not in parsed:
            raise ResponseFormatError(f"gateway answer without {response_node_name(method)}")
    decoder = json.JSONDecoder()
    key = f'"{node}"'
    at = body.index(key) + len(key)
    while body[at] in " \t\r\n:":
        at += 1
    _value, end = decoder.raw_decode(body, at)
    return body[at:end], str(parsed.get("sign", ""))


def response_build(method: str, payload: Mapping[str, Any], key: RSAPrivateKey) -> str:
    """Return a signed gateway answer for ``method`` (used by the simulator)."""
    node = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    sign = rsa2_sign(node, key)
    return f'{{"{response_node_name(method)}":{node},"sign":"{sign}"}}'
