"""A thin client of the Alipay OpenAPI gateway: signed form POST, verified JSON answer.

One method, ``call``; the adapter knows what each API means. Every call has a timeout. A
timeout or a broken connection raises ``GatewayTimeout`` (the request may have arrived); a
connection that was never made raises ``GatewayUnreachable`` (it did not); an answer whose
signature does not verify raises ``BadSignature`` and is never trusted.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from wuye.channels.alipay.signing import (
    ResponseFormatError,
    response_signed_text,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from wuye.channels.qrpay.base import BadSignature

CHINA = ZoneInfo("Asia/Shanghai")
UNSIGNED_CODES = frozenset({"20001", "40001", "40002"})


class GatewayError(RuntimeError):
    """The gateway could not give a usable answer."""


class GatewayTimeout(GatewayError):
    """The request left but no answer came in time: its outcome is unknown."""


class GatewayUnreachable(GatewayError):
    """No connection could be made: the request never arrived."""


@dataclass(frozen=True)
class AlipayConfig:
    """Where the gateway is and who we are (see ``wuye.conf.alipay``)."""

    gateway_url: str
    app_id: str
    app_private_key: RSAPrivateKey
    alipay_public_key: RSAPublicKey
    notify_url: str = ""
    timeout_s: float = 10.0


class AlipayClient:
    """Call OpenAPI methods on one gateway with one app's keys."""

    def __init__(self, config: AlipayConfig) -> None:
        self.config = config

    def params(
        self, method: str, biz: Mapping[str, Any], *, notify: bool = False, now: datetime
    ) -> dict[str, str]:
        """Return the signed public + business parameters of a request."""
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": now.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(dict(biz), ensure_ascii=False, separators=(",", ":")),
        }
        if notify and self.config.notify_url:
            params["notify_url"] = self.config.notify_url
        params["sign"] = rsa2_sign(sign_content(params), self.config.app_private_key)
        return params

    def call(
        self,
        method: str,
        biz: Mapping[str, Any],
        *,
        notify: bool = False,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """POST ``method`` with ``biz`` as biz_content; return the verified ``*_response`` dict.

        Raise GatewayTimeout, GatewayUnreachable, GatewayError (not Alipay's JSON) or
        BadSignature (the answer's signature does not verify).
        """
        params = self.params(method, biz, notify=notify, now=now or datetime.now(CHINA))
        body = urllib.parse.urlencode(params).encode("utf-8")
        url = self.config.gateway_url
        if not url.startswith(("http://", "https://")):
            raise GatewayUnreachable(f"{method}: gateway URL must be http(s): {url!r}")
        url += ("&" if "?" in url else "?") + "charset=utf-8"
        req = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:  # noqa: S310
                text = resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            raise GatewayError(f"{method}: HTTP {exc.code}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror):
                raise GatewayUnreachable(f"{method}: {exc.reason}") from exc
            raise GatewayTimeout(f"{method}: {exc.reason}") from exc
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise GatewayTimeout(f"{method}: {exc}") from exc
        try:
            signed, sign = response_signed_text(text, method)
        except ResponseFormatError as exc:
            raise GatewayError(f"{method}: {exc}") from exc
        answer = json.loads(signed)
        if not sign:
            # Alipay leaves only its gateway-level refusals (bad app_id, sign, parameters)
            # unsigned: nothing was done. Anything else unsigned is not trusted.
            if answer.get("code") in UNSIGNED_CODES:
                return dict(answer)
            raise BadSignature(f"{method}: answer without sign")
        if not rsa2_verify(signed, sign, self.config.alipay_public_key):
            raise BadSignature(f"{method}: answer signature does not verify")
        return dict(answer)
