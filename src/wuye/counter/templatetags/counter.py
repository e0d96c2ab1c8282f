"""Template helpers of the counter."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.filter
def channel_name(code: str) -> str:
    """Show a payment channel's name (``cash`` → 现金), translated; the code if unknown."""
    from wuye.channels.registry import channels_all

    channel = channels_all().get(code)
    return gettext(channel.name) if channel is not None and channel.name else code
