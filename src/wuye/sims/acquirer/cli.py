"""``wuye sim acquirer``: run the acquirer host, or export its settlement and bank files.

    wuye sim acquirer --port 8583 [--terminal TID,MID,TMK ...] [--fault SPEC ...]
    wuye sim acquirer export --date YYYYMMDD --out DIR [--rates DEBIT_PPM,DEBIT_CAP_FEN,CREDIT_PPM]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import Path

from wuye.sims.acquirer.faults import FaultError, FaultPlan, parse_rule
from wuye.sims.acquirer.host import HostConfig, Registry

log = logging.getLogger("wuye.sims.acquirer")


def _default_data_dir() -> Path:
    from django.conf import settings

    return Path(settings.DATA_DIR) / "acquirer"


def _terminal(text: str) -> tuple[str, str, bytes]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TID,MID,TMK")
    tid, mid, tmk_hex = (p.strip() for p in parts)
    if len(tid) != 8:
        raise argparse.ArgumentTypeError(f"{text!r}: TID must be 8 characters")
    if len(mid) != 15:
        raise argparse.ArgumentTypeError(f"{text!r}: MID must be 15 characters")
    try:
        tmk = bytes.fromhex(tmk_hex)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: TMK must be hex") from None
    if len(tmk) != 16:
        raise argparse.ArgumentTypeError(f"{text!r}: TMK must be 32 hex digits")
    return tid, mid, tmk


def _cutoff(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: cut-off as HH:MM") from None


def _date(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: date as YYYYMMDD") from None


def _wuye_registry() -> Registry | None:
    try:
        from wuye.terminals.selectors import acquirer_terminals
    except ImportError as exc:
        log.warning("acquirer: Wuye's terminal management is not available (%s)", exc)
        return None
    return acquirer_terminals


def serve_parser() -> argparse.ArgumentParser:
    """Return the parser of the serving command line."""
    p = argparse.ArgumentParser(prog="wuye sim acquirer", description="模拟收单主机 (ISO 8583)")
    p.add_argument("--port", type=int, default=8583)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--data-dir", type=Path, help="default: $WUYE_DATA_DIR/acquirer/")
    p.add_argument("--terminal", type=_terminal, action="append", default=[],
                   metavar="TID,MID,TMK", help="register a terminal by hand (repeatable)")
    p.add_argument("--no-wuye-terminals", action="store_true",
                   help="do not read terminals from Wuye's terminal management")
    p.add_argument("--cutoff", type=_cutoff, default=time(23, 0), help="business-day cut-off")
    p.add_argument("--institution-id", default="48020000", help="field 32 and 44.2")
    p.add_argument("--double-mak", action="store_true", help="issue double-length MAKs")
    p.add_argument("--time-zone", default=None, help="host clock's zone (default TIME_ZONE)")
    p.add_argument("--fault", action="append", default=[], metavar="ACTION[:k=v,...]",
                   help="e.g. drop_response:mti=0200,pan=6222021000000000017,times=1")
    p.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    p.add_argument("--sync", choices=["normal", "full"], default="normal",
                   help="SQLite synchronous mode of the host's store")
    p.add_argument("--control-port", type=int, default=0,
                   help="loopback port for fault rules at runtime (JSON lines; 0: none)")
    return p


def export_parser() -> argparse.ArgumentParser:
    """Return the parser of ``export``."""
    p = argparse.ArgumentParser(prog="wuye sim acquirer export",
                                description="导出结算文件和银行流水 (settlement + bank files)")
    p.add_argument("--date", type=_date, required=True, help="settlement date YYYYMMDD")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir", type=Path, help="default: $WUYE_DATA_DIR/acquirer/")
    p.add_argument("--rates", help="DEBIT_PPM,DEBIT_CAP_FEN,CREDIT_PPM (default: Wuye's rates)")
    p.add_argument("--acquirer-name", default="模拟收单机构有限公司")
    p.add_argument("--acquirer-account", default="31000000000000001")
    p.add_argument("--opening-balance-fen", type=int, default=0)
    return p


def main(argv: list[str]) -> int:
    """Run ``wuye sim acquirer`` with ``argv``; return the exit status."""
    if argv[:1] == ["export"]:
        return _export(argv[1:])
    return _serve(argv)


def _serve(argv: list[str]) -> int:
    from django.conf import settings

    from wuye.sims.acquirer.control import serve_control
    from wuye.sims.acquirer.server import AcquirerServer, build_host

    args = serve_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    faults = FaultPlan()
    try:
        for text in args.fault:
            faults.add_rule(parse_rule(text))
        if args.faults:
            faults.load(args.faults)
    except FaultError as exc:
        print(f"wuye sim acquirer: {exc}", file=sys.stderr)
        return 2
    config = HostConfig(cutoff=args.cutoff, institution_id=args.institution_id,
                        single_mak=not args.double_mak,
                        time_zone=args.time_zone or settings.TIME_ZONE)
    registry = None if args.no_wuye_terminals else _wuye_registry()
    host = build_host(args.data_dir or _default_data_dir(), terminals=args.terminal,
                      config=config, faults=faults, registry=registry,
                      synchronous=args.sync.upper())
    server = AcquirerServer(host, bind=args.bind, port=args.port)

    async def run() -> None:
        port = await server.start()
        control = await serve_control(host, args.control_port) if args.control_port else None
        tids = ", ".join(t["tid"] for t in host.store.terminals()) or "none yet"
        log.info("acquirer simulator on %s:%d (terminals: %s)", args.bind, port, tids)
        loop = asyncio.get_running_loop()
        serving = asyncio.ensure_future(server.serve_forever())
        with contextlib.suppress(NotImplementedError):  # no signal handlers off the main thread
            loop.add_signal_handler(signal.SIGTERM, serving.cancel)
        try:
            await serving
        except asyncio.CancelledError:
            log.info("acquirer simulator stopping")
        finally:
            if control is not None:
                control.close()
            await server.close()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except OSError as exc:
        print(f"wuye sim acquirer: cannot listen on {args.bind}:{args.port}: {exc}",
              file=sys.stderr)
        return 2
    finally:
        host.store.close()
    return 0


def _export(argv: list[str]) -> int:
    from wuye.sims.acquirer.export import ExportError, Rates, export, wuye_fee
    from wuye.sims.acquirer.store import Store

    args = export_parser().parse_args(argv)
    data_dir = args.data_dir or _default_data_dir()
    db = Path(data_dir) / "acquirer.sqlite3"
    if not db.exists():
        print(f"wuye sim acquirer export: no simulator data in {data_dir}", file=sys.stderr)
        return 2
    store = Store(db)
    try:
        fee = Rates.parse(args.rates).fee if args.rates else wuye_fee
        paths: Iterable[Path] = export(
            store, args.date, args.out, fee=fee, acquirer_name=args.acquirer_name,
            acquirer_account=args.acquirer_account,
            opening_balance_fen=args.opening_balance_fen,
        )
    except ExportError as exc:
        print(f"wuye sim acquirer export: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    for path in paths:
        print(path)
    return 0
