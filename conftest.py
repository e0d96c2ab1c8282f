"""Test set-up shared by every test: a fixed field key, media in a temp dir, static files
served as in development."""

from __future__ import annotations

import os

# A fixed, published-nowhere key for tests only; real deployments set WUYE_FIELD_KEY.
os.environ.setdefault("WUYE_FIELD_KEY", "rTSlGaa7bTBqEfpXiqsHdB0tQ5TtdxJzHGeb5LqIx4Q=")
os.environ.setdefault("WUYE_SECRET_KEY", "tests-only-secret-key-not-for-production-0123456789")

import pytest


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _static_files_as_in_development(settings):  # type: ignore[no-untyped-def]
    # Tests run without `collectstatic` (which `wuye serve` runs), so STATIC_ROOT does not
    # exist and WhiteNoise would warn "No directory at: …/static/". Serve the apps' static
    # files straight from the finders instead, as WhiteNoise does under DEBUG.
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']}"
