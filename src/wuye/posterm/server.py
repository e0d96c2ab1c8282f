"""The terminal's side of Wuye's terminal API (docs/terminal-api.md): a small JSON client.

Every call carries ``Authorization: Terminal <TID> <token>``. ``ServerUnreachable`` covers
"no answer" and ``5xx`` (the caller retries with back-off); ``ServerRefused`` is a ``4xx``
with the server's ``error`` text (not retried, except ``409`` where the contract says so).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class ServerUnreachable(Exception):
    """Wuye's server did not answer, or answered 5xx; try again later."""


class ServerRefused(Exception):
    """Wuye's server answered 4xx; ``status`` and the server's ``error`` text say why."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error


@dataclass
class ServerClient:
    """Talk to ``<base_url>/api/terminal/v1/`` as terminal ``tid``."""

    base_url: str
    tid: str
    token: str
    timeout_s: float = 10.0

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/api/terminal/v1/" + path

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer.

        Raises ServerUnreachable (no answer, 5xx, not JSON) or ServerRefused (4xx).
        """
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        url = self._url(path)
        if not url.startswith(("http://", "https://")):
            raise ServerRefused(0, f"--server: {self.base_url!r} is not an http(s) URL")
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Terminal {self.tid} {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json; charset=utf-8")
        try:
            with urllib.request.urlopen(req, timeout=timeout_s or self.timeout_s) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code >= 500:
                raise ServerUnreachable(f"HTTP {exc.code} from {path}") from exc
            try:
                error = str(json.loads(raw).get("error", ""))
            except (ValueError, AttributeError):
                error = raw[:200].decode("utf-8", "replace")
            raise ServerRefused(exc.code, error) from exc
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise ServerUnreachable(f"{path}: {exc}") from exc
        try:
            answer = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ServerUnreachable(f"{path}: answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise ServerUnreachable(f"{path}: answer is not a JSON object")
        return answer

    def heartbeat(self, status: dict[str, Any]) -> dict[str, Any]:
        """POST heartbeat; return the server's answer (params, app_update)."""
        return self.call("POST", "heartbeat", status)

    def next_request(self, wait_s: int = 25) -> dict[str, Any] | None:
        """Long-poll for the next pushed request; return it or None."""
        answer = self.call("GET", f"requests?wait={wait_s}", timeout_s=wait_s + 10)
        req = answer.get("request")
        return req if isinstance(req, dict) else None

    def accept(self, request_id: str) -> None:
        """Tell the server the request is on screen. Raises ServerRefused(409) if it is gone."""
        self.call("POST", f"requests/{request_id}/accept", {})

    def report_result(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST results."""
        return self.call("POST", "results", payload)

    def report_settlement(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST settlements."""
        return self.call("POST", "settlements", payload)
