"""A thin WeChat Pay client: signed v3 JSON calls and v2 XML calls, a timeout on every one.

``WechatClient`` knows the host, merchant number and keys and nothing of orders. Every v3
response with a body has its platform signature checked (``BadSignature`` otherwise); a
timeout or a lost connection raises ``Timeout`` (the caller answers UNDEFINED).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from wuye.channels.qrpay.base import BadSignature
from wuye.channels.wechat import wire
from wuye.channels.wechat.keys import WechatKeys


class Timeout(OSError):
    """No answer in time, or the connection broke: the call's outcome is unknown."""


class Unreachable(OSError):
    """The connection was refused: the request provably never reached WeChat Pay."""


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class WechatClient:
    """Call WeChat Pay (or its simulator) at ``base_url`` as merchant ``mchid``."""

    def __init__(
        self,
        *,
        base_url: str,
        mchid: str,
        appid: str,
        merchant_serial: str,
        platform_serial: str,
        keys: WechatKeys,
        timeout_s: float,
        client_cert: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mchid = mchid
        self.appid = appid
        self.merchant_serial = merchant_serial
        self.platform_serial = platform_serial
        self.keys = keys
        self.timeout_s = timeout_s
        self.client_cert = client_cert

    def _tls(self, path: str) -> ssl.SSLContext | None:
        """The mutual-TLS context for ``/secapi/`` calls (client certificate + merchant key)."""
        if not (self.client_cert and path.startswith("/secapi/")):
            return None
        from cryptography.hazmat.primitives import serialization

        password = secrets.token_bytes(24)
        pem = self.keys.merchant_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )
        ctx = ssl.create_default_context()
        fd, name = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)  # encrypted with a one-time password, deleted at once
            ctx.load_cert_chain(self.client_cert, name, password=password)
        finally:
            os.unlink(name)
        return ctx

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(  # noqa: S310 - configured http(s) base URL
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            tls = self._tls(path)
            opener = (
                urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls))
                if tls is not None
                else urllib.request.build_opener()
            )
            with opener.open(req, timeout=self.timeout_s) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                raise Unreachable(str(exc.reason)) from None
            raise Timeout(str(exc.reason)) from None
        except (TimeoutError, ConnectionError) as exc:
            raise Timeout(str(exc)) from None

    def v3(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Reply:
        """Make a signed v3 call; return its status and JSON body (signature checked).

        Raise Timeout, Unreachable, or BadSignature when the answer is not WeChat's.
        """
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        url_path = urlsplit(self.base_url).path.rstrip("/") + path
        auth = wire.authorization(
            private_key=self.keys.merchant_key,
            mchid=self.mchid,
            serial_no=self.merchant_serial,
            method=method,
            url_path=url_path,
            body=body,
        )
        headers = {
            "Authorization": auth,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "wuye-wechatpay/1",
        }
        status, rheaders, raw = self._send(method, path, body.encode() if body else None, headers)
        text = raw.decode("utf-8", "replace")
        if status < 300 and text:
            try:
                wire.verify_signed(self.keys.platform_pub, self.platform_serial, rheaders, text)
            except wire.WireError as exc:
                raise BadSignature(f"WeChat Pay response {path}: {exc}") from None
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {"code": "BAD_RESPONSE", "message": text[:200]}
        return Reply(status, data if isinstance(data, dict) else {})

    def download(self, url: str) -> bytes:
        """GET a file at a ``download_url`` WeChat handed out, signed; return its bytes.

        The file carries no platform signature (the caller checks its hash). Raise Timeout
        (also for an HTTP error status) or Unreachable.
        """
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        auth = wire.authorization(
            private_key=self.keys.merchant_key,
            mchid=self.mchid,
            serial_no=self.merchant_serial,
            method="GET",
            url_path=target,
            body="",
        )
        base = f"{parts.scheme}://{parts.netloc}"
        saved, self.base_url = self.base_url, base
        try:
            status, _h, raw = self._send("GET", target, None, {"Authorization": auth})
        finally:
            self.base_url = saved
        if status != 200:
            raise Timeout(f"download {target}: HTTP {status}")
        return raw

    def v2(self, path: str, params: dict[str, str]) -> dict[str, str]:
        """Make a signed v2 XML call (付款码); return the answer's fields, sign checked.

        Raise Timeout, Unreachable, or BadSignature for an answer not signed with our key.
        """
        fields = {
            "appid": self.appid,
            "mch_id": self.mchid,
            "nonce_str": wire.nonce(),
            "sign_type": "HMAC-SHA256",
            **params,
        }
        fields["sign"] = wire.v2_sign(fields, self.keys.v2_key)
        status, _h, raw = self._send(
            "POST", path, wire.v2_xml(fields), {"Content-Type": "text/xml; charset=utf-8"}
        )
        try:
            answer = wire.v2_parse(raw)
        except wire.WireError:
            return {"return_code": "FAIL", "return_msg": f"HTTP {status}"}
        if answer.get("return_code") == "SUCCESS" and "sign" in answer:
            try:
                wire.v2_verify(answer, self.keys.v2_key)
            except wire.WireError as exc:
                raise BadSignature(f"WeChat Pay {path}: {exc}") from None
        return answer
