from __future__ import annotations

from collections.abc import Iterator

import pytest

from wuye.sims.alipay.testing import RunningSim, client_transport, running_sim


@pytest.fixture(autouse=True)
def _fast_hasher(settings):  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alipay(settings, client) -> Iterator[RunningSim]:  # type: ignore[no-untyped-def]
    """The Alipay simulator in-process; its notifications go through the test client."""
    from django.test import Client

    with running_sim(settings, transport=client_transport(Client())) as running:
        yield running
