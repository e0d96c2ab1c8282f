"""A thin WeChat Pay client: signed v3 JSON calls and v2 XML calls, a timeout on every one.

``WechatClient`` knows the host, merchant number and keys and nothing of orders. Every v3
response with a body has its platform signature checked (``BadSignature`` otherwise); a
timeout or a lost connection raises ``Timeout`` (the caller answers UNDEFINED).
"""

from __future__ import annotations

import json
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mchid = mchid
        self.appid = appid
        self.merchant_serial = merchant_serial
        self.platform_serial = platform_serial
        self.keys = keys
        self.timeout_s = timeout_s

    def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(  # noqa: S310 - configured http(s) base URL
            self.base_url + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
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
