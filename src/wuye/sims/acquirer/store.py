"""The simulator's own state in a SQLite file: terminals and their keys, transactions, batches.

Keys are stored encrypted (``wuye.core.crypto``); card numbers only as a keyed hash (for
lookups) and masked (first 6, last 4). PIN blocks and track data are never stored.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wuye.core.crypto import decrypt_text, encrypt_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS terminal (
    tid TEXT PRIMARY KEY,
    mid TEXT NOT NULL,
    merchant_name TEXT NOT NULL DEFAULT '',
    tmk_enc TEXT NOT NULL,
    pik_enc TEXT,
    mak_enc TEXT,
    batch TEXT NOT NULL DEFAULT '000001',
    signed_on_at TEXT,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS txn (
    id INTEGER PRIMARY KEY,
    tid TEXT NOT NULL,
    mid TEXT NOT NULL,
    batch TEXT NOT NULL,
    stan TEXT NOT NULL,
    mti TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    pan_token TEXT NOT NULL,
    masked_pan TEXT NOT NULL,
    card_type TEXT NOT NULL,
    rrn TEXT NOT NULL,
    auth_code TEXT NOT NULL DEFAULT '',
    response_code TEXT NOT NULL,
    local_at TEXT NOT NULL,
    business_date TEXT NOT NULL,
    settle_date TEXT NOT NULL,
    orig_id INTEGER REFERENCES txn(id),
    reversed INTEGER NOT NULL DEFAULT 0,
    voided INTEGER NOT NULL DEFAULT 0,
    refunded_fen INTEGER NOT NULL DEFAULT 0,
    training INTEGER NOT NULL DEFAULT 0,
    digest TEXT NOT NULL,
    UNIQUE (tid, batch, stan, mti)
);
CREATE INDEX IF NOT EXISTS txn_settle ON txn (settle_date, mid);
CREATE UNIQUE INDEX IF NOT EXISTS txn_rrn ON txn (business_date, rrn);
CREATE TABLE IF NOT EXISTS batch (
    tid TEXT NOT NULL,
    batch TEXT NOT NULL,
    state TEXT NOT NULL,
    verdict TEXT NOT NULL DEFAULT '',
    uploaded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tid, batch)
);
CREATE TABLE IF NOT EXISTS upload_item (
    id INTEGER PRIMARY KEY,
    tid TEXT NOT NULL,
    batch TEXT NOT NULL,
    stan TEXT NOT NULL,
    masked_pan TEXT NOT NULL,
    amount_fen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rrn_seq (business_date TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pin_tries (
    pan_token TEXT NOT NULL,
    business_date TEXT NOT NULL,
    wrong INTEGER NOT NULL,
    PRIMARY KEY (pan_token, business_date)
);
"""


@dataclass
class TerminalKeys:
    """A terminal as the host holds it, keys in clear (memory only)."""

    tid: str
    mid: str
    merchant_name: str
    tmk: bytes
    pik: bytes | None
    mak: bytes | None
    batch: str


def _enc(key: bytes | None) -> str | None:
    return None if key is None else encrypt_text(key.hex())


def _dec(token: str | None) -> bytes | None:
    return None if not token else bytes.fromhex(decrypt_text(token))


