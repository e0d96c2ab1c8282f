"""Test set-up shared by every test: a fixed field key, media in a temp dir, static files
served as in development."""

from __future__ import annotations

import os
from collections.abc import Iterator

# A fixed, published-nowhere key for tests only; real deployments set WUYE_FIELD_KEY.
os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
os.environ.setdefault("WUYE_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")

import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True, scope="session")
def _static_files_as_in_development() -> Iterator[None]:
    # Tests run without `collectstatic` (which `wuye serve` runs), so STATIC_ROOT does not
    # exist and WhiteNoise would warn "No directory at: …/static/". Serve the apps' static
    # files straight from the finders instead, as WhiteNoise does under DEBUG. Session-wide,
    # so that the live server of the browser tests (set up once) loads WhiteNoise this way too.
    from django.test import override_settings

    with override_settings(WHITENOISE_AUTOREFRESH=True, WHITENOISE_USE_FINDERS=True):
        yield


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}"
