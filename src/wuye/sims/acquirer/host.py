"""The acquirer host's processing: one request frame in, one reply out (``pos-iso8583.md``).

:class:`Host` is transport-free: the TCP server (:mod:`.server`) hands it whole frames and
sends back what it returns. All its work runs on one thread, which owns the SQLite store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import sqlite3
import string
import threading
import time as monotonic
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from wuye.iso8583 import codec, crypto
from wuye.iso8583.codec import FormatError, Header, Message
from wuye.iso8583.fields import (
    BatchItem,
    Field60,
    Field61,
    SettlementField48,
    TestCard,
    Totals,
    parse_batch_end_48,
    parse_batch_upload_48,
    test_card,
)
from wuye.sims.acquirer.faults import Action, FaultPlan
from wuye.sims.acquirer.store import Store, TerminalKeys

log = logging.getLogger("wuye.sims.acquirer")

MAC_MTIS = frozenset({"0200", "0210", "0220", "0230", "0400", "0410"})

REQUIRED: dict[str, tuple[str, ...]] = {
    "0800": ("11", "41", "42", "60", "63"),
    "0820": ("11", "41", "42", "60"),
    "0200": ("3", "11", "25", "41", "42", "49", "60", "64"),
    "0220": ("3", "4", "11", "25", "37", "41", "42", "49", "60", "61", "64"),
    "0400": ("3", "4", "11", "25", "41", "42", "49", "60", "64"),
    "0500": ("11", "41", "42", "48", "49", "60", "63"),
    "0320": ("11", "41", "42", "48", "60"),
}

RESPONSE_FIELDS: dict[str, frozenset[str]] = {
    "0810": frozenset({"11", "12", "13", "32", "37", "39", "41", "42", "60", "62"}),
    "0830": frozenset({"11", "12", "13", "39", "41", "42", "60"}),
    "0210": frozenset({"2", "3", "4", "11", "12", "13", "14", "15", "25", "32", "37", "38", "39",
                       "41", "42", "44", "49", "54", "55", "60", "63", "64"}),
    "0230": frozenset({"2", "3", "4", "11", "12", "13", "14", "15", "25", "32", "37", "38", "39",
                       "41", "42", "44", "49", "55", "60", "63", "64"}),
    "0410": frozenset({"3", "4", "11", "25", "32", "39", "41", "42", "49", "60", "64"}),
    "0510": frozenset({"11", "12", "13", "15", "32", "37", "39", "41", "42", "48", "49", "60"}),
    "0330": frozenset({"11", "12", "13", "39", "41", "42", "60"}),
}

# Issuer institution ids for field 44 by card BIN (the rest: UnionPay's own).
ISSUERS = {"622202": "01020000", "621700": "01050000", "622848": "01030000",
           "625900": "01040000", "625800": "03080000", "623456": "04012900"}
AUTH_ALPHABET = string.ascii_uppercase + string.digits


class Registry(Protocol):
    """Where registered terminals come from (Wuye's terminal management)."""

    def __call__(self) -> Iterable[Any]: ...


@dataclass
class HostConfig:
    """How the host behaves; every part has a command-line option."""

    cutoff: time = time(23, 0)
    institution_id: str = "48020000"
    single_mak: bool = True
    time_zone: str = "Asia/Shanghai"


@dataclass
class Reply:
    """What to do with a request: send ``frame`` (unless ``None``) after ``delay_s``, close."""

    frame: bytes | None
    close: bool = False
    delay_s: float = 0.0
    request: Message = field(default_factory=dict)


class Decline(Exception):
    """Answer the request with this response code (and no other effect)."""

    def __init__(self, code: str, why: str = "") -> None:
        super().__init__(f"{code}: {why}")
        self.code = code
        self.why = why


def masked(pan: str) -> str:
    """Return the PAN masked to its first 6 and last 4 digits."""
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def luhn_ok(pan: str) -> bool:
    """Tell whether a card number passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(pan)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _next_batch(batch: str) -> str:
    n = int(batch) + 1
    return f"{n if n <= 999_999 else 1:06d}"


class Host:
    """Answer ISO 8583 requests from registered terminals, keeping state in a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        *,
        config: HostConfig | None = None,
        faults: FaultPlan | None = None,
        clock: Callable[[], datetime] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.store = store
        self.config = config or HostConfig()
        self.faults = faults or FaultPlan()
        self._tz = ZoneInfo(self.config.time_zone)
        self.clock = clock or (lambda: datetime.now(self._tz))
        self.registry = registry
        self._registry_at = -1e9
        self._keys: dict[str, TerminalKeys] = {}
        self._processing: dict[str, int] = {}
        self._lock = threading.Lock()
        from django.conf import settings

        # The host's own keyed hash of card numbers (lookups without keeping them).
        self._pan_key = hashlib.sha256(
            ("wuye.sims.acquirer.pan:" + settings.FIELD_ENCRYPTION_KEYS[0]).encode()
        ).digest()
        self.sync_registry()

    # ---- terminals ----------------------------------------------------------------------

    def add_terminal(self, tid: str, mid: str, tmk: bytes, merchant_name: str = "",
                     *, source: str = "manual") -> None:
        """Register a terminal by hand (TID 8 chars, MID 15 chars, TMK 16 bytes).

        Raise ``ValueError`` saying which part is malformed.
        """
        if len(tid) != 8 or not tid.isascii():
            raise ValueError(f"TID must be 8 ASCII characters: {tid!r}")
        if len(mid) != 15 or not mid.isascii():
            raise ValueError(f"MID must be 15 ASCII characters: {mid!r}")
        if len(tmk) != 16:
            raise ValueError("TMK must be 16 bytes (32 hex digits)")
        with self.store.atomic():
            self.store.terminal_put(tid=tid, mid=mid, tmk=tmk, merchant_name=merchant_name,
                                    source=source)
        self._keys.pop(tid, None)

    def sync_registry(self, *, min_interval_s: float = 0.0) -> None:
        """Load the terminals of Wuye's terminal management, if a registry is configured."""
        if self.registry is None:
            return
        now = monotonic.monotonic()
        if now - self._registry_at < min_interval_s:
            return
        self._registry_at = now
        try:
            terminals = list(self.registry())
        except Exception as exc:  # a broken registry must not stop the host: keep what it knows
            log.warning("acquirer: reading the terminal registry failed: %s", exc)
            return
        for t in terminals:
            try:
                self.add_terminal(t.tid, t.mid, bytes(t.tmk), t.merchant_name, source="wuye")
            except ValueError as exc:
                log.warning("acquirer: registry terminal %s skipped: %s", t.tid, exc)
        # Terminals disabled or removed in terminal management are refused from now on.
        with self.store.atomic():
            gone = self.store.terminals_drop(source="wuye", keep={t.tid for t in terminals})
        for tid in gone:
            self._keys.pop(tid, None)

    def request_processing(self, tid: str, code: int) -> None:
        """Ask terminal ``tid`` for something (header Y) in its next response."""
        if not 0 <= code <= 9:
            raise ValueError("processing requirement is one digit")
        with self._lock:
            self._processing[tid] = code

    def _terminal(self, tid: str) -> TerminalKeys | None:
        keys = self._keys.get(tid)
        if keys is None:
            keys = self.store.terminal_get(tid)
            if keys is None:
                self.sync_registry(min_interval_s=2.0)
                keys = self.store.terminal_get(tid)
            if keys is not None:
                self._keys[tid] = keys
        return keys

    # ---- clock --------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock()
        return now.astimezone(self._tz) if now.tzinfo else now.replace(tzinfo=self._tz)

    def business_date(self, now: datetime) -> date:
        """Return the host business day ``now`` falls in (after the cut-off: the next day)."""
        return now.date() + timedelta(days=1) if now.time() >= self.config.cutoff else now.date()

    def settle_date(self, now: datetime) -> date:
        """Return the settlement date of a transaction at ``now``: its business day's next."""
        return self.business_date(now) + timedelta(days=1)

    # ---- the request cycle --------------------------------------------------------------

    def handle(self, data: bytes) -> Reply:
        """Answer one whole frame (length prefix included). Never raises on bad input."""
        try:
            tpdu, head, body = codec.unframe(data)
            header = Header.unpack(head)
        except FormatError as exc:
            log.warning("acquirer: unreadable frame, closing: %s", exc)
            return Reply(None, close=True)
        try:
            request = codec.decode(body)
        except FormatError as exc:
            log.warning("acquirer: undecodable message: %s", exc)
            mti = body[:2].hex()
            if len(mti) == 4 and mti.isdigit() and mti[2] in "02468":
                answer: Message = {"t": f"{mti[:2]}{int(mti[2]) + 1}{mti[3]}", "39": "30"}
                return Reply(self._frame(tpdu, header, "", answer, None, False))
            return Reply(None, close=True)
        mti = str(request["t"])
        if mti not in REQUIRED and mti[2] not in "02468":
            return Reply(None, request=request)  # a response sent to the host: nothing to say
        rules = {rule.action: rule for rule in self.faults.pick(request)}
        if Action.CLOSE in rules:
            return Reply(None, close=True, request=request)
        if Action.DROP_REQUEST in rules:
            return Reply(None, request=request)
        tid = str(request.get("41", ""))
        try:
            with self.store.atomic():
                answer, mak = self._process(request, header, body)
        except Exception:  # store failure or a bug: answer "system malfunction", keep serving
            log.exception("acquirer: %s from %s failed", mti, tid)
            answer, mak = self._base(request, "96"), None
        card = test_card(_pan_of(request))
        never = card is not None and card.never_answers and mti in ("0200", "0220")
        if Action.DROP_RESPONSE in rules or never:
            return Reply(None, request=request)
        frame = self._frame(tpdu, header, tid, answer, mak, Action.CORRUPT_MAC in rules)
        delay = rules[Action.DELAY].delay_ms / 1000 if Action.DELAY in rules else 0.0
        return Reply(frame, delay_s=delay, request=request)

    def _frame(self, tpdu: bytes, header: Header, tid: str, answer: Message,
               mak: bytes | None, corrupt: bool) -> bytes:
        with self._lock:
            processing = self._processing.pop(tid, 0) if tid else 0
        allowed = RESPONSE_FIELDS.get(str(answer["t"]))
        if allowed is not None:
            answer = {k: v for k, v in answer.items() if k == "t" or k in allowed}
        answer.pop("64", None)
        if answer["t"] in MAC_MTIS and mak is not None:
            body = crypto.mac_message(answer, mak)
            if corrupt:
                body = body[:-1] + bytes([body[-1] ^ 0x01])
        else:
            body = codec.encode(answer)
        head = Header(status=header.status, processing=processing,
                      app_version=header.app_version).pack()
        return codec.frame(body, tpdu=codec.reply_tpdu(tpdu), header=head)

    def _base(self, request: Message, code: str) -> Message:
        mti = str(request.get("t", "0000"))
        answer: Message = {"t": f"{mti[:2]}{int(mti[2]) + 1}{mti[3]}"}
        for key in ("2", "3", "4", "11", "14", "25", "41", "42", "49", "60"):
            if key in request:
                answer[key] = request[key]
        now = self._now()
        answer["12"] = now.strftime("%H%M%S")
        answer["13"] = now.strftime("%m%d")
        answer["32"] = self.config.institution_id
        answer["39"] = code
        return answer

    def _process(
        self, request: Message, header: Header, body: bytes
    ) -> tuple[Message, bytes | None]:
        mti = str(request["t"])
        if mti not in REQUIRED:
            return self._base(request, "30"), None
        missing = [k for k in REQUIRED[mti] if k not in request]
        terminal = self._terminal(str(request.get("41", "")))
        if terminal is None:
            return self._base(request, "97"), None
        if request.get("42") != terminal.mid:
            return self._base(request, "03"), None
        mak = terminal.mak
        if mti in MAC_MTIS:
            if mak is None or not crypto.verify_mac(body, mak):
                return self._base(request, "A0"), mak
        if missing:
            log.info("acquirer: %s from %s lacks fields %s", mti, terminal.tid, missing)
            return self._base(request, "30"), mak
        try:
            return self._dispatch(mti, request, header, terminal), self._terminal_mak(terminal)
        except Decline as exc:
            if exc.why:
                log.info("acquirer: %s from %s declined %s: %s", mti, terminal.tid, exc.code,
                         exc.why)
            answer = self._base(request, exc.code)
            return answer, self._terminal_mak(terminal)
        except FormatError as exc:
            log.info("acquirer: %s from %s: %s", mti, terminal.tid, exc)
            return self._base(request, "30"), mak

    def _terminal_mak(self, terminal: TerminalKeys) -> bytes | None:
        current = self._keys.get(terminal.tid, terminal)
        return current.mak

    def _dispatch(self, mti: str, request: Message, header: Header,
                  terminal: TerminalKeys) -> Message:
        f60 = Field60.parse(str(request["60"]))
        if mti == "0800":
            return self._sign_on(request, terminal, f60)
        if mti == "0820":
            if f60.network_code == "002":
                self.store.terminal_set_keys(terminal.tid, pik=None, mak=None, at=None)
                self._keys.pop(terminal.tid, None)
            elif f60.network_code != "301":
                raise Decline("30", f"0820 with 60.3 {f60.network_code}")
            return self._base(request, "00")
        if mti == "0500":
            return self._settle(request, terminal, f60)
        if mti == "0320":
            return self._upload(request, terminal, f60)
        if mti == "0400":
            return self._reverse(request, terminal, f60)
        return self._financial(mti, request, header, terminal, f60)

    # ---- network management -------------------------------------------------------------

    def _sign_on(self, request: Message, terminal: TerminalKeys, f60: Field60) -> Message:
        if f60.network_code != "003":
            raise Decline("30", f"0800 with 60.3 {f60.network_code}")
        if self.registry is not None:
            self.sync_registry()
            current = self.store.terminal_get(terminal.tid)
            if current is None:
                raise Decline("97", "no longer registered")
            terminal = current
        pik = crypto.generate_key(16)
        mak = crypto.generate_key(8 if self.config.single_mak else 16)
        now = self._now()
        self.store.terminal_set_keys(terminal.tid, pik=pik, mak=mak, at=now.isoformat())
        self._keys.pop(terminal.tid, None)
        answer = self._base(request, "00")
        answer["37"] = self._rrn(now)
        answer["60"] = Field60("00", terminal.batch, "003").build()
        answer["62"] = crypto.build_field62(terminal.tmk, pik, mak, self.config.single_mak)
        return answer

    # ---- money --------------------------------------------------------------------------

    def _rrn(self, now: datetime, *, persist: bool = True) -> str:
        day = self.business_date(now)
        seq = self.store.next_rrn_seq(day.strftime("%Y%m%d"), persist=persist)
        return f"{day:%m%d}{seq:08d}"

    def _financial(self, mti: str, request: Message, header: Header,
                   terminal: TerminalKeys, f60: Field60) -> Message:
        kind = {("0200", "22"): "PURCHASE", ("0200", "23"): "VOID", ("0200", "01"): "BALANCE",
                ("0220", "25"): "REFUND"}.get((mti, f60.txn_type))
        expected_code = {"PURCHASE": "000000", "VOID": "200000", "BALANCE": "310000",
                         "REFUND": "200000"}
        if kind is None or request["3"] != expected_code[kind]:
            raise Decline("12", f"60.1 {f60.txn_type} with processing code {request['3']!s}")
        if request["49"] != "156":
            raise Decline("30", f"currency {request['49']!s}")
        if kind != "BALANCE" and "4" not in request:
            raise Decline("30", "no amount")
        digest = _digest(request)
        prior = self.store.txn_by_key(terminal.tid, f60.batch, str(request["11"]), mti)
        if prior is not None:
            if prior["digest"] == digest and prior["response_code"] != "55":
                return self._duplicate(request, prior)
            if prior["response_code"] == "00":
                raise Decline("12", "STAN reused in this batch for another transaction")
            self.store.txn_delete(prior["id"])
        if self.store.batch_state(terminal.tid, f60.batch) != "open":
            raise Decline("12", f"batch {f60.batch} is settled")
        now = self._now()
        original = None
        if kind == "VOID":
            original = self._void_original(request, terminal, f60)
        elif kind == "REFUND":
            original = self._refund_original(request, terminal)
        pan = _pan_of(request)
        row: dict[str, Any] = {
            "tid": terminal.tid, "mid": terminal.mid, "batch": f60.batch,
            "stan": request["11"], "mti": mti, "kind": kind,
            "amount_fen": int(str(request.get("4", "0"))),
            "local_at": now.isoformat(), "business_date": f"{self.business_date(now):%Y%m%d}",
            "settle_date": f"{self.settle_date(now):%Y%m%d}", "training": int(header.status == 1),
            "digest": digest, "rrn": self._rrn(now, persist=False), "auth_code": "",
            "orig_id": original["id"] if original is not None else None,
        }
        answer = self._base(request, "00")
        answer["15"] = f"{self.settle_date(now):%m%d}"
        answer["37"] = row["rrn"]
        try:
            if not pan and original is not None and kind == "VOID":
                # A void may be keyed without the card: it is the original's card.
                row.update(pan_token=original["pan_token"], masked_pan=original["masked_pan"],
                           card_type=original["card_type"])
                card = None
            else:
                card = self._card(request, pan, original, terminal, kind, row, now)
            if kind == "BALANCE" and card is not None:
                held = card.balance_fen if card.balance_fen is not None else card.limit_fen or 0
                answer["54"] = f"1001156C{held:012d}"
            elif kind == "PURCHASE" and card is not None:
                self._check_funds(card, row["amount_fen"])
            if kind != "BALANCE":
                row["auth_code"] = _auth_code()
                answer["38"] = row["auth_code"]
            if original is not None and kind == "VOID":
                self.store.txn_update(original["id"], voided=1)
            elif original is not None and kind == "REFUND":
                self.store.txn_update(
                    original["id"], refunded_fen=original["refunded_fen"] + row["amount_fen"]
                )
            row["response_code"] = "00"
        except Decline as exc:
            row["response_code"] = exc.code
            answer["39"] = exc.code
            answer.pop("38", None)
            row["auth_code"] = ""
            row.setdefault("card_type", "")
            log.info("acquirer: %s %s declined %s: %s", kind, terminal.tid, exc.code, exc.why)
        row.setdefault("pan_token", "")
        row.setdefault("masked_pan", "")
        self.store.txn_insert(**row)
        if row["response_code"] == "00" and kind in ("PURCHASE", "VOID", "REFUND"):
            answer["44"] = (ISSUERS.get(row["masked_pan"][:6], "00010000").ljust(11)
                            + self.config.institution_id.ljust(11))
            answer["63"] = "CUP"
            if "55" in request:
                answer["55"] = bytes.fromhex("8A023030")
        return answer

    def _duplicate(self, request: Message, prior: sqlite3.Row) -> Message:
        answer = self._base(request, "94")
        answer["37"] = prior["rrn"]
        answer["15"] = prior["settle_date"][4:]
        if prior["response_code"] == "00" and prior["auth_code"]:
            answer["38"] = prior["auth_code"]
        return answer

    def _card(self, request: Message, pan: str, original: sqlite3.Row | None,
              terminal: TerminalKeys, kind: str, row: dict[str, Any], now: datetime) -> TestCard:
        if not pan:
            raise Decline("30", "no card number (field 2 or 35)")
        if not (13 <= len(pan) <= 19 and pan.isdigit() and luhn_ok(pan)):
            raise Decline("14", "card number fails the Luhn check")
        row["pan_token"] = hmac.new(self._pan_key, pan.encode(), hashlib.sha256).hexdigest()
        row["masked_pan"] = masked(pan)
        if original is not None and original["pan_token"] != row["pan_token"]:
            raise Decline("25", "card differs from the original's")
        card = test_card(pan)
        if card is None:
            raise Decline("14", "not a card of this host")
        row["card_type"] = card.card_type
        expiry = str(request.get("14") or _track2_expiry(request) or card.expiry)
        if card.response_code == "54" or expiry < now.strftime("%y%m"):
            raise Decline("54", "expired")
        if card.response_code != "00":
            raise Decline(card.response_code, "test card behaviour")
        self._check_pin(request, pan, card, terminal.pik, kind, row)
        return card

    def _check_pin(self, request: Message, pan: str, card: TestCard, pik: bytes | None,
                   kind: str, row: dict[str, Any]) -> None:
        amount = row["amount_fen"]
        exempt = (
            kind in ("VOID", "REFUND")
            or (card.no_pin_below_fen and str(request.get("22", "")).startswith("07")
                and amount < card.no_pin_below_fen)
        )
        block = request.get("52")
        if block is None:
            if exempt:
                return
            raise Decline("55", "PIN required")
        day = row["business_date"]
        wrong = self.store.pin_wrong(row["pan_token"], day)
        if wrong >= 3:
            raise Decline("75", "PIN tries exceeded today")
        try:
            pin = crypto.pin_from_block(block, pan, pik) if pik and isinstance(block, bytes) else ""
        except crypto.PinBlockError:
            pin = ""
        if pin == card.pin:
            if wrong:
                self.store.pin_set_wrong(row["pan_token"], day, 0)
            return
        self.store.pin_set_wrong(row["pan_token"], day, wrong + 1)
        raise Decline("75" if wrong + 1 >= 3 else "55", "wrong PIN")

    def _check_funds(self, card: TestCard, amount: int) -> None:
        if amount <= 0:
            raise Decline("13", "amount must be positive")
        available = card.balance_fen if card.card_type == "DEBIT" else card.limit_fen
        if available is not None and amount > available:
            raise Decline("51", "insufficient funds")

    def _void_original(self, request: Message, terminal: TerminalKeys,
                       f60: Field60) -> sqlite3.Row:
        if "37" not in request or "61" not in request:
            raise Decline("30", "void without 37 or 61")
        f61 = Field61.parse(str(request["61"]))
        original = self.store.txn_by_key(terminal.tid, f61.batch, f61.stan, "0200")
        if (original is None or original["kind"] != "PURCHASE" or original["reversed"]
                or original["response_code"] != "00" or original["rrn"] != request["37"]):
            raise Decline("25", "original purchase not found")
        if original["voided"] or original["refunded_fen"]:
            raise Decline("12", "original already voided or refunded")
        if original["batch"] != f60.batch:
            raise Decline("12", "void outside the original's batch")
        if int(str(request["4"])) != original["amount_fen"]:
            raise Decline("13", "void amount differs from the original")
        return original

    def _refund_original(self, request: Message, terminal: TerminalKeys) -> sqlite3.Row:
        f61 = Field61.parse(str(request["61"]))
        if not f61.date:
            raise Decline("30", "refund 61 lacks the original date (61.3)")
        original = self.store.txn_by_key(terminal.tid, f61.batch, f61.stan, "0200")
        if original is None or original["rrn"] != request["37"]:
            original = self.store.db.execute(
                "SELECT * FROM txn WHERE mid=? AND rrn=? AND kind='PURCHASE' "
                "ORDER BY id DESC LIMIT 1", (terminal.mid, request["37"]),
            ).fetchone()
        if (original is None or original["kind"] != "PURCHASE" or original["reversed"]
                or original["response_code"] != "00"
                or original["local_at"][5:7] + original["local_at"][8:10] != f61.date):
            raise Decline("25", "original purchase not found")
        if original["voided"]:
            raise Decline("12", "original was voided")
        amount = int(str(request["4"]))
        if amount <= 0 or amount > original["amount_fen"] - original["refunded_fen"]:
            raise Decline("13", "refund exceeds what is left of the original")
        return original

    def _reverse(self, request: Message, terminal: TerminalKeys, f60: Field60) -> Message:
        answer = self._base(request, "00")
        original = self.store.txn_by_key(terminal.tid, f60.batch, str(request["11"]), "0200")
        if original is None or original["reversed"]:
            return answer
        if original["kind"] == "BALANCE":
            return answer
        if self.store.batch_state(terminal.tid, f60.batch) != "open":
            raise Decline("12", "original already settled")
        if original["response_code"] != "00":
            self.store.txn_update(original["id"], reversed=1)
            return answer
        if original["kind"] == "PURCHASE" and original["voided"]:
            raise Decline("12", "purchase has a standing void")
        if original["kind"] == "PURCHASE" and original["refunded_fen"]:
            raise Decline("12", "purchase has refunds")
        self.store.txn_update(original["id"], reversed=1)
        if original["kind"] == "VOID" and original["orig_id"] is not None:
            self.store.txn_update(original["orig_id"], voided=0)
        return answer

    # ---- settlement ---------------------------------------------------------------------

    def batch_totals(self, tid: str, batch: str) -> Totals:
        """Return the host's totals of a terminal's batch (§3: debit and credit)."""
        debit = debit_n = credit = credit_n = 0
        for txn in self.store.batch_txns(tid, batch):
            if txn["kind"] == "PURCHASE":
                debit += txn["amount_fen"]
                debit_n += 1
            else:
                credit += txn["amount_fen"]
                credit_n += 1
        return Totals(debit, debit_n, credit, credit_n)

    def _settle(self, request: Message, terminal: TerminalKeys, f60: Field60) -> Message:
        if f60.network_code != "201":
            raise Decline("30", f"0500 with 60.3 {f60.network_code}")
        if request["49"] != "156":
            raise Decline("30", f"currency {request['49']!s}")
        theirs = SettlementField48.parse(str(request["48"]))
        ours = self.batch_totals(terminal.tid, f60.batch)
        verdict = "1" if theirs.domestic == ours else "2"
        foreign_verdict = "1" if theirs.foreign == Totals() else "2"
        self.store.batch_settle(terminal.tid, f60.batch, verdict)
        now = self._now()
        answer = self._base(request, "00")
        answer["15"] = f"{self.settle_date(now):%m%d}"
        answer["37"] = self._rrn(now)
        answer["48"] = SettlementField48(theirs.domestic, verdict, theirs.foreign,
                                         foreign_verdict).build()
        return answer

    def _upload(self, request: Message, terminal: TerminalKeys, f60: Field60) -> Message:
        if f60.network_code == "201":
            items: list[BatchItem] = parse_batch_upload_48(str(request["48"]))
            for item in items:
                pan = item.pan
                shown = masked(pan) if len(pan) >= 13 else "*" * len(pan)
                self.store.upload_add(terminal.tid, f60.batch, item.stan, shown, item.amount_fen)
        elif f60.network_code == "202":
            total = parse_batch_end_48(str(request["48"]))
            received = self.store.upload_count(terminal.tid, f60.batch)
            if total != received:
                log.warning("acquirer: %s batch %s: end says %d items, host received %d",
                            terminal.tid, f60.batch, total, received)
            self.store.batch_close(terminal.tid, f60.batch, received)
            if f60.batch == terminal.batch:
                self.store.terminal_set_batch(terminal.tid, _next_batch(f60.batch))
                self._keys.pop(terminal.tid, None)
        else:
            raise Decline("30", f"0320 with 60.3 {f60.network_code}")
        return self._base(request, "00")


def _auth_code() -> str:
    n = secrets.randbits(32) % (36**6)
    out = []
    for _ in range(6):
        n, d = divmod(n, 36)
        out.append(AUTH_ALPHABET[d])
    return "".join(out)


def _pan_of(request: Message) -> str:
    pan = request.get("2")
    if pan:
        return str(pan)
    track = request.get("35")
    return str(track).split("=", 1)[0] if track else ""


def _track2_expiry(request: Message) -> str:
    track = request.get("35")
    if not track or "=" not in str(track):
        return ""
    return str(track).split("=", 1)[1][:4]


def _digest(request: Message) -> str:
    # Same content = same fields, whatever the keys: MAC and PIN block change with a re-sign-on.
    content = sorted((k, v) for k, v in request.items() if k != "52" and k != "64")
    return hashlib.sha256(repr(content).encode()).hexdigest()
