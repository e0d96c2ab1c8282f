"""A tiny acquirer host for the terminal's tests, built on ``wuye.iso8583``'s codec and crypto.

It answers sign-on, purchase, void, refund, reversal, balance, settlement and batch upload
the way the contract describes, with the spec's test cards, and has switches to lose an
answer, corrupt a MAC or hand out keys with a wrong check value. It records every request so
tests can see what the terminal sent. (The full simulator is ``wuye.sims.acquirer``.)
"""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass, field
from typing import Any

from wuye.iso8583 import codec, crypto
from wuye.iso8583.fields import Field60, SettlementField48, Totals, test_card

PIK = bytes.fromhex("11111111111111112222222222222222")
MAK = bytes.fromhex("3333333333333333")


@dataclass
class HostState:
    tid: str
    mid: str
    tmk: bytes
    batch: str = "000001"
    seen: list[dict[str, Any]] = field(default_factory=list)
    approved: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    reversed: set[tuple[str, str]] = field(default_factory=set)
    drop_next: int = 0  # act on the next N financial requests, then drop the answers
    ignore_next: int = 0  # drop the next N requests without acting
    bad_mac_next: int = 0
    wrong_kcv: bool = False
    processing: int = 0
    rrn: int = 0
    hook: Any = None  # called with each request before it is answered
    lock: threading.Lock = field(default_factory=threading.Lock)

    def totals(self) -> Totals:
        debit = [m for m in self.approved.values() if m["kind"] == "purchase"]
        credit = [m for m in self.approved.values() if m["kind"] in ("void", "refund")]
        return Totals(
            sum(m["amount"] for m in debit),
            len(debit),
            sum(m["amount"] for m in credit),
            len(credit),
        )


def _answer(state: HostState, req: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Return (response fields or None to stay silent, mac it)."""
    mti = req["t"]
    resp: dict[str, Any] = {"t": f"{int(mti) + 10:04d}"}
    for f in ("3", "4", "11", "25", "41", "42", "49", "60", "2", "14"):
        if f in req:
            resp[f] = req[f]
    resp.update({"12": "101010", "13": "1122", "32": "00000000001"})
    key = (req.get("60", "")[2:8], req.get("11", ""))
    if req.get("41") != state.tid or req.get("42") != state.mid:
        resp["39"] = "97"
        return resp, False
    if mti == "0800":
        state.rrn += 1
        pik_kcv = crypto.kcv(PIK) if not state.wrong_kcv else b"\0\0\0\0"
        resp.update(
            {
                "37": f"{state.rrn:012d}",
                "39": "00",
                "60": Field60("00", state.batch, "003").build(),
                "62": crypto.encrypt_key(state.tmk, PIK)
                + pik_kcv
                + crypto.encrypt_key(state.tmk, MAK)
                + bytes(8)
                + crypto.kcv(MAK),
            }
        )
        return resp, False
    if mti == "0500":
        ours = SettlementField48.parse(req["48"]).domestic
        code = "1" if ours == state.totals() else "2"
        resp.update(
            {
                "15": "1123",
                "37": "000000000000",
                "39": "00",
                "48": SettlementField48(ours, code).build(),
            }
        )
        return resp, False
    if mti == "0320":
        resp["39"] = "00"
        if req["60"][8:11] == "202":
            state.approved.clear()
        return resp, False
    body_ok = True
    if mti in ("0200", "0220", "0400"):
        body_ok = crypto.verify_mac(codec.encode(req), MAK)
    if not body_ok:
        resp["39"] = "A0"
        return resp, True
    if mti == "0400":
        orig = state.approved.pop(key, None)
        if orig and orig["kind"] == "void":
            state.approved[orig["orig"]]["voided"] = False
        state.reversed.add(key)
        resp["39"] = "00"
        return resp, True
    card = test_card(req.get("2", ""))
    resp.update({"15": "1123", "44": "0000000000100000000001", "63": "CUP"})
    if card is None:
        resp["39"] = "14"
        return resp, True
    if card.never_answers:
        return None, False
    state.rrn += 1
    resp["37"] = f"{state.rrn:012d}"
    proc = req["3"]
    if "52" in req:
        pin = crypto.pin_from_block(req["52"], req["2"], PIK)
        if pin != card.pin:
            resp["39"] = "55"
            return resp, True
    if card.response_code != "00":
        resp["39"] = card.response_code
        return resp, True
    amount = int(req.get("4", "0"))
    if mti == "0200" and proc == "310000":
        resp["39"] = "00"
        resp["54"] = f"1001156C{card.balance_fen or card.limit_fen or 0:012d}"
        return resp, True
    if mti == "0200" and proc == "000000":
        if card.balance_fen is not None and amount > card.balance_fen:
            resp["39"] = "51"
            return resp, True
        resp.update({"39": "00", "38": f"A{state.rrn:05d}"})
        state.approved[key] = {"kind": "purchase", "amount": amount, "rrn": resp["37"]}
        return resp, True
    orig_key = (req["61"][0:6], req["61"][6:12])
    if mti == "0200" and proc == "200000":
        orig = state.approved.get(orig_key)
        if orig is None or orig.get("voided"):
            resp["39"] = "25"
            return resp, True
        orig["voided"] = True
        resp.update({"39": "00", "38": f"V{state.rrn:05d}"})
        state.approved[key] = {"kind": "void", "amount": amount, "orig": orig_key}
        return resp, True
    if mti == "0220":
        dup = state.approved.get(key)
        if dup is not None:  # a repeat: "94", the first answer's RRN and authorization id
            resp.update({"39": "94", "37": dup["rrn"], "38": dup["auth"]})
            return resp, True
        resp.update({"39": "00", "38": f"R{state.rrn:05d}"})
        state.approved[key] = {
            "kind": "refund",
            "amount": amount,
            "rrn": resp["37"],
            "auth": resp["38"],
        }
        return resp, True
    resp["39"] = "30"
    return resp, True


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        state: HostState = self.server.state  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        while True:
            try:
                prefix = _read(sock, 2)
                data = prefix + _read(sock, int.from_bytes(prefix, "big"))
            except (EOFError, OSError):
                return
            tpdu, header, body = codec.unframe(data)
            req = codec.decode(body)
            with state.lock:
                state.seen.append(req)
                if state.hook is not None:
                    state.hook(req)
                if state.ignore_next:
                    state.ignore_next -= 1
                    continue
                resp, mac_it = _answer(state, req)
                if resp is None:
                    continue
                financial = req["t"] in ("0200", "0220")
                if financial and state.drop_next:
                    state.drop_next -= 1
                    continue
                out = crypto.mac_message(resp, MAK) if mac_it else codec.encode(resp)
                if mac_it and financial and state.bad_mac_next:
                    state.bad_mac_next -= 1
                    out = out[:-8] + b"00000000"
                hdr = codec.Header(
                    status=codec.Header.unpack(header).status, processing=state.processing
                ).pack()
            sock.sendall(codec.frame(out, tpdu=codec.reply_tpdu(tpdu), header=hdr))


def _read(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TinyHost:
    """Run the host on a free loopback port in a thread (``with TinyHost(...) as host``)."""

    def __init__(self, *, tid: str, mid: str, tmk: bytes) -> None:
        self.state = HostState(tid=tid, mid=mid, tmk=tmk)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.state = self.state  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TinyHost:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests(self, mti: str) -> list[dict[str, Any]]:
        """Return the requests with this MTI, in order."""
        return [r for r in self.state.seen if r["t"] == mti]
