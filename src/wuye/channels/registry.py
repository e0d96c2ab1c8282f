"""Channels registered from ``settings.WUYE_CHANNELS`` (dotted paths), found by code."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from wuye.channels.base import Channel


class UnknownChannel(LookupError):
    """No channel with that code is registered in ``settings.WUYE_CHANNELS``."""


class ChannelMisconfigured(TypeError):
    """A path in ``settings.WUYE_CHANNELS`` is not a Channel, or two share a code."""


@cache
def _channels(paths: tuple[str, ...]) -> dict[str, Channel]:
    found: dict[str, Channel] = {}
    for path in paths:
        cls = import_string(path)
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ChannelMisconfigured(f"WUYE_CHANNELS: {path} is not a Channel subclass")
        if cls.code in found:
            raise ChannelMisconfigured(f"WUYE_CHANNELS: code {cls.code!r} registered twice")
        found[cls.code] = cls()
    return found


def channels_all() -> dict[str, Channel]:
    """Return ``{code: channel}`` for every registered channel, in settings order."""
    return dict(_channels(tuple(getattr(settings, "WUYE_CHANNELS", ()))))


def channel_get(code: str) -> Channel:
    """Return the registered channel with ``code``; raise UnknownChannel if there is none."""
    try:
        return _channels(tuple(getattr(settings, "WUYE_CHANNELS", ())))[code]
    except KeyError:
        raise UnknownChannel(f"channel {code!r} is not in settings.WUYE_CHANNELS") from None
