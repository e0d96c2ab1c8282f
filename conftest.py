"""Test set-up shared by every test: a fixed field key, media in a temp dir."""

from __future__ import annotations

import os

# A fixed, published-nowhere key for tests only; real deployments set WUYE_FIELD_KEY.
os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
os.environ.setdefault("WUYE_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}"
