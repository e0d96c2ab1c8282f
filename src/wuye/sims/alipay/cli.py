"""``wuye sim alipay``: the Alipay simulator and its wallet from the command line.

    wuye sim alipay --port 8602                       serve gateway + wallet + bills
    wuye sim alipay pay QR_CODE --funding huabei      pay a scanned qr_code from the wallet
    wuye sim alipay paycode --funding balance [--confirm]   print a payment code (被扫)
    wuye sim alipay confirm CODE                      the buyer confirms a waiting payment
    wuye sim alipay export --date YYYYMMDD --out DIR  the day's bill zip + T+1 bank credit CSV
    wuye sim alipay fault --lose 1 --duplicate 3 ...  fault injection on the running server

The wallet commands talk to the running server (``--sim URL``, default
``ALIPAY_SIM_URL``); ``export`` reads the trades the server keeps in the data dir.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from wuye.sims.alipay.state import FUNDINGS, AlipaySim


def sim_from_settings(*, base_url: str | None = None) -> AlipaySim:
    """Return the simulator for the configured app (demo keys, state in the data dir)."""
    from django.conf import settings

    from wuye.channels.alipay.adapter import setting
    from wuye.channels.alipay.keys import demo_keys, private_key_load, public_key_load

    demo = demo_keys(settings.DATA_DIR)
    app_private = setting("ALIPAY_APP_PRIVATE_KEY")
    app_public = (
        private_key_load(app_private).public_key()
        if app_private
        else public_key_load(demo.app_public)
    )
    return AlipaySim(
        app_id=setting("ALIPAY_APP_ID"),
        pid=setting("ALIPAY_SIM_PID", "2088000012345678"),
        app_public_key=app_public,
        alipay_private_key=private_key_load(demo.alipay_private),
        base_url=base_url or setting("ALIPAY_SIM_URL"),
        state_dir=Path(settings.DATA_DIR) / "alipay",
    )


def _post(url: str, data: dict[str, str] | bytes, ctype: str = "") -> tuple[int, str]:
    body = data if isinstance(data, bytes) else urllib.parse.urlencode(data).encode()
    headers = {"Content-Type": ctype or "application/x-www-form-urlencoded"}
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
            return r.status, r.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        raise SystemExit(f"simulator not reachable at {url}: {exc}") from exc


def _serve(args: argparse.Namespace) -> int:
    from wuye.sims.alipay.bills import FeeFn, merchant_fee
    from wuye.sims.alipay.notifier import Notifier
    from wuye.sims.alipay.server import SimServer

    base = args.base_url or f"http://{args.host}:{args.port}"
    sim = sim_from_settings(base_url=base)
    found: list[FeeFn] = []

    def fee(trade: Any, amount_fen: int, on: Any) -> int:
        # Looked up when a bill is asked for: the demo makes the merchant after we start.
        if not found:
            found.append(merchant_fee(sim))  # NoMerchant: the bill answers 503, saying why
        return found[0](trade, amount_fen, on)

    server = SimServer(
        sim, host=args.host, port=args.port, notifier=Notifier(scale=args.retry_scale), fee=fee
    )
    server.start()
    print(f"Alipay simulator on {server.url} (gateway {server.url}/gateway.do, app {sim.app_id})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _pay(args: argparse.Namespace) -> int:
    url = args.qr_code if "://" in args.qr_code else f"{args.sim}/qr/{args.qr_code}"
    status, text = _post(url, {"funding": args.funding})
    if status != 200:
        print(f"payment failed ({status})", file=sys.stderr)
        return 1
    print("paid" if 'id="paid"' in text else text)
    return 0


def _paycode(args: argparse.Namespace) -> int:
    status, text = _post(
        f"{args.sim}/wallet/paycode",
        {"funding": args.funding, "confirm": "1" if args.confirm else "0"},
    )
    print(text)
    return 0 if status == 200 else 1


def _confirm(args: argparse.Namespace) -> int:
    status, text = _post(f"{args.sim}/wallet/confirm", {"code": args.code})
    print(text)
    return 0 if status == 200 else 1


def _export(args: argparse.Namespace) -> int:
    from wuye.sims.alipay.bills import NoMerchant, bank_credit_csv, bill_zip, merchant_fee

    try:
        day = datetime.strptime(args.date, "%Y%m%d").date()
    except ValueError:
        print(f"--date: YYYYMMDD expected, got {args.date!r}", file=sys.stderr)
        return 2
    sim = sim_from_settings()
    try:
        fee = merchant_fee(sim)
    except NoMerchant as exc:
        print(str(exc), file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    zip_path = out / f"{sim.pid}0156_{day:%Y%m%d}.csv.zip"
    zip_path.write_bytes(bill_zip(sim, day, fee, exported_at=sim.now()))
    bank_path = out / f"bank_alipay_{day:%Y%m%d}.csv"
    bank_path.write_text(
        bank_credit_csv(sim, day, fee, account_no=args.counterparty_account), encoding="utf-8"
    )
    print(zip_path)
    print(bank_path)
    return 0


def _fault(args: argparse.Namespace) -> int:
    wanted = {
        k: v
        for k, v in {
            "lose_notifications": args.lose,
            "duplicate_notifications": args.duplicate,
            "delay_notifications_s": args.delay,
            "reorder_notifications": args.reorder,
            "bad_notification_signature": args.bad_notify_sign,
            "bad_response_signature": args.bad_response_sign,
            "timeout_next": args.timeout_next,
        }.items()
        if v is not None
    }
    status, text = _post(f"{args.sim}/faults", json.dumps(wanted).encode(), "application/json")
    print(text)
    return 0 if status == 200 else 1


def parser() -> argparse.ArgumentParser:
    from wuye.channels.alipay.adapter import setting

    p = argparse.ArgumentParser(
        prog="wuye sim alipay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd")
    serve = sub.add_parser("serve", help="run the simulator (the default)")
    for target in (p, serve):
        target.add_argument("--port", type=int, default=8602)
        target.add_argument("--host", default="127.0.0.1")
        target.add_argument("--base-url", default="", help="public base URL of the simulator")
        target.add_argument(
            "--retry-scale",
            type=float,
            default=1.0,
            help="multiply Alipay's notification back-off (0.01: minutes become seconds)",
        )
    sim_url = setting("ALIPAY_SIM_URL")
    pay = sub.add_parser("pay", help="pay a qr_code from the wallet")
    pay.add_argument("qr_code")
    pay.add_argument("--funding", choices=sorted(FUNDINGS), default="balance")
    code = sub.add_parser("paycode", help="show a payment code (被扫)")
    code.add_argument("--funding", choices=sorted(FUNDINGS), default="balance")
    code.add_argument("--confirm", action="store_true", help="the buyer must confirm it")
    conf = sub.add_parser("confirm", help="confirm a payment waiting for the buyer")
    conf.add_argument("code")
    exp = sub.add_parser("export", help="write the day's bill zip and bank credit CSV")
    exp.add_argument("--date", required=True)
    exp.add_argument("--out", required=True)
    exp.add_argument("--counterparty-account", default="1001202919000001234")
    fault = sub.add_parser("fault", help="inject faults into the running simulator")
    fault.add_argument("--lose", type=int)
    fault.add_argument("--duplicate", type=int)
    fault.add_argument("--delay", type=float)
    fault.add_argument("--reorder", action=argparse.BooleanOptionalAction, default=None)
    fault.add_argument("--bad-notify-sign", type=int)
    fault.add_argument("--bad-response-sign", type=int)
    fault.add_argument("--timeout-next", type=int)
    for s in (pay, code, conf, fault):
        s.add_argument("--sim", default=sim_url, help="the running simulator's base URL")
    return p


def main(argv: list[str]) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(argv)
    handlers = {
        "pay": _pay,
        "paycode": _paycode,
        "confirm": _confirm,
        "export": _export,
        "fault": _fault,
    }
    return handlers.get(args.cmd or "serve", _serve)(args)
