"""Read the QR parts' settings (``wuye.conf.qrpay``/``wechat``), which the settings module
copies in by name, so type checkers cannot see them as attributes."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def setting(name: str) -> Any:
    """Return ``settings.<name>``; raise AttributeError naming it if it is not set."""
    return getattr(settings, name)
