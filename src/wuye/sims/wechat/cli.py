"""``wuye sim wechat``: serve the simulator, pay as a resident, show a payment code, export bills.

wuye sim wechat --port 8601                     # serve (wallet at http://127.0.0.1:8601/wallet)
wuye sim wechat pay CODE_URL --funding balance  # a resident pays a QR (balance|debit|credit)
wuye sim wechat paycode --funding debit         # show a payment code (付款码) to scan
wuye sim wechat faults lose_notifications=1     # fault injection on the running simulator
wuye sim wechat export --date 20261120 --out DIR  # trade bill + T+1 bank credit CSV
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

from wuye.channels.wechat.constants import NOTIFY_BACKOFF_S

DEFAULT_URL = "http://127.0.0.1:8601"


def _post(url: str, data: dict[str, object]) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(  # noqa: S310 - the simulator's own http URL
        url,
        data=json.dumps(data).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _serve(args: argparse.Namespace) -> int:
    from wuye.sims.wechat import sim_from_settings

    sim = sim_from_settings(backoff_scale=args.backoff_scale)
    port = sim.start(args.host, args.port)
    print(
        f"WeChat Pay simulator on http://{args.host}:{port}/ (wallet: /wallet); "
        f"merchant {sim.mchid}; notification back-off {NOTIFY_BACKOFF_S[:4]}… ×"
        f"{args.backoff_scale}",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    sim.stop()
    return 0


def _export(args: argparse.Namespace) -> int:
    from wuye.channels.qrpay.conf import setting
    from wuye.sims.wechat import state_path
    from wuye.sims.wechat.bills import bank_credit, trade_bill
    from wuye.sims.wechat.server import SimState  # noqa: F401 - the state's shape

    try:
        day = date(int(args.date[:4]), int(args.date[4:6]), int(args.date[6:8]))
    except ValueError:
        print(f"--date {args.date}: YYYYMMDD expected", file=sys.stderr)
        return 2
    path = state_path()
    state = json.loads(path.read_text()) if path.exists() else {}
    mchid = setting("WUYE_WECHAT_MCHID")
    bill = trade_bill(state, mchid=mchid, appid=setting("WUYE_WECHAT_APPID"), day=day)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bill_file = out / f"wechat-tradebill-{mchid}-{day:%Y%m%d}.csv"
    bank_file = out / f"wechat-bank-{mchid}-{day:%Y%m%d}.csv"
    bill_file.write_text(bill.text, encoding="utf-8")
    bank_file.write_text(bank_credit(bill, mchid=mchid, day=day, balance_fen=0), encoding="utf-8")
    print(
        f"{bill_file} ({bill.paid_fen} fen paid, {bill.refund_fen} refunded, "
        f"fee {bill.fee_fen} fen)\n{bank_file} (net {bill.net_fen} fen)"
    )
    return 0


def main(argv: list[str]) -> int:
    """Run ``wuye sim wechat``; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="wuye sim wechat",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8601)
    parser.add_argument(
        "--backoff-scale",
        type=float,
        default=1.0,
        help="multiply WeChat's notification back-off (0.01 for training)",
    )
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("pay", help="a resident pays a code_url")
    p.add_argument("code_url")
    p.add_argument("--funding", default="balance", choices=["balance", "debit", "card", "credit"])
    p.add_argument("--url", default=DEFAULT_URL)
    c = sub.add_parser("paycode", help="show a payment code (付款码)")
    c.add_argument("--funding", default="balance", choices=["balance", "debit", "card", "credit"])
    c.add_argument("--mode", default="ok", choices=["ok", "password", "poor"])
    c.add_argument("--url", default=DEFAULT_URL)
    f = sub.add_parser("faults", help="set fault injection: name=value …")
    f.add_argument("settings", nargs="*")
    f.add_argument("--url", default=DEFAULT_URL)
    e = sub.add_parser("export", help="write the trade bill and the T+1 bank credit of a day")
    e.add_argument("--date", required=True)
    e.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.cmd is None:
        return _serve(args)
    if args.cmd == "export":
        return _export(args)
    if args.cmd == "pay":
        status, data = _post(
            args.url + "/wallet/pay", {"code_url": args.code_url, "funding": args.funding}
        )
    elif args.cmd == "paycode":
        status, data = _post(
            args.url + "/wallet/paycode", {"funding": args.funding, "mode": args.mode}
        )
    else:
        pairs = dict(s.split("=", 1) for s in args.settings if "=" in s)
        status, data = _post(args.url + "/_sim/faults", pairs)
    print(json.dumps(data, ensure_ascii=False, indent=1))
    return 0 if status == 200 else 1
