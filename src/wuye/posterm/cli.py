"""``wuye terminal …``: open the terminal a command line names, run one action, print JSON.

The management command only parses arguments; this module finds the data directory, merges
command-line settings into the stored configuration and turns errors into one JSON object.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from wuye.posterm import config as conf
from wuye.posterm.config import ConfigError, TerminalConfig
from wuye.posterm.engine import Terminal
from wuye.posterm.reports import deliver
from wuye.posterm.server import ServerClient
from wuye.posterm.store import Store

LOG_NAME = "terminal.log"


def resolve_data_dir(opts: dict[str, Any]) -> Path:
    """Return the data directory: ``--data-dir``, else by TID, else the only one there is.

    Raises ConfigError when none can be chosen.
    """
    if opts.get("data_dir"):
        return Path(opts["data_dir"])
    if opts.get("tid"):
        return conf.default_data_dir(opts["tid"])
    parent = conf.default_data_dir("x").parent
    found = sorted(p for p in parent.glob("*") if (p / "terminal.sqlite3").exists())
    if len(found) == 1:
        return found[0]
    raise ConfigError(
        "--tid or --data-dir: "
        + (
            "no terminal configured yet (wuye terminal init)"
            if not found
            else f"{len(found)} terminals under {parent}; say which"
        )
    )


def setup_logging(data_dir: Path, *, verbose: bool = False) -> None:
    """Log the terminal's events (never card data) to ``<data_dir>/terminal.log``."""
    logger = logging.getLogger("wuye.posterm")
    target = str(data_dir / LOG_NAME)
    if any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
        return
    handler = logging.FileHandler(target, encoding="utf-8")
    os.chmod(target, 0o600)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    # The file is the terminal's log; stdout carries the JSON answer (or the screen).
    logger.propagate = False


def open_terminal(opts: dict[str, Any], *, create: bool = False) -> Terminal:
    """Open (or with ``create``, write) the terminal the options name.

    Command-line values override the stored ones and are kept, so the next command uses them.
    Raises ConfigError naming what is missing or malformed.
    """
    data_dir = resolve_data_dir(opts)
    store = Store(data_dir)
    setup_logging(data_dir, verbose=bool(opts.get("verbose")))
    cfg = conf.load(store)
    given: dict[str, str] = {k: str(opts.get(k) or "") for k in ("tid", "mid", "tmk")}
    if cfg is None:
        if not all(given.values()):
            store.close()
            raise ConfigError(
                f"{data_dir}: no configuration; give --tid, --mid and --tmk or run "
                "`wuye terminal init`"
            )
        tmk = conf.validate(tid=given["tid"], mid=given["mid"], tmk_hex=given["tmk"])
        cfg = TerminalConfig(tid=given["tid"], mid=given["mid"], tmk=tmk)
    else:
        if given["tid"] and given["tid"] != cfg.tid:
            store.close()
            raise ConfigError(f"--tid: {data_dir} belongs to terminal {cfg.tid}")
        if given["mid"] or given["tmk"]:
            cfg.tmk = conf.validate(
                tid=cfg.tid, mid=given["mid"] or cfg.mid, tmk_hex=given["tmk"] or cfg.tmk.hex()
            )
            cfg.mid = given["mid"] or cfg.mid
    for name, attr in (
        ("acquirer", "acquirer"),
        ("server", "server_url"),
        ("token", "token"),
        ("merchant_name", "merchant_name"),
        ("serial", "serial"),
        ("operator", "operator"),
    ):
        if opts.get(name):
            setattr(cfg, attr, opts[name])
    if opts.get("timeout"):
        cfg.timeout_s = float(opts["timeout"])
    cfg.acquirer_addr  # noqa: B018 - validates HOST:PORT before anything is stored
    if create or opts.get("tid") or opts.get("acquirer") or opts.get("server") or opts.get("token"):
        conf.save(store, cfg)
    return Terminal(store, cfg, training=bool(opts.get("training")))


def server_client(term: Terminal) -> ServerClient | None:
    """Return the client for the terminal's Wuye server, or None when none is configured."""
    if not term.cfg.server_url:
        return None
    return ServerClient(term.cfg.server_url, term.cfg.tid, term.cfg.token)


def flush(term: Terminal) -> dict[str, Any]:
    """Deliver pending reports now if a server is configured; return what happened."""
    d = deliver(term.store, server_client(term))
    return {"sent": d.sent, "left": d.left, "refused": d.refused, "unreachable": d.unreachable}