class Store:
    """The SQLite file; use from one thread only (the host's worker)."""

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL"):
            raise ValueError("synchronous must be OFF, NORMAL or FULL")
        self.db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self.db.executescript(SCHEMA)
        self._lock = threading.RLock()
        # Caches of what only this store writes: dropped whenever a transaction rolls back.
        self._batch_state: dict[tuple[str, str], str] = {}
        self._pin_wrong: dict[tuple[str, str], int] = {}
        self._rrn_seq: dict[str, int] = {}

    def _drop_caches(self) -> None:
        self._batch_state.clear()
        self._pin_wrong.clear()
        self._rrn_seq.clear()

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """Run a block in one write transaction (committed on success, rolled back on error).

        Inside a transaction already, run the block as part of it.
        """
        with self._lock:  # a test thread may write (add_terminal) while the host serves
            if self.db.in_transaction:
                yield self.db
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self._drop_caches()
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # ---- terminals ----------------------------------------------------------------------

    def terminal_put(
        self, *, tid: str, mid: str, tmk: bytes, merchant_name: str, source: str
    ) -> None:
        """Register or update a terminal; a changed TMK or MID drops its working keys."""
        row = self.db.execute("SELECT mid, tmk_enc FROM terminal WHERE tid=?", (tid,)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO terminal (tid, mid, merchant_name, tmk_enc, source) "
                "VALUES (?, ?, ?, ?, ?)",
                (tid, mid, merchant_name, _enc(tmk), source),
            )
            return
        if row["mid"] != mid or _dec(row["tmk_enc"]) != tmk:
            self.db.execute(
                "UPDATE terminal SET mid=?, merchant_name=?, tmk_enc=?, pik_enc=NULL, "
                "mak_enc=NULL, source=? WHERE tid=?",
                (mid, merchant_name, _enc(tmk), source, tid),
            )
        else:
            self.db.execute(
                "UPDATE terminal SET merchant_name=? WHERE tid=?", (merchant_name, tid)
            )

    def terminal_get(self, tid: str) -> TerminalKeys | None:
        """Return a terminal with its keys decrypted, or ``None``."""
        row = self.db.execute("SELECT * FROM terminal WHERE tid=?", (tid,)).fetchone()
        if row is None:
            return None
        tmk = _dec(row["tmk_enc"])
        assert tmk is not None
        return TerminalKeys(
            tid=row["tid"], mid=row["mid"], merchant_name=row["merchant_name"], tmk=tmk,
            pik=_dec(row["pik_enc"]), mak=_dec(row["mak_enc"]), batch=row["batch"],
        )

    def terminal_set_keys(
        self, tid: str, *, pik: bytes | None, mak: bytes | None, at: str | None
    ) -> None:
        """Store a terminal's working keys (``None`` to clear them at sign-off)."""
        self.db.execute(
            "UPDATE terminal SET pik_enc=?, mak_enc=?, signed_on_at=? WHERE tid=?",
            (_enc(pik), _enc(mak), at, tid),
        )

    def terminal_set_batch(self, tid: str, batch: str) -> None:
        """Set the batch number the terminal must use next."""
        self.db.execute("UPDATE terminal SET batch=? WHERE tid=?", (batch, tid))

    def terminals_drop(self, *, source: str, keep: set[str]) -> list[str]:
        """Forget the terminals from ``source`` not in ``keep``; return their TIDs."""
        gone = [row[0] for row in self.db.execute(
            "SELECT tid FROM terminal WHERE source=?", (source,)) if row[0] not in keep]
        self.db.executemany("DELETE FROM terminal WHERE tid=?", [(tid,) for tid in gone])
        return gone

    def terminals(self) -> list[sqlite3.Row]:
        """Return every terminal row (keys stay encrypted)."""
        return list(self.db.execute("SELECT tid, mid, merchant_name, batch, source FROM terminal"))

    # ---- transactions -------------------------------------------------------------------

    def txn_by_key(self, tid: str, batch: str, stan: str, mti: str) -> sqlite3.Row | None:
        """Return the transaction a terminal sent with this batch, STAN and MTI."""
        return self.db.execute(
            "SELECT * FROM txn WHERE tid=? AND batch=? AND stan=? AND mti=?",
            (tid, batch, stan, mti),
        ).fetchone()

    def txn_get(self, txn_id: int) -> sqlite3.Row | None:
        """Return one transaction by id."""
        return self.db.execute(
            "SELECT * FROM txn WHERE id=?", (txn_id,)
        ).fetchone()

    def txn_insert(self, **values: Any) -> int:
        """Insert a transaction row; return its id."""
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = self.db.execute(f"INSERT INTO txn ({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608
        assert cur.lastrowid is not None
        return cur.lastrowid

    def txn_delete(self, txn_id: int) -> None:
        """Forget a declined transaction that the terminal sends again with new content."""
        self.db.execute("DELETE FROM txn WHERE id=?", (txn_id,))

    def txn_update(self, txn_id: int, **values: Any) -> None:
        """Update columns of one transaction."""
        sets = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE txn SET {sets} WHERE id=?", (*values.values(), txn_id))  # noqa: S608

    def batch_txns(self, tid: str, batch: str) -> list[sqlite3.Row]:
        """Return the approved, unreversed, non-balance transactions of a terminal's batch."""
        return list(
            self.db.execute(
                "SELECT * FROM txn WHERE tid=? AND batch=? AND response_code='00' "
                "AND reversed=0 AND kind IN ('PURCHASE', 'VOID', 'REFUND') ORDER BY id",
                (tid, batch),
            )
        )

    def settlement_rows(self, settle_date: str) -> list[sqlite3.Row]:
        """Return the rows of a settlement date's files: approved purchases not voided, refunds.

        Reversed and training transactions never appear.
        """
        return list(
            self.db.execute(
                "SELECT t.*, o.rrn AS orig_rrn FROM txn t LEFT JOIN txn o ON o.id = t.orig_id "
                "WHERE t.settle_date=? AND t.response_code='00' AND t.reversed=0 "
                "AND t.training=0 AND ((t.kind='PURCHASE' AND t.voided=0) OR t.kind='REFUND') "
                "ORDER BY t.mid, t.local_at, t.id",
                (settle_date,),
            )
        )

    def net_before(self, mid: str, settle_date: str) -> list[sqlite3.Row]:
        """Return every settlement row of ``mid`` before ``settle_date`` (for the balance)."""
        return list(
            self.db.execute(
                "SELECT t.*, o.rrn AS orig_rrn FROM txn t LEFT JOIN txn o ON o.id = t.orig_id "
                "WHERE t.mid=? AND t.settle_date<? "
                "AND t.response_code='00' AND t.reversed=0 AND t.training=0 "
                "AND ((t.kind='PURCHASE' AND t.voided=0) OR t.kind='REFUND')",
                (mid, settle_date),
            )
        )

    def next_rrn_seq(self, business_date: str, *, persist: bool) -> int:
        """Return the next RRN sequence number of a host business day.

        A transaction row keeps its own RRN, so ``persist=False`` suffices for one; other
        messages (sign-on, settlement) record the number in ``rrn_seq``. After a restart the
        count resumes above both.
        """
        seq = self._rrn_seq.get(business_date)
        if seq is None:
            row = self.db.execute(
                "SELECT MAX(n) FROM (SELECT seq AS n FROM rrn_seq WHERE business_date=? "
                "UNION ALL SELECT CAST(substr(rrn, 5) AS INTEGER) FROM txn "
                "WHERE business_date=?)",
                (business_date, business_date),
            ).fetchone()
            seq = int(row[0] or 0)
        seq += 1
        self._rrn_seq[business_date] = seq
        if persist:
            self.db.execute(
                "INSERT INTO rrn_seq (business_date, seq) VALUES (?, ?) "
                "ON CONFLICT (business_date) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                (business_date, seq),
            )
        return seq

    # ---- PIN tries ----------------------------------------------------------------------

    def pin_wrong(self, pan_token: str, business_date: str) -> int:
        """Return how many wrong PINs this card has had this business day."""
        key = (pan_token, business_date)
        if key not in self._pin_wrong:
            row = self.db.execute(
                "SELECT wrong FROM pin_tries WHERE pan_token=? AND business_date=?", key
            ).fetchone()
            self._pin_wrong[key] = int(row[0]) if row else 0
        return self._pin_wrong[key]

    def pin_set_wrong(self, pan_token: str, business_date: str, wrong: int) -> None:
        """Record the count of wrong PINs for a card and day."""
        self._pin_wrong[(pan_token, business_date)] = wrong
        self.db.execute(
            "INSERT INTO pin_tries (pan_token, business_date, wrong) VALUES (?, ?, ?) "
            "ON CONFLICT (pan_token, business_date) DO UPDATE SET wrong=excluded.wrong",
            (pan_token, business_date, wrong),
        )

    # ---- batches ------------------------------------------------------------------------

    def batch_state(self, tid: str, batch: str) -> str:
        """Return ``open``, ``settled`` (0500 received) or ``closed`` (upload ended)."""
        key = (tid, batch)
        if key not in self._batch_state:
            row = self.db.execute("SELECT state FROM batch WHERE tid=? AND batch=?", key).fetchone()
            self._batch_state[key] = str(row[0]) if row else "open"
        return self._batch_state[key]

    def batch_settle(self, tid: str, batch: str, verdict: str) -> None:
        """Mark a batch settled with the host's verdict."""
        self._batch_state[(tid, batch)] = "settled"
        self.db.execute(
            "INSERT INTO batch (tid, batch, state, verdict) VALUES (?, ?, 'settled', ?) "
            "ON CONFLICT (tid, batch) DO UPDATE SET state='settled', verdict=excluded.verdict",
            (tid, batch, verdict),
        )

    def batch_close(self, tid: str, batch: str, uploaded: int) -> None:
        """Close a batch after the terminal's upload-end message."""
        self._batch_state[(tid, batch)] = "closed"
        self.db.execute(
            "INSERT INTO batch (tid, batch, state, uploaded) VALUES (?, ?, 'closed', ?) "
            "ON CONFLICT (tid, batch) DO UPDATE SET state='closed', uploaded=excluded.uploaded",
            (tid, batch, uploaded),
        )

    def upload_add(self, tid: str, batch: str, stan: str, masked_pan: str, amount_fen: int) -> None:
        """Record one batch-upload item (masked PAN only)."""
        self.db.execute(
            "INSERT INTO upload_item (tid, batch, stan, masked_pan, amount_fen) "
            "VALUES (?, ?, ?, ?, ?)",
            (tid, batch, stan, masked_pan, amount_fen),
        )

    def upload_count(self, tid: str, batch: str) -> int:
        """Return how many batch-upload items a terminal sent for a batch."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM upload_item WHERE tid=? AND batch=?", (tid, batch)
        ).fetchone()
        return int(row[0])
