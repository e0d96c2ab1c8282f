"""Settings for bench/http_api.py: Wuye's own, with the benchmark's URL conf (adds a bare view)."""

from wuye.settings import *  # noqa: F403

ROOT_URLCONF = "bench_http_urls"
