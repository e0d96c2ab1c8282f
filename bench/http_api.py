"""HTTP benchmark: ``POST /api/payments/`` against a bare Django JSON view, same server.

Usage (PostgreSQL, Redis for the cached sessions, Debian's ``wrk``)::

    python bench/http_api.py [--pg-db wuye_bench_payments] [--sessions both|all|db|cache]
        [--cache-url redis://127.0.0.1:6379/3] [--server-workers 4] [--server-threads 2]
        [--clients 4] [--connections 8] [--duration 10] [--rounds 2] [--payments 16000]

It creates the database ``--pg-db`` (default ``wuye_bench_payments``, the one bench/payments.py
uses: don't run both at once on it), seeds it with bench/payments.py's seeder (one community
per client, a cashier each with a password and an open shift, a household with one open bill
per payment), then for each session setting (``db``: Django's database sessions, the default;
``cache``: ``WUYE_CACHE_URL`` set, cached_db sessions on Redis; ``cache+user``, only with
``--sessions all`` or by name: that plus the experiment of ``http_site/bench_http_fast_auth``,
the user read from Redis too) starts one gunicorn on
``wuye.wsgi`` with the settings of ``bench/http_site/`` (``--server-workers`` processes of
``--server-threads`` threads, gthread: HTTP keep-alive) and, on that one server, with those
settings:

1. **bare**: ``POST /bench/bare/``, a JSON view behind the same middleware (session cookie and
   CSRF token checked) that never reads ``request.user``: no statement reaches the database;
2. **bare with login**: ``POST /bench/bare-user/``, the same plus the login check (session
   and user read);
3. **payments**: ``POST /api/payments/`` with ``{"unit_id", "bill_ids", "idempotency_key"}``,
   one bill of the cashier's community each time (the real service).

Each cashier logs in through ``/login/`` (session and CSRF cookies, as a browser does). The
load comes from ``wrk`` (C, event loop: it costs the 2 shared cores little, its CPU time is
reported) with a generated Lua script: ``--clients`` wrk threads, one per cashier, holding
``--connections`` keep-alive connections in all. Every kind gets a short untimed warm-up run
first (every server thread has imported everything and opened its database connection, kept:
``WUYE_CONN_MAX_AGE``, default here 600 s). Every answer must be 201, or the run fails.

Prints one JSON line per session setting: requests/s, p50/p99 ms, CPU ms per request of the
gunicorn workers and of wrk, the ratios, and the load average.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent

ROOT = HERE.parent
HOST = "127.0.0.1"
PASSWORD = "bench-http-password"
BARE_BODY = '{"unit_id": 1, "bill_ids": [1], "idempotency_key": "x"}'
TICKS = os.sysconf("SC_CLK_TCK")

# wrk script: thread i (one per cashier) sends cashier i's cookies and CSRF token; for
# payments it walks its cashier's jobs from args[2]+1 to args[3] and stops when they run out.
LUA = r"""
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  me = DATA[tid + 1]
  kind = args[1]
  local starts = {}
  for v in string.gmatch(args[2], "[^,]+") do table.insert(starts, tonumber(v)) end
  n = starts[tid + 1] or starts[1]
  last = tonumber(args[3])
  bad = 0
  bad_status = 0
  exhausted = 0
  headers = {["Content-Type"] = "application/json", ["Cookie"] = me.cookie,
             ["X-CSRFToken"] = me.token}
  if kind ~= "payments" then
    fixed = wrk.format("POST", "/bench/" .. kind .. "/", headers, BARE_BODY)
  end
end
function request()
  if kind ~= "payments" then return fixed end
  n = n + 1
  if n > last then
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/bench/none/", headers)
  end
  local job = me.jobs[n]
  local body = string.format('{"unit_id": %d, "bill_ids": [%d], "idempotency_key": "h-%d"}',
                             job[1], job[2], job[2])
  return wrk.format("POST", "/api/payments/", headers, body)
end
function response(status, hdrs, body)
  if status ~= 201 and exhausted == 0 then
    bad = bad + 1
    bad_status = status
  end
end
function done(summary, latency, requests)
  local bad_all, exhausted_all, status = 0, 0, 0
  local next = {}
  for _, t in ipairs(threads) do
    table.insert(next, tostring(t:get("n")))
    bad_all = bad_all + t:get("bad")
    exhausted_all = exhausted_all + t:get("exhausted")
    if t:get("bad_status") ~= 0 then status = t:get("bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests": %d, "us": %d, "p50_us": %d, "p99_us": %d, "bad": %d, ' ..
    '"bad_status": %d, "exhausted_threads": %d, "socket_errors": %d, "next": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    bad_all, status, exhausted_all, e.connect + e.read + e.write + e.timeout,
    table.concat(next, ",")))
