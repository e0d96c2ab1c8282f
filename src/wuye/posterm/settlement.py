"""End-of-day settlement: 0500 with the batch's totals, batch upload (0320) when the host
says not balanced, the end message; the batch closes and its PANs are erased."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from wuye.iso8583.fields import (
    MAX_BATCH_ITEMS,
    BatchItem,
    SettlementField48,
    Totals,
    build_batch_end_48,
    build_batch_upload_48,
)
from wuye.posterm import wire
from wuye.posterm.link import NoResponse
from wuye.posterm.outcome import Outcome, TerminalError, year_of

if TYPE_CHECKING:
    from wuye.posterm.engine import Terminal

log = logging.getLogger("wuye.posterm")


def totals(term: Terminal, batch: str | None = None) -> dict[str, int]:
    """Return the batch's debit/credit totals as §3 counts them."""
    batch = batch or term.batch
    db = term.store.db
    debit = db.execute(
        "SELECT COALESCE(SUM(amount_fen),0), COUNT(*) FROM txn WHERE batch=? AND kind='purchase'",
        (batch,),
    ).fetchone()
    credit = db.execute(
        "SELECT COALESCE(SUM(amount_fen),0), COUNT(*) FROM txn WHERE batch=? "
        "AND kind IN ('void','refund')",
        (batch,),
    ).fetchone()
    return {
        "debit_total_fen": int(debit[0]),
        "debit_count": int(debit[1]),
        "credit_total_fen": int(credit[0]),
        "credit_count": int(credit[1]),
    }


def settle(term: Terminal, *, request_id: str | None = None) -> Outcome:
    """Settle the open batch: 0500, batch upload when not balanced, end message; close it.

    Raises TerminalError when the host does not answer or declines the settlement (the
    batch then stays open).
    """
    # Settlement is the last chance for reversals kept after their tries: give them another
    # round, so the host's totals lose what the terminal never counted.
    with term.store.atomic():
        term.store.db.execute("UPDATE reversal SET state='due', tries=0 WHERE state='kept'")
    term._prepare()
    batch = term.batch
    t = totals(term, batch)
    stan = term._next_stan()
    f48 = SettlementField48(
        Totals(t["debit_total_fen"], t["debit_count"], t["credit_total_fen"], t["credit_count"])
    ).build()
    req = term._base("0500")
    req.update(
        {
            "11": stan,
            "48": f48,
            "49": "156",
            "60": wire.field60("00", batch, "201"),
            "63": term.cfg.operator,
        }
    )
    try:
        reply = term._exchange(req, mak=None)
    except NoResponse as exc:
        raise TerminalError(f"结算无应答 (settlement got no answer): {exc}") from exc
    resp = reply.fields
    if not term._matches(req, resp) or resp.get("39") != "00":
        raise TerminalError(f"结算失败 (settlement declined): {resp.get('39')}")
    try:
        flag = SettlementField48.parse(str(resp.get("48") or "")).domestic_code
    except ValueError:
        flag = ""
    verdict = {"1": "balanced", "2": "not_balanced"}.get(flag, "error")
    if verdict == "error":
        raise TerminalError(f"结算应答无对账结果 (settlement answer has no verdict): {flag!r}")
    uploaded = _batch_upload(term, batch, every=verdict == "not_balanced")
    now = term.clock()
    settle_date = (
        year_of(resp.get("15", ""), now.date()) if resp.get("15") else now.strftime("%Y%m%d")
    )
    payload: dict[str, Any] = {
        "report_id": f"{term.cfg.tid}-{batch}-settle",
        "batch": batch,
        "verdict": verdict,
        **t,
        "settle_date": settle_date,
        "settled_at": now.isoformat(timespec="seconds"),
    }
    next_batch = f"{int(batch) % 999_999 + 1:06d}"
    with term.store.atomic():
        term.store.db.execute("UPDATE txn SET pan_enc=NULL WHERE batch=?", (batch,))
        term.store.put("state.batch", next_batch)
        term.store.db.execute(
            "INSERT OR IGNORE INTO report(report_id, endpoint, payload, created_at)"
            " VALUES (?, 'settlements', ?, ?)",
            (payload["report_id"], json.dumps(payload), now.isoformat(timespec="seconds")),
        )
        if request_id:
            term.store.db.execute(
                "INSERT INTO handled_request(request_id, state, report_id)"
                " VALUES (?, 'done', ?)"
                " ON CONFLICT(request_id) DO UPDATE SET state='done'",
                (request_id, payload["report_id"]),
            )
    return Outcome(
        kind="settle",
        approved=True,
        response_code="00",
        message="结算完成",
        batch=batch,
        stan=stan,
        settle_date=settle_date,
        training=term.training,
        report_id=payload["report_id"],
        extra={"verdict": verdict, **t, "uploaded": uploaded, "next_batch": next_batch},
    )


def _batch_upload(term: Terminal, batch: str, *, every: bool) -> int:
    items: list[BatchItem] = []
    if every:
        for row in term.store.db.execute(
            "SELECT * FROM txn WHERE batch=? ORDER BY stan", (batch,)
        ).fetchall():
            pan = term.store.unseal_json(row["pan_enc"])["pan"] if row["pan_enc"] else "0"
            items.append(BatchItem(stan=row["stan"], pan=pan, amount_fen=row["amount_fen"]))
    for start in range(0, len(items), MAX_BATCH_ITEMS):
        _upload(term, batch, "201", build_batch_upload_48(items[start : start + MAX_BATCH_ITEMS]))
    _upload(term, batch, "202", build_batch_end_48(len(items)))
    return len(items)


def _upload(term: Terminal, batch: str, code: str, f48: str) -> None:
    stan = term._next_stan()
    req = term._base("0320")
    req.update({"11": stan, "48": f48, "60": wire.field60("00", batch, code)})
    try:
        reply = term._exchange(req, mak=None)
    except NoResponse as exc:
        raise TerminalError(f"批上送无应答 (batch upload got no answer): {exc}") from exc
    if not term._matches(req, reply.fields) or reply.fields.get("39") != "00":
        raise TerminalError(f"批上送被拒 (batch upload declined): {reply.fields.get('39')}")
