"""HTTP benchmark: ``POST /api/payments/`` against a bare Django JSON view, same server.

Usage (PostgreSQL)::

    python bench/http_api.py [--server-workers 4] [--clients 4] [--payments 800] [--bare 4000]

It creates the database ``wuye_bench_payments`` (shared with bench/payments.py: don't run
both at once), seeds it with bench/payments.py's seeder (one community per client, a cashier
each with a password and an open shift, a household with one open bill per payment) and
starts gunicorn (``--server-workers`` sync workers) on ``wuye.wsgi`` with the settings of
``bench/http_site/``, whose URL conf adds ``POST /bench/bare/``: a JSON view behind the same
middleware that touches no database. Each client process logs in through ``/login/``
(session and CSRF cookies, as a browser does), then, started together:

1. **bare**: POSTs a small JSON body to ``/bench/bare/`` (same gunicorn, same middleware
   stack, session cookie and CSRF token checked; it never reads ``request.user``, so no
   statement reaches the database);
2. **bare with login**: the same to ``/bench/bare-user/``, which also checks the login (the
   session row and the user row: 2 statements);
3. **payments**: POSTs ``{"unit_id", "bill_ids", "idempotency_key"}`` to ``/api/payments/``,
   one bill of its own community each time (the real service: ``payments.posting``).

The server keeps its database connections (``WUYE_CONN_MAX_AGE``, default here 600 s, as a
deployment should). Each client first sends ``--warmup`` untimed requests of the kind (so
every server worker has imported everything and opened its connection). One new HTTP
connection per request (gunicorn's sync workers close it). Prints one JSON line:
requests/s, p50/p99 ms for each, their ratio, and the load average.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent

ROOT = HERE.parent
HOST, PORT = "127.0.0.1", 8765
PASSWORD = "bench-http-password"


def _payments_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_payments", HERE / "payments.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _seed(clients: int, payments: int) -> dict:
    """Seed with bench/payments.py, then passwords and one open shift per cashier."""
    pb = _payments_bench()
    pb._env()
    pb._create_database()
    pb._django()
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from wuye.accounts.models import User
    from wuye.counter.services import shift_open
    from wuye.estates.models import Community, Unit

    call_command("migrate", verbosity=0)
    seed = pb._seed(payments, 1, clients, clients)
    communities = list(Community.objects.order_by("pk"))
    jobs: list[list[tuple[int, int]]] = [[] for _ in range(clients)]
    unit_community = dict(Unit.objects.values_list("pk", "community_id"))
    index = {c.pk: i for i, c in enumerate(communities)}
    for unit_id, bill_id in seed["uniform"]:
        jobs[index[unit_community[unit_id]]].append((unit_id, bill_id))
    users = []
    for i, user in enumerate(User.objects.filter(pk__in=seed["cashiers"]).order_by("pk")):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
        shift_open(
            cashier=user,
            community=communities[i],
            counter_name="1号窗口",
            opening_float_fen=0,
            now=timezone.now(),
        )
        users.append(user.username)
    connections.close_all()
    return {"users": users, "jobs": jobs}


def _server(workers: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_http_settings",
        "PYTHONPATH": f"{HERE / 'http_site'}:{ROOT / 'src'}",
        "WUYE_LOG_LEVEL": "WARNING",
        # Persistent connections, as a deployment runs (Django's default opens one per
        # request: a new PostgreSQL backend whose caches are cold for every payment).
        "WUYE_CONN_MAX_AGE": os.environ.get("WUYE_CONN_MAX_AGE", "600"),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wuye.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"{HOST}:{PORT}",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection(HOST, PORT, timeout=2)
            conn.request("GET", "/login/")
            conn.getresponse().read()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("gunicorn did not start")


def _cookies(set_cookie: list[str]) -> dict[str, str]:
    out = {}
    for header in set_cookie:
        name, _, rest = header.partition("=")
        out[name.strip()] = rest.split(";", 1)[0]
    return out


def _request(
    method: str, path: str, body: str | bytes | None, headers: dict[str, str]
) -> tuple[int, bytes, list[str]]:
    conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    cookies = response.headers.get_all("Set-Cookie") or []
    conn.close()
    return response.status, data, cookies


def _login(username: str) -> dict[str, str]:
    """Log in through the login form; return the headers of an authenticated JSON POST."""
    _status, page, cookies = _request("GET", "/login/", None, {})
    jar = _cookies(cookies)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, "no CSRF token on the login page"
    form = urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    )
    status, _page, cookies = _request(
        "POST",
        "/login/",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken']}",
            "Referer": f"http://{HOST}:{PORT}/login/",
        },
    )
    jar.update(_cookies(cookies))
    assert status == 302 and "sessionid" in jar, f"login failed ({status})"
    return {
        "Content-Type": "application/json",
        "Cookie": f"csrftoken={jar['csrftoken']}; sessionid={jar['sessionid']}",
        "X-CSRFToken": jar["csrftoken"],
    }


def _client(args: tuple) -> list[float]:
    """One client: log in, wait for the common start, send its requests; return latencies."""
    username, kind, warm, jobs, start_at = args
    headers = _login(username)
    latencies: list[float] = []
    for i, job in enumerate(warm + jobs):
        if i == len(warm):  # warmed up (every server worker has imported and connected)
            latencies = []
            while time.time() < start_at:
                time.sleep(0.001)
        if kind in ("bare", "bare-user"):
            path = f"/bench/{kind}/"
            body = {"unit_id": 1, "bill_ids": [job], "idempotency_key": "x"}
        else:
            unit_id, bill_id = job
            path = "/api/payments/"
            body = {"unit_id": unit_id, "bill_ids": [bill_id], "idempotency_key": f"h-{bill_id}"}
        t0 = time.perf_counter()
        status, data, _cookies = _request("POST", path, json.dumps(body), headers)
        latencies.append(time.perf_counter() - t0)
        if status != 201:
            raise RuntimeError(f"{path}: HTTP {status} {data[:200]!r}")
    return latencies


def _run(jobs: list[tuple]) -> dict:
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        results = pool.map(_client, jobs)
    start_at = jobs[0][-1]
    wall = time.time() - start_at
    latencies = sorted(x for r in results for x in r)
    n = len(latencies)
    return {
        "requests": n,
        "seconds": round(wall, 3),
        "per_s": round(n / wall),
        "p50_ms": round(latencies[n // 2] * 1000, 2),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--payments", type=int, default=800, help="in all clients")
    parser.add_argument("--bare", type=int, default=4000, help="in all clients")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per client")
    args = parser.parse_args(argv)
    seed = _seed(args.clients, args.payments + args.warmup * args.clients)
    server = _server(args.server_workers)
    try:
        c = args.clients
        w = args.warmup
        start = time.time() + 5
        bare = _run(
            [
                (seed["users"][i], "bare", list(range(w)), list(range(args.bare // c)), start)
                for i in range(c)
            ]
        )
        start = time.time() + 5
        bare_user = _run(
            [
                (seed["users"][i], "bare-user", list(range(w)), list(range(args.bare // c)), start)
                for i in range(c)
            ]
        )
        start = time.time() + 5
        paid = _run(
            [
                (seed["users"][i], "payments", seed["jobs"][i][:w], seed["jobs"][i][w:], start)
                for i in range(c)
            ]
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    result = {
        "db": "postgres",
        "server": f"gunicorn, {args.server_workers} sync workers",
        "clients": args.clients,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "bare_json_view": bare,
        "bare_view_with_login": bare_user,
        "payments_api": paid,
        "ratio_payments_to_bare": round(paid["per_s"] / bare["per_s"], 3),
        "ratio_payments_to_bare_with_login": round(paid["per_s"] / bare_user["per_s"], 3),
    }
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
