"""The WeChat Pay simulator (``wuye sim wechat``)."""

from __future__ import annotations

from pathlib import Path

from wuye.channels.qrpay.conf import setting
from wuye.channels.wechat.keys import key_dir, keys_get
from wuye.sims.wechat.server import WechatSim


def state_path() -> Path:
    """Return where the simulator keeps its orders (next to the demo keys)."""
    return key_dir() / "sim" / "state.json"


def sim_from_settings(
    *, deliver: str = "http", persist: bool = True, backoff_scale: float = 1.0
) -> WechatSim:
    """Return a simulator for the configured merchant, with the key directory's demo keys."""
    return WechatSim(
        keys=keys_get(),
        mchid=setting("WUYE_WECHAT_MCHID"),
        appid=setting("WUYE_WECHAT_APPID"),
        merchant_serial=setting("WUYE_WECHAT_MERCHANT_SERIAL"),
        platform_serial=setting("WUYE_WECHAT_PLATFORM_SERIAL"),
        state_path=state_path() if persist else None,
        deliver=deliver,
        backoff_scale=backoff_scale,
    )
