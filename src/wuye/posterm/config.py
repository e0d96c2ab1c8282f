"""The terminal's configuration, kept in its data directory (``wuye terminal init`` writes it).

The default data directory is ``$WUYE_DATA_DIR/terminal/<TID>/``. The TMK and the Wuye
server token are stored encrypted (see ``store``); the rest is plain.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from wuye.posterm.store import Store

APP_VERSION = "1.0.0"
PLAIN = (
    "tid",
    "mid",
    "acquirer",
    "server_url",
    "merchant_name",
    "serial",
    "tpdu_dest",
    "operator",
    "timeout_s",
    "receipt_header",
    "params_version",
    "app_version",
)


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names which."""


@dataclass
class TerminalConfig:
    """What a terminal needs to know to work."""

    tid: str
    mid: str
    tmk: bytes
    acquirer: str = "127.0.0.1:8583"
    server_url: str = ""
    token: str = ""
    merchant_name: str = ""
    serial: str = ""
    tpdu_dest: str = "0003"
    operator: str = "001"
    timeout_s: float = 30.0
    receipt_header: str = ""
    params_version: int = 0
    app_version: str = APP_VERSION
    entry_modes: list[str] = field(default_factory=lambda: ["stripe", "chip", "tap"])

    @property
    def acquirer_addr(self) -> tuple[str, int]:
        """Return the acquirer as (host, port). Raises ConfigError when malformed."""
        return parse_hostport(self.acquirer)


def parse_hostport(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT``. Raises ConfigError naming the value when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--acquirer: {value!r} is not HOST:PORT")
    return host, int(port)


def validate(*, tid: str, mid: str, tmk_hex: str) -> bytes:
    """Check TID, MID and TMK; return the TMK bytes. Raises ConfigError naming the bad one."""
    if not re.fullmatch(r"[0-9A-Za-z]{8}", tid or ""):
        raise ConfigError(f"--tid: {tid!r} must be 8 letters or digits")
    if not re.fullmatch(r"[0-9A-Za-z]{15}", mid or ""):
        raise ConfigError(f"--mid: {mid!r} must be 15 letters or digits")
    if not re.fullmatch(r"[0-9A-Fa-f]{32}", tmk_hex or ""):
        raise ConfigError("--tmk: must be 32 hex digits (a double-length 3DES key)")
    return bytes.fromhex(tmk_hex)


def default_data_dir(tid: str) -> Path:
    """Return ``$WUYE_DATA_DIR/terminal/<TID>/``."""
    base = os.environ.get("WUYE_DATA_DIR") or str(settings.DATA_DIR)
    return Path(base) / "terminal" / tid


def save(store: Store, cfg: TerminalConfig) -> None:
    """Write ``cfg`` into the store (TMK and token sealed)."""
    with store.atomic():
        for name in PLAIN:
            store.put(f"cfg.{name}", str(getattr(cfg, name)))
        store.put("cfg.entry_modes", ",".join(cfg.entry_modes))
        store.put_secret("cfg.tmk", cfg.tmk)
        store.put_secret("cfg.token", cfg.token.encode())


def load(store: Store) -> TerminalConfig | None:
    """Return the stored configuration, or None when the directory has none."""
    tid = store.get("cfg.tid")
    tmk = store.get_secret("cfg.tmk")
    if tid is None or tmk is None:
        return None
    values = {name: store.get(f"cfg.{name}") for name in PLAIN}
    token = store.get_secret("cfg.token") or b""
    return TerminalConfig(
        tid=tid,
        mid=values["mid"] or "",
        tmk=tmk,
        acquirer=values["acquirer"] or "127.0.0.1:8583",
        server_url=values["server_url"] or "",
        token=token.decode(),
        merchant_name=values["merchant_name"] or "",
        serial=values["serial"] or "",
        tpdu_dest=values["tpdu_dest"] or "0003",
        operator=values["operator"] or "001",
        timeout_s=float(values["timeout_s"] or 30),
        receipt_header=values["receipt_header"] or "",
        params_version=int(values["params_version"] or 0),
        app_version=values["app_version"] or APP_VERSION,
        entry_modes=(store.get("cfg.entry_modes") or "stripe,chip,tap").split(","),
    )


def terminal_init(
    *,
    tid: str,
    mid: str,
    tmk_hex: str,
    acquirer: str,
    server_url: str,
    token: str,
    merchant_name: str = "",
    serial: str = "",
    data_dir: Path | None = None,
) -> Path:
    """Write a terminal's configuration (what ``wuye terminal init`` does); return its directory.

    The demo loader calls this with the token ``terminals.services.terminal_register`` returns.
    Batch, STAN and pending work already in the directory are kept. Raises ConfigError naming
    a malformed value.
    """
    tmk = validate(tid=tid, mid=mid, tmk_hex=tmk_hex)
    parse_hostport(acquirer)
    path = Path(data_dir) if data_dir else default_data_dir(tid)
    store = Store(path)
    try:
        old = load(store)
        if old is not None and old.tid != tid:
            raise ConfigError(f"--data-dir: {path} belongs to terminal {old.tid}")
        cfg = old or TerminalConfig(tid=tid, mid=mid, tmk=tmk)
        cfg.mid, cfg.tmk, cfg.acquirer, cfg.server_url, cfg.token = (
            mid,
            tmk,
            acquirer,
            server_url,
            token,
        )
        cfg.merchant_name = merchant_name or cfg.merchant_name
        cfg.serial = serial or cfg.serial
        save(store, cfg)
    finally:
        store.close()
    return path
