"""The Alipay simulator for tests: in-process, on a free port, with its own keys.

``running_sim(settings, transport=...)`` starts the gateway on a thread and points Wuye's
Alipay settings at it. Notifications are not sent by a thread: the test calls ``deliver()``
(their transport is usually Django's test client, so they reach the notify view in the test's
own database transaction) and ``advance(s)`` moves the notifier's clock for the retries.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from wuye.channels.alipay.keys import private_pem, public_pem
from wuye.sims.alipay.bills import FeeFn
from wuye.sims.alipay.notifier import Notifier, Transport
from wuye.sims.alipay.server import SimServer
from wuye.sims.alipay.state import AlipaySim

APP_ID = "2021000000000001"
PID = "2088000012345678"


@cache
def sim_keys() -> tuple[Any, Any]:
    """Two RSA-2048 keys (app, Alipay), made once per test session."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def client_transport(client: Any) -> Transport:
    """A transport that posts notifications through a Django test client."""

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        path = urllib.parse.urlsplit(url).path
        resp = client.generic(
            "POST", path, body, content_type="application/x-www-form-urlencoded; charset=utf-8"
        )
        return resp.status_code, resp.content

    return post


@dataclass
class RunningSim:
    sim: AlipaySim
    server: SimServer
    clock: list[float]

    @property
    def notifier(self) -> Notifier:
        return self.server.notifier

    def deliver(self) -> int:
        """Send the notifications due now; return how many were tried."""
        return self.server.pump()

    def advance(self, seconds: float) -> int:
        """Move the notifier's clock on and send what fell due; return how many were tried."""
        self.clock[0] += seconds
        return self.server.pump()


@contextmanager
def running_sim(
    settings: Any,
    *,
    transport: Transport,
    notify_url: str = "http://testserver/pay/alipay/notify/",
    fee: FeeFn | None = None,
    now: Callable[[], datetime] | None = None,
    threaded: bool = False,
) -> Iterator[RunningSim]:
    """Start the simulator and point ``settings`` (pytest-django's fixture) at it.

    ``threaded``: a thread sends the notifications as they come, on the real clock with
    Alipay's back-off scaled to hundredths (for a live server and a browser).
    """
    app_key, alipay_key = sim_keys()
    sim = AlipaySim(
        app_id=APP_ID,
        pid=PID,
        app_public_key=app_key.public_key(),
        alipay_private_key=alipay_key,
        clock=now,
    )
    clock = [0.0]
    notifier = (
        Notifier(transport=transport, scale=0.01)
        if threaded
        else Notifier(transport=transport, clock=lambda: clock[0])
    )
    server = SimServer(sim, notifier=notifier, fee=fee)
    sim.base_url = server.url
    server.start(deliver=threaded)
    settings.ALIPAY_GATEWAY_URL = server.url + "/gateway.do"
    settings.ALIPAY_SIM_URL = server.url
    settings.ALIPAY_APP_ID = APP_ID
    settings.ALIPAY_APP_PRIVATE_KEY = private_pem(app_key)
    settings.ALIPAY_PUBLIC_KEY = public_pem(alipay_key.public_key())
    settings.ALIPAY_NOTIFY_URL = notify_url
    settings.ALIPAY_TIMEOUT_S = 1.0
    try:
        yield RunningSim(sim=sim, server=server, clock=clock)
    finally:
        server.stop()
