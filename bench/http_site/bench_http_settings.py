"""Settings for bench/http_api.py: Wuye's own, with the benchmark's URL conf (adds a bare view).

``WUYE_BENCH_FAST_AUTH=1`` (``--sessions cache+user``, with ``WUYE_CACHE_URL`` set) adds the
experiment of ``bench_http_fast_auth``: the user read from the shared cache too.
"""

import os

from wuye.settings import *  # noqa: F403

ROOT_URLCONF = "bench_http_urls"

if os.environ.get("WUYE_BENCH_FAST_AUTH") == "1":
    CACHES["default"]["BACKEND"] = "bench_http_fast_auth.ReusedClientRedisCache"  # noqa: F405
    AUTHENTICATION_BACKENDS = ["bench_http_fast_auth.CachedUserBackend"]
