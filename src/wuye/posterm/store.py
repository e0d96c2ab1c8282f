"""The terminal's own state: one SQLite file in its data directory.

Everything that must survive a crash lives here (configuration, batch and STAN, working keys,
pending reversals and refunds, unreported results, the open batch's transactions). The file is
opened with ``synchronous=FULL`` so a row is on disk when ``commit`` returns: a pending reversal
or an unreported result is written *before* the request it guards goes out (store and forward).

Secrets (TMK, working keys, PANs kept for batch upload, the copies of requests a reversal or a
refund resends) are encrypted with a Fernet key kept in the data directory (``terminal.key``,
mode 0600). Nothing here ever holds track data, a PIN or a PIN block.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

DB_NAME = "terminal.sqlite3"
KEY_NAME = "terminal.key"

SCHEMA = """
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reversal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch TEXT NOT NULL, stan TEXT NOT NULL, kind TEXT NOT NULL,
    reason TEXT NOT NULL, state TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
    request_enc TEXT NOT NULL, context TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (batch, stan)
);
CREATE TABLE IF NOT EXISTS refund_out (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch TEXT NOT NULL, stan TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
    request_enc TEXT NOT NULL, context TEXT NOT NULL, created_at TEXT NOT NULL,
    UNIQUE (batch, stan)
);
CREATE TABLE IF NOT EXISTS report (
    report_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending', tries INTEGER NOT NULL DEFAULT 0,
    answer TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS txn (
    batch TEXT NOT NULL, stan TEXT NOT NULL, kind TEXT NOT NULL,
    amount_fen INTEGER NOT NULL, rrn TEXT NOT NULL, auth_code TEXT NOT NULL,
    txn_date TEXT NOT NULL, card_class TEXT NOT NULL, masked_pan TEXT NOT NULL,
    pan_enc TEXT, entry_mode TEXT NOT NULL, status TEXT NOT NULL,
    orig_stan TEXT, refunded_fen INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch, stan)
);
CREATE TABLE IF NOT EXISTS handled_request (
    request_id TEXT PRIMARY KEY, state TEXT NOT NULL, report_id TEXT
);
"""


class StoreError(Exception):
    """The data directory cannot be used (missing key, wrong key, unreadable file)."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class Store:
    """The terminal's persistent state in ``data_dir``.

    Raises StoreError when the directory's key file is unreadable or does not open its secrets.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        key_path = self.data_dir / KEY_NAME
        if not key_path.exists():
            _write_private(key_path, Fernet.generate_key())
        try:
            self._fernet = Fernet(key_path.read_bytes().strip())
        except (OSError, ValueError) as exc:
            raise StoreError(f"{key_path}: not a usable terminal key ({exc})") from exc
        db_path = self.data_dir / DB_NAME
        if not db_path.exists():
            _write_private(db_path, b"")
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        for suffix in ("-wal", "-shm"):
            side = Path(str(db_path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one transaction, committed (to disk) on success."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # secrets --------------------------------------------------------------------------
    def seal(self, plain: bytes | str) -> str:
        """Encrypt a secret for storage."""
        data = plain.encode() if isinstance(plain, str) else plain
        return self._fernet.encrypt(data).decode()

    def unseal(self, token: str) -> bytes:
        """Decrypt a stored secret. Raises StoreError when the key does not open it."""
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken as exc:
            raise StoreError(
                "a stored secret does not open with this data directory's key"
            ) from exc

    def seal_json(self, obj: Any) -> str:
        """Encrypt a JSON-able object."""
        return self.seal(json.dumps(obj, sort_keys=True))

    def unseal_json(self, token: str) -> Any:
        """Decrypt an object sealed with seal_json."""
        return json.loads(self.unseal(token))

    # settings -------------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """Return a setting, or ``default``."""
        row = self.db.execute("SELECT value FROM setting WHERE name=?", (name,)).fetchone()
        return row["value"] if row else default

    def put(self, name: str, value: str | None) -> None:
        """Set (or, with None, delete) a setting."""
        if value is None:
            self.db.execute("DELETE FROM setting WHERE name=?", (name,))
        else:
            self.db.execute(
                "INSERT INTO setting(name, value) VALUES(?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                (name, value),
            )

    def get_secret(self, name: str) -> bytes | None:
        """Return a sealed setting's clear bytes, or None."""
        token = self.get(name)
        return None if token is None else self.unseal(token)

    def put_secret(self, name: str, value: bytes | None) -> None:
        """Seal and store a secret setting (None deletes it)."""
        self.put(name, None if value is None else self.seal(value))
