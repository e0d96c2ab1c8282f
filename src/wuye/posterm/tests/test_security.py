"""Store and forward happens before the wire; no card secret is ever at rest or in a log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wuye.posterm.card import Card
from wuye.posterm.cli import setup_logging
from wuye.posterm.slip import write_slip
from wuye.posterm.store import DB_NAME
from wuye.posterm.tests.conftest import make_terminal

PAN = "6222021000000000074"
PIN = "654321"


def test_the_reversal_is_on_disk_before_the_purchase_reaches_the_host(data_dir, host):
    term = make_terminal(data_dir, host.port)
    term.sign_on()
    seen = []

    def look(req):
        if req["t"] == "0200":
            db = sqlite3.connect(data_dir / DB_NAME)
            seen.append(
                db.execute("SELECT state FROM reversal WHERE stan=?", (req["11"],)).fetchall()
            )
            db.close()

    host.state.hook = look
    host.state.drop_next = 1
    term.purchase(amount_fen=100, card=Card("6222021000000000017"), pin="123456")
    assert seen == [[("armed",)]]
    # the reversal went out before the next purchase, which then got through
    term.purchase(amount_fen=100, card=Card("6222021000000000017"), pin="123456")
    mtis = [r["t"] for r in host.state.seen if r["t"] != "0800"]
    assert mtis == ["0200", "0400", "0200"]


def test_a_refund_is_stored_before_it_is_sent_and_sent_again_unchanged(data_dir, host):
    term = make_terminal(data_dir, host.port, timeout_s=0.5)
    p = term.purchase(amount_fen=900, card=Card("6222021000000000017"), pin="123456")
    host.state.drop_next = 1
    out = term.refund(rrn=p.rrn, amount_fen=300)
    assert out.pending and term.counts()["pending_refunds"] == 1
    term.store.close()
    term2 = make_terminal(data_dir, host.port)
    term2.recover()
    first, again = host.requests("0220")
    assert first == again
    assert term2.counts()["pending_refunds"] == 0
    assert host.state.approved[(again["60"][2:8], again["11"])]["amount"] == 300


def _scan(root: Path, needles: dict[str, bytes]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{name} in {path.name}" for name, b in needles.items() if b in data]
    return found


def test_no_pan_track_pin_or_pin_block_in_the_data_dir_or_log(data_dir, host, tmp_path):
    term = make_terminal(data_dir, host.port, timeout_s=0.5)
    setup_logging(data_dir, verbose=True)
    card = Card(PAN, entry="chip")
    p1 = term.purchase(amount_fen=1000, card=card, pin=PIN)
    write_slip(p1, term.cfg, data_dir / "slips")
    p2 = term.purchase(amount_fen=2000, card=Card(PAN, entry="stripe"), pin=PIN)
    host.state.drop_next = 1
    term.purchase(amount_fen=3000, card=card, pin=PIN)  # reversed
    term.void(rrn=p1.rrn)
    term.refund(rrn=p2.rrn, amount_fen=500)
    term.balance(card=card, pin=PIN)
    host.state.approved.clear()  # force a batch upload (PANs leave encrypted storage)
    assert term.settle().extra["verdict"] == "not_balanced"
    blocks = [r["52"] for r in host.state.seen if "52" in r]
    assert blocks
    needles = {
        "PAN": PAN.encode(),
        "PAN (BCD)": bytes.fromhex(PAN[:18]),
        "track 2": f"{PAN}=".encode(),
        "PIN": PIN.encode(),
        **{f"PIN block {i}": b for i, b in enumerate(blocks)},
    }
    term.store.db.execute("PRAGMA wal_checkpoint(FULL)")
    assert _scan(data_dir, needles) == []
    # after the batch closed, not even the sealed PANs are kept
    assert (
        term.store.db.execute("SELECT COUNT(*) FROM txn WHERE pan_enc IS NOT NULL").fetchone()[0]
        == 0
    )
    assert (data_dir / "terminal.key").stat().st_mode & 0o077 == 0
    assert (data_dir / DB_NAME).stat().st_mode & 0o077 == 0