end
"""


def _payments_bench(pg_db: str) -> Any:
    spec = importlib.util.spec_from_file_location("bench_payments", HERE / "payments.py")
    assert spec is not None and spec.loader is not None
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PG_NAME = pg_db
    module.PG_URL = f"postgres://postgres@127.0.0.1:5432/{pg_db}"
    return module


def _seed(pg_db: str, clients: int, payments: int) -> dict:
    """Seed with bench/payments.py, then passwords and one open shift per cashier."""
    os.environ.setdefault("WUYE_DATA_DIR", "/tmp/wuye-http")
    pb = _payments_bench(pg_db)
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


def _server(args: argparse.Namespace, cache_url: str, fast_auth: bool) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench_http_settings",
        "PYTHONPATH": f"{HERE / 'http_site'}:{ROOT / 'src'}",
        "WUYE_LOG_LEVEL": "WARNING",
        # Persistent connections, as a deployment runs (Django's default opens one per
        # request: a new PostgreSQL backend whose caches are cold for every payment).
        "WUYE_CONN_MAX_AGE": os.environ.get("WUYE_CONN_MAX_AGE", "600"),
    }
    env.pop("WUYE_CACHE_URL", None)
    env.pop("WUYE_BENCH_FAST_AUTH", None)
    if cache_url:
        env["WUYE_CACHE_URL"] = cache_url
    if fast_auth:
        env["WUYE_BENCH_FAST_AUTH"] = "1"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wuye.wsgi:application",
            "--worker-class",
            "gthread",
            "--workers",
            str(args.server_workers),
            "--threads",
            str(args.server_threads),
            "--bind",
            f"{HOST}:{args.port}",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection(HOST, args.port, timeout=2)
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
    port: int, method: str, path: str, body: str | None, headers: dict[str, str]
) -> tuple[int, bytes, list[str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    cookies = response.headers.get_all("Set-Cookie") or []
    conn.close()
    return response.status, data, cookies


def _login(port: int, username: str) -> dict[str, str]:
    """Log in through the login form; return the session cookie header and CSRF token."""
    _status, page, cookies = _request(port, "GET", "/login/", None, {})
    jar = _cookies(cookies)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, "no CSRF token on the login page"
    form = urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)}
    )
    status, _page, cookies = _request(
        port,
        "POST",
        "/login/",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={jar['csrftoken']}",
            "Referer": f"http://{HOST}:{port}/login/",
        },
    )
    jar.update(_cookies(cookies))
    assert status == 302 and "sessionid" in jar, f"login failed ({status})"
    return {
        "cookie": f"csrftoken={jar['csrftoken']}; sessionid={jar['sessionid']}",
        "token": jar["csrftoken"],
    }


def _lua_string(value: str) -> str:
    assert '"' not in value and "\\" not in value
    return f'"{value}"'


def _script(logins: list[dict[str, str]], jobs: list[list[tuple[int, int]]]) -> str:
    rows = []
    for login, mine in zip(logins, jobs, strict=True):
        jobs_lua = ",".join(f"{{{u},{b}}}" for u, b in mine)
        rows.append(
            f"{{cookie={_lua_string(login['cookie'])}, token={_lua_string(login['token'])}, "
            f"jobs={{{jobs_lua}}}}}"
        )
    return f"BARE_BODY = '{BARE_BODY}'\n" + "DATA = {\n" + ",\n".join(rows) + "\n}\n" + LUA


def _worker_ticks(server: subprocess.Popen) -> int:
    """CPU ticks (user + system) used so far by gunicorn's worker processes."""
    total = 0
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _wrk(
    args: argparse.Namespace,
    script: str,
    kind: str,
    first: str,
    last: int,
    seconds: int,
    *,
    warmup: bool = False,
) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(args.clients),
            "-c",
            str(args.connections),
            "-d",
            f"{seconds}s",
            "--timeout",
            "30s",
            "-s",
            script,
            f"http://{HOST}:{args.port}/",
            "--",
            kind,
            first,
            str(last),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    data = json.loads(line[5:])
    if data["bad"] or data["socket_errors"]:
        raise RuntimeError(f"{kind}: answers other than 201 or socket errors: {data}\n{out}")
    if data["exhausted_threads"] and not warmup:
        raise RuntimeError(f"{kind}: a client ran out of bills; seed more (--payments): {data}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    data["wrk_cpu_s"] = cpu
    return data


def _measure(
    args: argparse.Namespace,
    server: subprocess.Popen,
    script: str,
    kind: str,
    first: str,
    last: int,
) -> dict:
    ticks = _worker_ticks(server)
    data = _wrk(args, script, kind, first, last, args.duration)
    data["server_cpu_s"] = (_worker_ticks(server) - ticks) / TICKS
    return data


def _summary(rounds: list[dict]) -> dict:
    """The rounds of one kind together: rate over their summed time, latencies per round."""
    n = sum(r["requests"] for r in rounds)
    seconds = sum(r["us"] for r in rounds) / 1e6
    return {
        "requests": n,
        "seconds": round(seconds, 3),
        "per_s": round(n / seconds),
        "per_s_by_round": [round(r["requests"] / (r["us"] / 1e6)) for r in rounds],
        "p50_ms_by_round": [round(r["p50_us"] / 1000, 2) for r in rounds],
        "p99_ms_by_round": [round(r["p99_us"] / 1000, 2) for r in rounds],
        "server_cpu_ms_per_request": round(sum(r["server_cpu_s"] for r in rounds) * 1000 / n, 2),
        "wrk_cpu_ms_per_request": round(sum(r["wrk_cpu_s"] for r in rounds) * 1000 / n, 3),
    }


def _one_setting(args: argparse.Namespace, seed: dict, sessions: str, part: int) -> dict:
    cache_url = args.cache_url if sessions.startswith("cache") else ""
    if cache_url:
        import redis

        redis.Redis.from_url(cache_url).ping()  # fail early: no Redis, no cached sessions
    server = _server(args, cache_url, sessions == "cache+user")
    per_setting = args.payments // args.clients // len(_settings(args))
    first = part * per_setting
    warm = first + args.warmup_bills
    last = first + per_setting
    kinds = ("bare", "bare-user", "payments")
    rounds: dict[str, list[dict]] = {kind: [] for kind in kinds}
    try:
        logins = [_login(args.port, user) for user in seed["users"]]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(_script(logins, seed["jobs"]))
        script = fh.name
        for kind in kinds:  # warm-up, untimed; payments stop when the warm-up bills run out
            _wrk(args, script, kind, str(first), warm, 30 if kind == "payments" else 2, warmup=True)
        start = str(warm)
        # The kinds take turns (bare, with login, payments, bare again…) so that a change in
        # the machine's load during the run falls on all three.
        for _round in range(args.rounds):
            for kind in kinds:
                data = _measure(args, server, script, kind, start, last)
                rounds[kind].append(data)
                if kind == "payments":
                    start = data["next"]  # each cashier's next bill
        os.unlink(script)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        if cache_url:
            import redis

            client = redis.Redis.from_url(cache_url)
            for key in client.scan_iter("wuye:*"):
                client.delete(key)
    result = {kind: _summary(rounds[kind]) for kind in kinds}
    bare, bare_user, paid = result["bare"], result["bare-user"], result["payments"]
    return {
        "db": "postgres",
        "pg_db": args.pg_db,
        "sessions": {
            "db": "database",
            "cache": "cached_db on Redis",
            "cache+user": "cached_db on Redis, user cached too (experiment)",
        }[sessions],
        "server": f"gunicorn gthread, {args.server_workers} workers x {args.server_threads}"
        " threads, keep-alive",
        "load": f"wrk, {args.clients} threads, {args.connections} connections, "
        f"{args.rounds} rounds of {args.duration} s per kind",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "bare_json_view": bare,
        "bare_view_with_login": bare_user,
        "payments_api": paid,
        "ratio_payments_to_bare": round(paid["per_s"] / bare["per_s"], 3),
        "ratio_payments_to_bare_with_login": round(paid["per_s"] / bare_user["per_s"], 3),
    }


def _settings(args: argparse.Namespace) -> list[str]:
    named = {"both": ["db", "cache"], "all": ["db", "cache", "cache+user"]}
    return named.get(args.sessions, [args.sessions])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-db", default="wuye_bench_payments", help="dropped and recreated")
    parser.add_argument(
        "--sessions",
        choices=["both", "all", "db", "cache", "cache+user"],
        default="both",
        help="both: db and cache; all: also cache+user (bench_http_fast_auth's experiment)",
    )
    parser.add_argument("--cache-url", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--server-workers", type=int, default=4)
    parser.add_argument("--server-threads", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4, help="wrk threads, one per cashier")
    parser.add_argument("--connections", type=int, default=8, help="in all")
    parser.add_argument("--duration", type=int, default=10, help="seconds per kind and round")
    parser.add_argument("--rounds", type=int, default=2, help="the kinds take turns")
    parser.add_argument(
        "--payments", type=int, default=16000, help="bills seeded, in all (warm-up included)"
    )
    parser.add_argument("--warmup-bills", type=int, default=50, help="per cashier and setting")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    seed = _seed(args.pg_db, args.clients, args.payments)
    results = []
    for part, sessions in enumerate(_settings(args)):
        result = _one_setting(args, seed, sessions, part)
        print(json.dumps(result, ensure_ascii=False), flush=True)
        results.append(result)
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
