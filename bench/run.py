"""Run Wuye's benchmarks and print the results as a Markdown table with the machine.

    python bench/run.py            # billing: 100k units on SQLite and on PostgreSQL
    python bench/run.py --full     # also 1,000,000 units on PostgreSQL (minutes; run it once)

Each benchmark runs in its own process (one database per Django process).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _sh(cmd: str) -> str:
    try:
        return subprocess.run(
            cmd, shell=True, capture_output=True, text=True, timeout=30, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine() -> str:
    """Describe the machine: cores, CPU, memory, PostgreSQL, date."""
    return "\n".join(
        [
            f"nproc: {_sh('nproc')}",
            _sh("lscpu | head -n 15"),
            _sh("free -h | head -n 2"),
            _sh("psql -h 127.0.0.1 -U postgres -Atc 'select version()' 2>/dev/null"),
            f"load: {_sh('cat /proc/loadavg')}",
            f"date: {_sh('date -u')}",
        ]
    )


def billing(db: str, units: int, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE / "billing.py"), "--db", db, "--units", str(units),
         "--repeat", str(repeat)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def payments() -> dict:
    """bench/payments.py: service-layer payments vs plain-SQL postings, 4 workers, PostgreSQL."""
    out = subprocess.run(
        [sys.executable, str(HERE / "payments.py")], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Wuye's benchmarks.")
    parser.add_argument("--full", action="store_true", help="also 1,000,000 units on PostgreSQL")
    args = parser.parse_args()
    # 100k: best of 3 (the machine is shared); 1M: once.
    configs = [("sqlite", 100_000, 3), ("postgres", 100_000, 3)]
    if args.full:
        configs.append(("postgres", 1_000_000, 1))
    print("```\n" + machine() + "\n```\n")
    print("| db | units | bill lines | run s | lines/s | baseline s | baseline lines/s | ratio "
          "| re-run s | COPY w/o FKs lines/s | COPY w/o FKs, indexes lines/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for db, units, repeat in configs:
        r = billing(db, units, repeat)
        print(
            f"| {r['db']} | {r['units']:,} | {r['bill_lines']:,} | {r['run_s']} "
            f"| {r['run_lines_per_s']:,} | {r['baseline_s']} | {r['baseline_lines_per_s']:,} "
            f"| {r['ratio']} | {r['rerun_s']} | "
            f"{r['indexed_copy_lines_per_s'] or '-'} | {r['plain_copy_lines_per_s'] or '-'} |",
            flush=True,
        )
        print(f"<!-- {json.dumps(r, ensure_ascii=False)} -->", flush=True)
    p = payments()
    print("\n| payments (4 workers, PostgreSQL) | per s | p50 ms | p99 ms |\n|---|---|---|---|")
    for phase in ("uniform", "hot_household", "baseline_sql"):
        print(f"| {phase} | {p[phase]['per_s']:,} | {p[phase]['p50_ms']} | {p[phase]['p99_ms']} |")
    print(f"<!-- {json.dumps(p, ensure_ascii=False)} -->", flush=True)


if __name__ == "__main__":
    main()
