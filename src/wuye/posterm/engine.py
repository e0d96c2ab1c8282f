"""The terminal's transactions over ISO 8583 (shared/spec/pos-iso8583.md).

``Terminal`` signs on, keeps batch and STAN, and runs purchase, void, refund, balance inquiry,
reversal and settlement with batch upload. Its rules of persistence:

- a purchase or void writes its reversal (a copy of the request as §3 describes it) *before*
  the request goes out; a valid answer removes it in the same transaction that records the
  result; a lost answer, a response that fails the §5 checks or an approval with a bad MAC
  leaves it due, and the result is recorded as reversed (never as paid);
- a refund (0220) is written before it goes out and sent again, unchanged, until answered;
- every result is written as a report for Wuye's server in the same transaction, before
  anyone is told (``reports`` delivers it);
- ``recover`` (run before every financial request and settlement) finishes what a previous
  run left: due reversals first, then unanswered refunds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from wuye.posterm import refunds, settlement, wire
from wuye.posterm.card import Card, CardError
from wuye.posterm.config import TerminalConfig
from wuye.posterm.link import Link, NoResponse
from wuye.posterm.outcome import (
    MESSAGES,
    PIN_TRIES,
    REVERSAL_TRIES,
    TAP_NO_PIN_LIMIT_FEN,
    Outcome,
    SignOnRefused,
    TerminalError,
    jsonable,
    unjson,
    year_of,
)
from wuye.posterm.store import Store

__all__ = [
    "TAP_NO_PIN_LIMIT_FEN",
    "Outcome",
    "SignOnRefused",
    "Terminal",
    "TerminalError",
]

log = logging.getLogger("wuye.posterm")
# §3: a reversal copies the request without these (and gets its own MAC)
NOT_IN_REVERSAL = frozenset({"26", "35", "36", "37", "52", "53", "64"})


class Terminal:
    """One POS terminal: its configuration, its state store and its link to the acquirer."""

    def __init__(
        self,
        store: Store,
        cfg: TerminalConfig,
        *,
        training: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.cfg = cfg
        self.training = training
        self.clock = clock or (lambda: datetime.now().astimezone())
        host, port = cfg.acquirer_addr
        self.link = Link(host, port, timeout_s=cfg.timeout_s)
        self.wants_app_update = False

    def close(self) -> None:
        """Drop the acquirer connection."""
        self.link.close()

    # state ----------------------------------------------------------------------------
    @property
    def batch(self) -> str:
        """The open batch number (6 digits)."""
        return self.store.get("state.batch", "000001") or "000001"

    def _next_stan(self) -> str:
        with self.store.atomic():
            return self._bump_stan()

    def _bump_stan(self) -> str:
        """Take the next STAN inside the caller's transaction."""
        stan = int(self.store.get("state.stan", "0") or 0) % 999_999 + 1
        self.store.put("state.stan", f"{stan:06d}")
        return f"{stan:06d}"

    @property
    def stan(self) -> str:
        """The last STAN used."""
        return self.store.get("state.stan", "000000") or "000000"

    @property
    def signed_on(self) -> bool:
        """Whether valid working keys are loaded."""
        return self.store.get("state.signed_on") == "1"

    def _sign_off_locally(self) -> None:
        with self.store.atomic():
            self.store.put("state.signed_on", "0")

    def _keys(self) -> tuple[bytes, bytes]:
        pik = self.store.get_secret("keys.pik")
        mak = self.store.get_secret("keys.mak")
        if pik is None or mak is None or not self.signed_on:
            raise TerminalError("终端未签到 (not signed on): run `wuye terminal sign-on`")
        return pik, mak

    def counts(self) -> dict[str, int]:
        """Return the numbers a heartbeat reports (open batch, pending work)."""
        db = self.store.db
        return {
            "batch_open_count": db.execute(
                "SELECT COUNT(*) FROM txn WHERE batch=?", (self.batch,)
            ).fetchone()[0],
            "pending_reports": db.execute(
                "SELECT COUNT(*) FROM report WHERE state='pending'"
            ).fetchone()[0],
            "pending_reversals": db.execute("SELECT COUNT(*) FROM reversal").fetchone()[0],
            "pending_refunds": db.execute("SELECT COUNT(*) FROM refund_out").fetchone()[0],
            "refused_reports": db.execute(
                "SELECT COUNT(*) FROM report WHERE state='refused'"
            ).fetchone()[0],
        }

    # wire -----------------------------------------------------------------------------
    def _exchange(self, fields: dict[str, Any], *, mak: bytes | None) -> wire.Reply:
        frame = wire.build_frame(
            fields,
            tpdu_dest=self.cfg.tpdu_dest,
            training=self.training,
            app_version=self.cfg.app_version,
            mak=mak,
        )
        data = self.link.exchange(frame)
        try:
            reply = wire.parse_frame(data, mak=mak)
        except ValueError as exc:  # codec.FormatError: not an answer of this contract
            self.link.close()
            # Name the field only: the reason may quote the field's digits (a PAN in field 2).
            where = getattr(exc, "field", "?")
            raise NoResponse(f"unreadable answer (field {where})") from None
        if reply.processing == 3:
            log.info("host asks for a new sign-on (processing requirement 3)")
            self._sign_off_locally()
        elif reply.processing == 6:
            log.info("host asks for an application update (processing requirement 6)")
            self.wants_app_update = True
        return reply

    def _base(self, mti: str) -> dict[str, Any]:
        return {"t": mti, "41": self.cfg.tid, "42": self.cfg.mid}

    @staticmethod
    def _matches(req: dict[str, Any], resp: dict[str, Any]) -> bool:
        """Apply §5: MTI + 10, same processing code, STAN and TID; MID and amount if approved."""
        if resp.get("t") != f"{int(req['t']) + 10:04d}":
            return False
        for f in ("3", "11", "41"):
            if req.get(f) != resp.get(f):
                return False
        if resp.get("39") == "00":
            if resp.get("42") != req.get("42"):
                return False
            if "4" in req and resp.get("4") != req.get("4"):
                return False
        return True

    # sign-on --------------------------------------------------------------------------
    def sign_on(self) -> Outcome:
        """Sign on (0800/0810), verify and load the working keys, take the batch from 60.2.

        Raises SignOnRefused when the host declines or a key's check value is wrong (the
        terminal then stays signed off), and NoResponse when the host does not answer.
        """
        stan = self._next_stan()
        req = self._base("0800")
        req.update(
            {"11": stan, "60": wire.field60("00", self.batch, "003"), "63": self.cfg.operator}
        )
        self._sign_off_locally()
        reply = self._exchange(req, mak=None)
        resp = reply.fields
        if not self._matches(req, resp) or resp.get("t") != "0810":
            raise SignOnRefused("签到应答与请求不符 (sign-on answer does not match the request)")
        code = resp.get("39", "")
        if code != "00":
            raise SignOnRefused(f"签到被拒 (sign-on declined): {code} {MESSAGES.get(code, '')}")
        try:
            pik, mak = wire.working_keys(self.cfg.tmk, resp.get("62") or b"")
        except ValueError as exc:
            raise SignOnRefused(
                f"工作密钥校验失败，拒绝密钥 (working keys refused): {exc}"
            ) from exc
        batch = wire.parse_field60(resp.get("60", ""))["batch"] or self.batch
        with self.store.atomic():
            self.store.put_secret("keys.pik", pik)
            self.store.put_secret("keys.mak", mak)
            self.store.put("state.batch", batch)
            self.store.put("state.signed_on", "1")
        log.info("signed on: batch %s", batch)
        return Outcome(
            kind="sign_on",
            approved=True,
            response_code="00",
            message="签到成功",
            rrn=resp.get("37", ""),
            batch=batch,
            stan=stan,
            training=self.training,
        )

    def ensure_signed_on(self) -> None:
        """Sign on when the terminal holds no valid keys. Raises as sign_on does."""
        if not self.signed_on:
            self.sign_on()

    # store and forward ----------------------------------------------------------------
    def recover(self) -> None:
        """Finish what an earlier run left: due reversals, then unanswered refunds.

        Reversals armed by a run that died before its answer are made due first (their
        requests may have reached the host) and their results recorded as reversed.
        """
        for row in self.store.db.execute("SELECT * FROM reversal WHERE state='armed'").fetchall():
            ctx = json.loads(row["context"])
            with self.store.atomic():
                self.store.db.execute(
                    "UPDATE reversal SET state='due', reason='98' WHERE id=?", (row["id"],)
                )
                self._record_report(self._reversed_outcome(ctx, row["stan"], "98"), ctx)
        for row in self.store.db.execute(
            "SELECT * FROM reversal WHERE state='due' ORDER BY id"
        ).fetchall():
            self._send_reversal(row)
        for row in self.store.db.execute("SELECT * FROM refund_out ORDER BY id").fetchall():
            self._send_refund(row)

    def _send_reversal(self, row: Any) -> bool:
        if row["tries"] >= REVERSAL_TRIES:
            return False
        try:
            _, mak = self._keys()
        except TerminalError:
            self.sign_on()
            _, mak = self._keys()
        req = unjson(self.store.unseal_json(row["request_enc"]))
        req["39"] = row["reason"]
        while True:
            with self.store.atomic():
                self.store.db.execute("UPDATE reversal SET tries=tries+1 WHERE id=?", (row["id"],))
            try:
                reply = self._exchange(req, mak=mak)
            except NoResponse as exc:
                log.warning("reversal of STAN %s: no answer (%s)", row["stan"], exc)
                tries = self.store.db.execute(
                    "SELECT tries FROM reversal WHERE id=?", (row["id"],)
                ).fetchone()[0]
                if tries >= REVERSAL_TRIES:
                    with self.store.atomic():
                        self.store.db.execute(
                            "UPDATE reversal SET state='kept' WHERE id=?", (row["id"],)
                        )
                    log.error("reversal of STAN %s kept after %s tries", row["stan"], tries)
                    return False
                continue
            if self._matches(req, reply.fields) and reply.fields.get("39") in ("00", "12", "25"):
                with self.store.atomic():
                    self.store.db.execute("DELETE FROM reversal WHERE id=?", (row["id"],))
                log.info("reversal of STAN %s answered %s", row["stan"], reply.fields.get("39"))
                return True
            log.warning("reversal of STAN %s answered %s", row["stan"], reply.fields.get("39"))
            if reply.fields.get("39") == "A0":
                self.sign_on()
                _, mak = self._keys()
            tries = self.store.db.execute(
                "SELECT tries FROM reversal WHERE id=?", (row["id"],)
            ).fetchone()[0]
            if tries >= REVERSAL_TRIES:
                with self.store.atomic():
                    self.store.db.execute(
                        "UPDATE reversal SET state='kept' WHERE id=?", (row["id"],)
                    )
                return False

    # reports --------------------------------------------------------------------------
    def report_id(self, batch: str, stan: str, kind: str) -> str:
        """Return the report's idempotency key ``<TID>-<batch>-<STAN>-<kind>``."""
        return f"{self.cfg.tid}-{batch}-{stan}-{kind}"

    def _record_report(self, out: Outcome, ctx: dict[str, Any]) -> None:
        """Write the result report for Wuye's server (inside the caller's transaction)."""
        out.report_id = self.report_id(out.batch, out.stan, out.kind)
        payload = {
            "report_id": out.report_id,
            "request_id": ctx.get("request_id"),
            "kind": out.kind,
            "approved": out.approved,
            "response_code": out.response_code,
            "message": out.message,
            "amount_fen": out.amount_fen,
            "rrn": out.rrn,
            "auth_code": out.auth_code,
            "masked_pan": out.masked_pan,
            "card_type": out.card_type,
            "entry_mode": out.entry_mode,
            "tid": self.cfg.tid,
            "mid": self.cfg.mid,
            "batch": out.batch,
            "stan": out.stan,
            "txn_date": out.txn_date,
            "txn_time": out.txn_time,
            "settle_date": out.settle_date,
            "original": out.original,
            "training": out.training,
        }
        if out.reversed:
            payload["reversed"] = True
        if out.balance_fen is not None:
            payload["balance_fen"] = out.balance_fen
        self.store.db.execute(
            "INSERT OR IGNORE INTO report(report_id, endpoint, payload, created_at) "
            "VALUES (?, 'results', ?, ?)",
            (
                out.report_id,
                json.dumps(payload, ensure_ascii=False),
                self.clock().isoformat(timespec="seconds"),
            ),
        )
        if ctx.get("request_id"):
            self.store.db.execute(
                "INSERT INTO handled_request(request_id, state, report_id) VALUES (?, 'done', ?) "
                "ON CONFLICT(request_id) DO UPDATE SET state='done', report_id=excluded.report_id",
                (ctx["request_id"], out.report_id),
            )

    def _reversed_outcome(self, ctx: dict[str, Any], stan: str, reason: str) -> Outcome:
        return Outcome(
            kind=ctx["kind"],
            approved=False,
            response_code=reason,
            message=MESSAGES.get(reason, "已冲正"),
            masked_pan=ctx.get("masked_pan", ""),
            batch=ctx["batch"],
            stan=stan,
            amount_fen=ctx["amount_fen"],
            card_type=ctx.get("card_type", ""),
            entry_mode=ctx.get("entry_mode", ""),
            txn_date=ctx.get("txn_date", ""),
            txn_time=ctx.get("txn_time", ""),
            reversed=True,
            training=bool(ctx.get("training")),
            original=ctx.get("original"),
        )

    # financial ------------------------------------------------------------------------
    def _card_fields(
        self, card: Card, *, pin_block: bytes | None, amount_fen: int, now: datetime, txn_type: str
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "2": card.pan,
            "14": card.expiry,
            "22": card.entry_mode(pin=pin_block is not None),
            "35": card.track2(),
        }
        if card.is_chip:
            fields["23"] = "001"
            fields["55"] = card.icc_data(amount_fen=amount_fen, when=now, txn_type=txn_type)
        if pin_block is not None:
            fields.update({"26": "12", "52": pin_block, "53": "2600000000000000"})
        return fields

    def _check_training_card(self, pan: str) -> None:
        if self.training and pan not in wire.TEST_PANS:
            raise CardError("培训模式只接受测试卡 (training mode takes the spec's test cards only)")

    def _financial(
        self,
        *,
        kind: str,
        req: dict[str, Any],
        ctx: dict[str, Any],
        mak: bytes,
        pan: str,
        expiry: str,
        on_approved: Callable[[], None] | None = None,
    ) -> Outcome:
        """Send a purchase/void/balance with its reversal armed first; record the outcome."""
        reversible = kind in ("purchase", "void")
        reversal: dict[str, Any] = {}
        if not reversible:
            stan = req["11"] = self._next_stan()
        else:
            # The STAN, the armed reversal and the request's "started" mark: one commit.
            with self.store.atomic():
                stan = req["11"] = self._bump_stan()
                reversal = {k: v for k, v in req.items() if k not in NOT_IN_REVERSAL}
                reversal["t"] = "0400"
                self.store.db.execute(
                    "INSERT INTO reversal(batch, stan, kind, reason, state, request_enc, context,"
                    " created_at) VALUES (?, ?, ?, '98', 'armed', ?, ?, ?)",
                    (
                        ctx["batch"],
                        stan,
                        kind,
                        self.store.seal_json(jsonable(reversal)),
                        json.dumps(ctx, ensure_ascii=False),
                        self.clock().isoformat(timespec="seconds"),
                    ),
                )
                if ctx.get("request_id"):
                    self.store.db.execute(
                        "INSERT OR IGNORE INTO handled_request(request_id, state) "
                        "VALUES (?, 'started')",
                        (ctx["request_id"],),
                    )
        reason = None
        resp: dict[str, Any] = {}
        try:
            reply = self._exchange(req, mak=mak)
            resp = reply.fields
            if not self._matches(req, resp):
                log.warning("STAN %s: answer fails the §5 checks; treated as no answer", stan)
                reason = "98"
            elif resp.get("39") == "00" and reply.mac_ok is False:
                log.warning("STAN %s: approval with a bad MAC", stan)
                reason = "A0"
        except NoResponse as exc:
            log.warning("STAN %s: no answer (%s)", stan, exc)
            reason = "98"
        if reason is not None:
            if not reversible:
                return Outcome(
                    kind=kind,
                    approved=False,
                    response_code=reason,
                    message="无应答 (no answer)",
                    batch=ctx["batch"],
                    stan=stan,
                    masked_pan=ctx.get("masked_pan", ""),
                    training=self.training,
                )
            out = self._reversed_outcome(ctx, stan, reason)
            with self.store.atomic():
                self.store.db.execute(
                    "UPDATE reversal SET state='due', reason=? WHERE batch=? AND stan=?",
                    (reason, ctx["batch"], stan),
                )
                if reason == "A0" and resp.get("38"):
                    # §3: the reversal carries the authorization id when one was received.
                    reversal["38"] = resp["38"]
                    self.store.db.execute(
                        "UPDATE reversal SET request_enc=? WHERE batch=? AND stan=?",
                        (self.store.seal_json(jsonable(reversal)), ctx["batch"], stan),
                    )
                self._record_report(out, ctx)
            if reason == "A0":
                self._sign_off_locally()
            self.recover()
            return out
        code = resp.get("39", "")
        approved = code == "00"
        now = self.clock()
        out = Outcome(
            kind=kind,
            approved=approved,
            response_code=code,
            message=MESSAGES.get(code, code),
            rrn=resp.get("37", "") or "",
            auth_code=(resp.get("38", "") or "").strip(),
            masked_pan=ctx.get("masked_pan", ""),
            batch=ctx["batch"],
            stan=stan,
            amount_fen=ctx["amount_fen"],
            card_type=ctx.get("card_type", ""),
            entry_mode=ctx.get("entry_mode", ""),
            txn_date=year_of(resp.get("13", ""), now.date()) if resp.get("13") else ctx["txn_date"],
            txn_time=resp.get("12") or ctx["txn_time"],
            settle_date=year_of(resp.get("15", ""), now.date()) if resp.get("15") else "",
            training=self.training,
            original=ctx.get("original"),
        )
        if kind == "balance" and approved:
            out.balance_fen = wire.parse_balance(resp.get("54") or "")
        with self.store.atomic():
            if reversible:
                self.store.db.execute(
                    "DELETE FROM reversal WHERE batch=? AND stan=?", (ctx["batch"], stan)
                )
            if approved and kind in ("purchase", "void"):
                self.store.db.execute(
                    "INSERT INTO txn(batch, stan, kind, amount_fen, rrn, auth_code, txn_date,"
                    " card_class, masked_pan, pan_enc, entry_mode, status, orig_stan)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'approved', ?)",
                    (
                        ctx["batch"],
                        stan,
                        kind,
                        out.amount_fen,
                        out.rrn,
                        out.auth_code,
                        out.txn_date,
                        out.card_type,
                        out.masked_pan,
                        self.store.seal_json({"pan": pan, "expiry": expiry}),
                        out.entry_mode,
                        (ctx.get("original") or {}).get("stan"),
                    ),
                )
                if on_approved:
                    on_approved()
            if kind != "balance" or ctx.get("request_id"):
                self._record_report(out, ctx)
        if code == "A0":
            self._sign_off_locally()
        return out

    def _context(
        self,
        *,
        kind: str,
        amount_fen: int,
        masked_pan: str,
        card_type: str,
        entry_mode: str,
        now: datetime,
        request_id: str | None,
        original: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "amount_fen": amount_fen,
            "masked_pan": masked_pan,
            "card_type": card_type,
            "entry_mode": entry_mode,
            "batch": self.batch,
            "txn_date": now.strftime("%Y%m%d"),
            "txn_time": now.strftime("%H%M%S"),
            "request_id": request_id,
            "original": original,
            "training": self.training,
        }

    def _prepare(self) -> tuple[bytes, bytes]:
        self.ensure_signed_on()
        self.recover()
        self.ensure_signed_on()
        return self._keys()

    def purchase(
        self,
        *,
        amount_fen: int,
        card: Card,
        pin: str | Callable[[int], str | None] | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Pay ``amount_fen`` with ``card``; ask again for the PIN on ``55`` (3 tries in all).

        ``pin`` is the PIN, or a callable given the try number that returns it (None: no PIN).
        Raises TerminalError/CardError on bad input, SignOnRefused when keys cannot be loaded.
        """
        if not isinstance(amount_fen, int) or not 0 < amount_fen < 10**12:
            raise TerminalError(f"--amount: {amount_fen!r} fen is not a positive amount")
        self._check_training_card(card.pan)
        for attempt in range(1, PIN_TRIES + 1):
            pik, mak = self._prepare()
            entered = pin(attempt) if callable(pin) else pin
            if entered is not None and not (entered.isdigit() and 4 <= len(entered) <= 12):
                raise CardError("--pin: 4 to 12 digits")
            block = wire.pin_block(entered, card.pan, pik) if entered else None
            now = self.clock()
            req = self._base("0200")
            req.update(
                {
                    "3": "000000",
                    "4": f"{amount_fen:012d}",
                    "25": "00",
                    "49": "156",
                    "60": wire.field60("22", self.batch, "000", cap="6", chip="0"),
                }
            )
            req.update(
                self._card_fields(
                    card, pin_block=block, amount_fen=amount_fen, now=now, txn_type="00"
                )
            )
            del entered, block
            ctx = self._context(
                kind="purchase",
                amount_fen=amount_fen,
                masked_pan=card.masked,
                card_type=card.card_class,
                entry_mode=card.entry,
                now=now,
                request_id=request_id,
            )
            out = self._financial(
                kind="purchase", req=req, ctx=ctx, mak=mak, pan=card.pan, expiry=card.expiry
            )
            if out.response_code != "55" or attempt == PIN_TRIES or not callable(pin):
                return out
        return out

    def _original(self, rrn: str) -> Any:
        return self.store.db.execute(
            "SELECT * FROM txn WHERE rrn=? AND kind='purchase' ORDER BY rowid DESC", (rrn,)
        ).fetchone()

    def void(self, *, rrn: str, request_id: str | None = None) -> Outcome:
        """Void the approved purchase ``rrn`` of the open batch (0200, 60.1 ``23``).

        Raises TerminalError when the purchase is not in the open batch or already voided.
        """
        orig = self._original(rrn)
        if orig is None or orig["batch"] != self.batch:
            raise TerminalError(
                f"--rrn {rrn}: 本批次无此消费 (no purchase with this RRN in the open batch)"
            )
        if orig["status"] != "approved":
            raise TerminalError(f"--rrn {rrn}: 该消费已撤销 (already voided)")
        _pik, mak = self._prepare()
        secret = self.store.unseal_json(orig["pan_enc"])
        now = self.clock()
        req = self._base("0200")
        req.update(
            {
                "2": secret["pan"],
                "14": secret["expiry"],
                "3": "200000",
                "4": f"{orig['amount_fen']:012d}",
                "22": "012",
                "25": "00",
                "37": orig["rrn"],
                "38": orig["auth_code"].ljust(6) if orig["auth_code"] else None,
                "49": "156",
                "60": wire.field60("23", self.batch, "000", cap="6", chip="0"),
                "61": f"{orig['batch']}{orig['stan']}",
            }
        )
        req = {k: v for k, v in req.items() if v is not None}
        original = {
            "rrn": orig["rrn"],
            "batch": orig["batch"],
            "stan": orig["stan"],
            "date": orig["txn_date"][4:],
            "amount_fen": orig["amount_fen"],
        }
        ctx = self._context(
            kind="void",
            amount_fen=orig["amount_fen"],
            masked_pan=orig["masked_pan"],
            card_type=orig["card_class"],
            entry_mode="manual",
            now=now,
            request_id=request_id,
            original=original,
        )

        def mark_voided() -> None:
            self.store.db.execute(
                "UPDATE txn SET status='voided' WHERE batch=? AND stan=?",
                (orig["batch"], orig["stan"]),
            )

        return self._financial(
            kind="void",
            req=req,
            ctx=ctx,
            mak=mak,
            pan=secret["pan"],
            expiry=secret["expiry"],
            on_approved=mark_voided,
        )

    def balance(self, *, card: Card, pin: str, request_id: str | None = None) -> Outcome:
        """Ask the card's balance (0200, 310000); the PIN is required."""
        self._check_training_card(card.pan)
        if not (pin and pin.isdigit() and 4 <= len(pin) <= 12):
            raise CardError("--pin: 4 to 12 digits (a balance inquiry needs the PIN)")
        pik, mak = self._prepare()
        now = self.clock()
        req = self._base("0200")
        req.update(
            {
                "3": "310000",
                "25": "00",
                "49": "156",
                "60": wire.field60("01", self.batch, "000", cap="6", chip="0"),
            }
        )
        req.update(
            self._card_fields(
                card,
                pin_block=wire.pin_block(pin, card.pan, pik),
                amount_fen=0,
                now=now,
                txn_type="31",
            )
        )
        ctx = self._context(
            kind="balance",
            amount_fen=0,
            masked_pan=card.masked,
            card_type=card.card_class,
            entry_mode=card.entry,
            now=now,
            request_id=request_id,
        )
        return self._financial(
            kind="balance", req=req, ctx=ctx, mak=mak, pan=card.pan, expiry=card.expiry
        )

    # refunds and settlement (their own modules) --------------------------------------
    def refund(
        self,
        *,
        rrn: str,
        amount_fen: int,
        card: Card | None = None,
        original: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Refund ``amount_fen`` of purchase ``rrn``; see ``refunds.refund`` (what it raises)."""
        return refunds.refund(
            self,
            rrn=rrn,
            amount_fen=amount_fen,
            card=card,
            original=original,
            request_id=request_id,
        )

    def _send_refund(self, row: Any) -> Outcome | None:
        return refunds.send_refund(self, row)

    def totals(self, batch: str | None = None) -> dict[str, int]:
        """Return the batch's debit/credit totals as §3 counts them."""
        return settlement.totals(self, batch)

    def settle(self, *, request_id: str | None = None) -> Outcome:
        """Settle the open batch; see ``settlement.settle`` (what it raises)."""
        return settlement.settle(self, request_id=request_id)
