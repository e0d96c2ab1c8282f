"""Settings of the WeChat Pay channel, from the environment; the defaults talk to the simulator.

``CHANNELS``: dotted paths appended to ``WUYE_CHANNELS``. Anything else upper-case becomes
a Django setting.

Keys (``WUYE_WECHAT_KEY_DIR``, default ``$WUYE_DATA_DIR/wechat``) are files encrypted at rest
with ``wuye.core.crypto`` (the field key): ``merchant_key.pem.enc`` (the merchant's API private
key), ``platform_pub.pem`` (WeChat Pay's platform public key or certificate), ``apiv3_key.enc``
and ``v2_key.enc``. When the directory has none, demo keys are generated there on first use
(the simulator reads the same directory), so never point it at a production key directory
without the real files in place. ``wuye qr keys --channel wechat`` writes real ones.
"""

from __future__ import annotations

import os

CHANNELS: list[str] = ["wuye.channels.wechat.adapter.WechatPayChannel"]

WUYE_WECHAT_BASE_URL = os.environ.get("WUYE_WECHAT_BASE_URL", "http://127.0.0.1:8601")
"""API host: ``https://api.mch.weixin.qq.com`` in production; the simulator by default."""
WUYE_WECHAT_MCHID = os.environ.get("WUYE_WECHAT_MCHID", "1900012345")
WUYE_WECHAT_APPID = os.environ.get("WUYE_WECHAT_APPID", "wx0000000000demo01")
WUYE_WECHAT_MERCHANT_SERIAL = os.environ.get(
    "WUYE_WECHAT_MERCHANT_SERIAL", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
)
"""Serial number of the merchant API certificate (sent in every request's Authorization)."""
WUYE_WECHAT_PLATFORM_SERIAL = os.environ.get(
    "WUYE_WECHAT_PLATFORM_SERIAL", "PUB_KEY_ID_0119000001092026112200000000000001"
)
"""Serial (or public-key id) of the platform key that signs responses and notifications."""
WUYE_WECHAT_KEY_DIR = os.environ.get("WUYE_WECHAT_KEY_DIR", "")
"""Empty: ``$WUYE_DATA_DIR/wechat``."""
WUYE_WECHAT_NOTIFY_URL = os.environ.get(
    "WUYE_WECHAT_NOTIFY_URL", "http://127.0.0.1:8000/pay/wechat/notify/"
)
"""The public HTTPS address of ``/pay/wechat/notify/`` in production."""
WUYE_WECHAT_TIMEOUT_S = float(os.environ.get("WUYE_WECHAT_TIMEOUT_S", "10"))
"""Timeout of every call to WeChat Pay; a timeout is UNDEFINED, never a failure."""
WUYE_WECHAT_CLIENT_CERT = os.environ.get("WUYE_WECHAT_CLIENT_CERT", "")
"""Path of the merchant API certificate (``apiclient_cert.pem``): the client certificate the
real ``/secapi/pay/reverse`` requires (mutual TLS, with the merchant key). Empty: none sent."""
WUYE_WECHAT_REFUND_WAIT_S = float(os.environ.get("WUYE_WECHAT_REFUND_WAIT_S", "3"))
"""How long ``refund`` polls a PROCESSING refund before answering PENDING."""
