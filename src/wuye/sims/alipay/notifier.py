"""Deliver notifications the way Alipay does: POST the signed form, expect ``success``.

Anything else (an error status, another body, no answer) is retried on Alipay's published
schedule — 4 m, 10 m, 10 m, 1 h, 2 h, 6 h, 15 h after the first try (8 tries in 25 h) —
scaled by ``scale`` so tests and demos need not wait a day.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_AFTER_S = (4 * 60, 10 * 60, 10 * 60, 60 * 60, 2 * 60 * 60, 6 * 60 * 60, 15 * 60 * 60)

Transport = Callable[[str, bytes], tuple[int, bytes]]
"""POST ``body`` (form-encoded) to a URL; return (status, body). Raise OSError on failure."""


def http_post(url: str, body: bytes) -> tuple[int, bytes]:
    """POST over HTTP with a 10 s timeout."""
    if not url.startswith(("http://", "https://")):
        raise OSError(f"notify_url must be http(s): {url!r}")
    req = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass(order=True)
class _Item:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    tries: int = field(compare=False, default=0)


@dataclass
class Delivery:
    url: str
    status: int
    answer: bytes
    tries: int


class Notifier:
    """A queue of notifications with retries; ``run_due`` delivers what is due now."""

    def __init__(
        self,
        *,
        transport: Transport = http_post,
        scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.scale = scale
        self.clock = clock
        self.queue: list[_Item] = []
        self.log: list[Delivery] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def add(self, url: str, form: dict[str, str], *, delay_s: float = 0.0) -> None:
        """Queue a notification for delivery after ``delay_s``."""
        body = urllib.parse.urlencode(form).encode("utf-8")
        with self._lock:
            heapq.heappush(self.queue, _Item(self.clock() + delay_s, next(self._seq), url, body))

    def run_due(self) -> int:
        """Deliver every notification that is due; return how many were tried."""
        tried = 0
        while True:
            with self._lock:
                if not self.queue or self.queue[0].due > self.clock():
                    return tried
                item = heapq.heappop(self.queue)
            tried += 1
            item.tries += 1
            try:
                status, answer = self.transport(item.url, item.body)
            except OSError as exc:
                status, answer = 0, str(exc).encode()
            self.log.append(Delivery(item.url, status, answer, item.tries))
            if status == 200 and answer.strip() == b"success":
                continue
            if item.tries <= len(RETRY_AFTER_S):
                item.due = self.clock() + RETRY_AFTER_S[item.tries - 1] * self.scale
                with self._lock:
                    heapq.heappush(self.queue, item)

    def pending(self) -> int:
        with self._lock:
            return len(self.queue)
