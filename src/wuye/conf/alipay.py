"""Settings of the Alipay channel, from the environment (defaults: the demo simulator).

- ``WUYE_ALIPAY_GATEWAY``: the OpenAPI gateway (real: ``https://openapi.alipay.com/gateway.do``;
  default the simulator ``wuye sim alipay --port 8602``).
- ``WUYE_ALIPAY_APP_ID``: the app id (default the demo's ``2021000000000001``).
- ``WUYE_ALIPAY_APP_PRIVATE_KEY`` / ``WUYE_ALIPAY_PUBLIC_KEY``: the app's RSA2 private key and
  Alipay's public key (PEM or Alipay's bare base64). Unset: the demo pairs generated once into
  the data dir (``wuye.channels.alipay.keys.demo_keys``; private halves encrypted at rest).
- ``WUYE_ALIPAY_NOTIFY_URL``: where Alipay posts notifications (our ``/pay/alipay/notify/``).
- ``WUYE_ALIPAY_TIMEOUT_S``: timeout of every gateway call.
- ``WUYE_ALIPAY_SIM_URL``: the simulator's base URL (its wallet; demo only).
"""

from __future__ import annotations

import os

CHANNELS: list[str] = ["wuye.channels.alipay.adapter.AlipayChannel"]

ALIPAY_SIM_URL = os.environ.get("WUYE_ALIPAY_SIM_URL", "http://127.0.0.1:8602")
ALIPAY_GATEWAY_URL = os.environ.get("WUYE_ALIPAY_GATEWAY", ALIPAY_SIM_URL + "/gateway.do")
ALIPAY_APP_ID = os.environ.get("WUYE_ALIPAY_APP_ID", "2021000000000001")
ALIPAY_APP_PRIVATE_KEY = os.environ.get("WUYE_ALIPAY_APP_PRIVATE_KEY", "")
ALIPAY_PUBLIC_KEY = os.environ.get("WUYE_ALIPAY_PUBLIC_KEY", "")
ALIPAY_NOTIFY_URL = os.environ.get(
    "WUYE_ALIPAY_NOTIFY_URL", "http://127.0.0.1:8000/pay/alipay/notify/"
)
ALIPAY_TIMEOUT_S = float(os.environ.get("WUYE_ALIPAY_TIMEOUT_S", "10"))
