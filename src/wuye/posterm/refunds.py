"""Refunds (0220): stored before they are sent, sent again unchanged until answered."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from wuye.posterm import wire
from wuye.posterm.card import Card
from wuye.posterm.link import NoResponse
from wuye.posterm.outcome import MESSAGES, Outcome, TerminalError, jsonable, unjson, year_of

if TYPE_CHECKING:
    from wuye.posterm.engine import Terminal

log = logging.getLogger("wuye.posterm")


def refund(
    term: Terminal,
    *,
    rrn: str,
    amount_fen: int,
    card: Card | None = None,
    original: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> Outcome:
    """Refund ``amount_fen`` of purchase ``rrn`` (0220, store and forward).

    The original comes from this terminal's records or from ``original`` (batch, stan,
    date MMDD, amount_fen as the server sends it). Raises TerminalError when neither knows
    it, when the amount exceeds what is left, or when no card is given and the card number
    of the original is no longer held.
    """
    if not isinstance(amount_fen, int) or amount_fen <= 0:
        raise TerminalError(f"--amount: {amount_fen!r} fen is not a positive amount")
    orig = term._original(rrn)
    if orig is not None:
        info = {
            "rrn": rrn,
            "batch": orig["batch"],
            "stan": orig["stan"],
            "date": orig["txn_date"][4:],
            "amount_fen": orig["amount_fen"],
        }
        left = orig["amount_fen"] - orig["refunded_fen"]
        if amount_fen > left:
            raise TerminalError(
                f"--amount: {amount_fen} fen exceeds what is left to refund ({left} fen)"
            )
    elif original:
        info = {
            "rrn": rrn,
            "batch": original["batch"],
            "stan": original["stan"],
            "date": original["date"],
            "amount_fen": original.get("amount_fen"),
        }
    else:
        raise TerminalError(f"--rrn {rrn}: 找不到原交易 (original unknown to this terminal)")
    if card is None:
        if orig is None or not orig["pan_enc"]:
            raise TerminalError("--card: 请刷卡 (the original's card number is no longer held)")
        secret = term.store.unseal_json(orig["pan_enc"])
        pan, expiry, masked, card_class, entry, f22 = (
            secret["pan"],
            secret["expiry"],
            orig["masked_pan"],
            orig["card_class"],
            "manual",
            "012",
        )
    else:
        term._check_training_card(card.pan)
        pan, expiry, masked, card_class, entry, f22 = (
            card.pan,
            card.expiry,
            card.masked,
            card.card_class,
            card.entry,
            card.entry_mode(pin=False),
        )
    term._prepare()
    now = term.clock()
    stan = term._next_stan()
    req = term._base("0220")
    req.update(
        {
            "2": pan,
            "14": expiry,
            "3": "200000",
            "4": f"{amount_fen:012d}",
            "11": stan,
            "22": f22,
            "25": "00",
            "37": rrn,
            "49": "156",
            "60": wire.field60("25", term.batch, "000", cap="6", chip="0"),
            "61": f"{info['batch']}{info['stan']}{info['date']}",
        }
    )
    ctx = term._context(
        kind="refund",
        amount_fen=amount_fen,
        masked_pan=masked,
        card_type=card_class,
        entry_mode=entry,
        now=now,
        request_id=request_id,
        original=info,
    )
    with term.store.atomic():
        term.store.db.execute(
            "INSERT INTO refund_out(batch, stan, request_enc, context, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                term.batch,
                stan,
                term.store.seal_json(jsonable(req)),
                json.dumps(
                    {**ctx, "pan_enc": term.store.seal_json({"pan": pan, "expiry": expiry})},
                    ensure_ascii=False,
                ),
                now.isoformat(timespec="seconds"),
            ),
        )
        if request_id:
            term.store.db.execute(
                "INSERT OR IGNORE INTO handled_request(request_id, state) VALUES (?, 'started')",
                (request_id,),
            )
    row = term.store.db.execute(
        "SELECT * FROM refund_out WHERE batch=? AND stan=?", (term.batch, stan)
    ).fetchone()
    out = send_refund(term, row)
    if out is None:
        return Outcome(
            kind="refund",
            approved=False,
            response_code=None,
            pending=True,
            message="已存储，将重发 (stored; will be sent again until answered)",
            masked_pan=masked,
            batch=ctx["batch"],
            stan=stan,
            amount_fen=amount_fen,
            training=term.training,
            original=info,
        )
    return out


def send_refund(term: Terminal, row: Any) -> Outcome | None:
    """Send a stored 0220 unchanged; on an answer record it. Return None when unanswered."""
    try:
        _, mak = term._keys()
    except TerminalError:
        term.sign_on()
        _, mak = term._keys()
    req = unjson(term.store.unseal_json(row["request_enc"]))
    ctx = json.loads(row["context"])
    with term.store.atomic():
        term.store.db.execute("UPDATE refund_out SET tries=tries+1 WHERE id=?", (row["id"],))
    try:
        reply = term._exchange(req, mak=mak)
    except NoResponse as exc:
        log.warning("refund STAN %s: no answer (%s); kept to send again", row["stan"], exc)
        return None
    resp = reply.fields
    if not term._matches(req, resp) or (resp.get("39") == "00" and reply.mac_ok is False):
        log.warning("refund STAN %s: answer unusable; kept to send again", row["stan"])
        return None
    code = resp.get("39", "")
    if code == "A0":
        term._sign_off_locally()
        return None
    if code == "94":
        # The host already had this refund: the answer is the first one's result, and the
        # host marks an approval with 38 (docs/acquirer.md §7).
        first_approved = bool((resp.get("38") or "").strip())
        same = resp.get("42") == req.get("42") and resp.get("4", req["4"]) == req["4"]
        if first_approved and (not same or reply.mac_ok is False):
            log.warning("refund STAN %s: duplicate answer unusable; kept", row["stan"])
            return None
        code = "00" if first_approved else "94"
    now = term.clock()
    out = Outcome(
        kind="refund",
        approved=code == "00",
        response_code=code,
        message=MESSAGES.get(code, code),
        rrn=resp.get("37", "") or "",
        auth_code=(resp.get("38", "") or "").strip(),
        masked_pan=ctx["masked_pan"],
        batch=ctx["batch"],
        stan=row["stan"],
        amount_fen=ctx["amount_fen"],
        card_type=ctx["card_type"],
        entry_mode=ctx["entry_mode"],
        txn_date=ctx["txn_date"],
        txn_time=ctx["txn_time"],
        settle_date=year_of(resp.get("15", ""), now.date()) if resp.get("15") else "",
        training=bool(ctx.get("training")),
        original=ctx["original"],
    )
    with term.store.atomic():
        term.store.db.execute("DELETE FROM refund_out WHERE id=?", (row["id"],))
        if out.approved:
            term.store.db.execute(
                "INSERT INTO txn(batch, stan, kind, amount_fen, rrn, auth_code, txn_date,"
                " card_class, masked_pan, pan_enc, entry_mode, status, orig_stan)"
                " VALUES (?, ?, 'refund', ?, ?, ?, ?, ?, ?, ?, ?, 'approved', ?)",
                (
                    ctx["batch"],
                    row["stan"],
                    out.amount_fen,
                    out.rrn,
                    out.auth_code,
                    out.txn_date,
                    out.card_type,
                    out.masked_pan,
                    ctx["pan_enc"],
                    out.entry_mode,
                    ctx["original"]["stan"],
                ),
            )
            term.store.db.execute(
                "UPDATE txn SET refunded_fen=refunded_fen+? WHERE rrn=? AND kind='purchase'",
                (out.amount_fen, ctx["original"]["rrn"]),
            )
        term._record_report(out, ctx)
    return out
