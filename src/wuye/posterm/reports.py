"""Deliver stored results and settlements to Wuye's server, each exactly once.

A report is written to the store in the same transaction as the result it carries, before
anybody is told. ``deliver`` posts the pending ones in the order they were made and marks one
sent only after a ``200``; the server treats a repeated ``report_id`` as the first, so a crash
between its ``200`` and our mark is harmless. Unreachable server: stop and try later. ``409``:
try later. Any other ``4xx``: the report is kept as ``refused`` (with the server's reason) and
not sent again, as the contract says.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from wuye.posterm.server import ServerClient, ServerRefused, ServerUnreachable
from wuye.posterm.store import Store

log = logging.getLogger("wuye.posterm")


@dataclass
class Delivery:
    """What one ``deliver`` call did."""

    sent: int = 0
    refused: int = 0
    left: int = 0
    unreachable: bool = False


def deliver(store: Store, client: ServerClient | None) -> Delivery:
    """Post every pending report; return what was sent, refused and left for later."""
    result = Delivery()
    rows = store.db.execute(
        "SELECT report_id, endpoint, payload FROM report WHERE state='pending' ORDER BY rowid"
    ).fetchall()
    if client is None or not client.base_url:
        result.left = len(rows)
        return result
    for i, row in enumerate(rows):
        payload = json.loads(row["payload"])
        try:
            if row["endpoint"] == "settlements":
                answer = client.report_settlement(payload)
            else:
                answer = client.report_result(payload)
        except ServerUnreachable as exc:
            log.warning("report %s: server unreachable (%s); kept", row["report_id"], exc)
            result.unreachable = True
            result.left = len(rows) - i
            _bump(store, row["report_id"])
            return result
        except ServerRefused as exc:
            if exc.status == 409:
                log.warning("report %s: 409 (%s); will try again", row["report_id"], exc.error)
                _bump(store, row["report_id"])
                result.left += 1
                continue
            log.error("report %s refused: %s", row["report_id"], exc)
            with store.atomic():
                store.db.execute(
                    "UPDATE report SET state='refused', tries=tries+1, answer=? WHERE report_id=?",
                    (
                        json.dumps({"status": exc.status, "error": exc.error}, ensure_ascii=False),
                        row["report_id"],
                    ),
                )
            result.refused += 1
            continue
        with store.atomic():
            store.db.execute(
                "UPDATE report SET state='sent', tries=tries+1, answer=? WHERE report_id=?",
                (json.dumps(answer, ensure_ascii=False), row["report_id"]),
            )
        log.info("report %s delivered: %s", row["report_id"], answer.get("status"))
        result.sent += 1
    return result


def _bump(store: Store, report_id: str) -> None:
    with store.atomic():
        store.db.execute("UPDATE report SET tries=tries+1 WHERE report_id=?", (report_id,))


def answer_for(store: Store, report_id: str) -> dict | None:
    """Return the server's stored answer to a delivered report, or None."""
    row = store.db.execute(
        "SELECT answer FROM report WHERE report_id=? AND state='sent'", (report_id,)
    ).fetchone()
    return json.loads(row["answer"]) if row and row["answer"] else None
