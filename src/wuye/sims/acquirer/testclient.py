"""A small blocking terminal for tests: speaks the contract with ``wuye.iso8583`` over a socket.

It is not Wuye's terminal client (``wuye.posterm``); it exists so the host's tests can drive
every message type, including malformed and replayed ones.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from wuye.iso8583 import codec, crypto
from wuye.iso8583.codec import Header, Message
from wuye.iso8583.fields import Field60, Field61, SettlementField48, Totals

MAC_MTIS = frozenset({"0200", "0220", "0400"})


@dataclass
class TestTerminal:
    """A terminal's state: identity, keys, batch and STAN counter, one TCP connection."""

    __test__ = False

    port: int
    tid: str = "10000001"
    mid: str = "898310048990001"
    tmk: bytes = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    host: str = "127.0.0.1"
    training: bool = False
    timeout_s: float = 5.0
    pik: bytes | None = None
    mak: bytes | None = None
    batch: str = "000001"
    stan: int = 0
    last_header: Header | None = None
    sock: socket.socket | None = field(default=None, repr=False)

    def connect(self) -> None:
        """Open the connection (again)."""
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)

    def close(self) -> None:
        """Close the connection."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def next_stan(self) -> str:
        """Return the next STAN."""
        self.stan = self.stan % 999_999 + 1
        return f"{self.stan:06d}"

    def frame(self, fields: Message, *, mac: bool | None = None) -> bytes:
        """Encode and frame a request, with field 64 for MAC'd types."""
        use_mac = fields["t"] in MAC_MTIS if mac is None else mac
        if use_mac and self.mak:
            body = crypto.mac_message(fields, self.mak)
        else:
            body = codec.encode(fields)
        return codec.frame(body, tpdu=codec.DEFAULT_TPDU,
                           header=Header(status=1 if self.training else 0).pack())

    def send_raw(self, data: bytes) -> bytes | None:
        """Send bytes; return the reply frame, or ``None`` on timeout/close."""
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        self.sock.sendall(data)
        try:
            head = self._read(2)
            return head + self._read(int.from_bytes(head, "big"))
        except (TimeoutError, ConnectionError, EOFError):
            self.close()
            return None

    def _read(self, n: int) -> bytes:
        assert self.sock is not None
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def exchange(self, fields: Message, *, mac: bool | None = None) -> Message | None:
        """Send a request; return the decoded reply (``"mac_ok"`` → b"1"/b"0" when MAC'd)."""
        reply = self.send_raw(self.frame(fields, mac=mac))
        if reply is None:
            return None
        tpdu, head, body = codec.unframe(reply)
        assert tpdu == codec.reply_tpdu(codec.DEFAULT_TPDU)
        self.last_header = Header.unpack(head)
        answer = codec.decode(body)
        if "64" in answer and self.mak:
            answer["mac_ok"] = b"1" if crypto.verify_mac(body, self.mak) else b"0"
        return answer

    # ---- transactions -------------------------------------------------------------------

    def sign_on(self) -> Message | None:
        """Sign on; load the working keys and the batch number."""
        answer = self.exchange({
            "t": "0800", "11": self.next_stan(), "41": self.tid, "42": self.mid,
            "60": Field60("00", self.batch, "003").build(), "63": "001",
        })
        if answer and answer.get("39") == "00":
            keys = answer["62"]
            assert isinstance(keys, bytes)
            self.pik, self.mak = crypto.parse_field62(self.tmk, keys)
            self.batch = Field60.parse(str(answer["60"])).batch
        return answer

    def _card(self, pan: str, pin: str | None, entry: str) -> Message:
        fields: Message = {"2": pan, "14": "3012", "22": entry + ("1" if pin else "2")}
        if pin is not None:
            assert self.pik is not None
            fields.update({"26": "12", "52": crypto.pin_block(pin, pan, self.pik),
                           "53": "2600000000000000"})
        return fields

    def purchase_fields(self, amount_fen: int, pan: str, pin: str | None = "123456",
                        entry: str = "05") -> Message:
        """Return a purchase request's fields (new STAN)."""
        return {
            "t": "0200", "3": "000000", "4": f"{amount_fen:012d}", "11": self.next_stan(),
            "25": "00", "41": self.tid, "42": self.mid, "49": "156",
            "60": Field60("22", self.batch, "000", "6", "0").build(),
            **self._card(pan, pin, entry),
        }

    def purchase(self, amount_fen: int, pan: str, pin: str | None = "123456",
                 entry: str = "05") -> Message | None:
        """Buy ``amount_fen`` with card ``pan``."""
        return self.exchange(self.purchase_fields(amount_fen, pan, pin, entry))

    def void(self, original: Message, pan: str | None = None) -> Message | None:
        """Void an approved purchase (its request fields merged with its answer)."""
        fields: Message = {
            "t": "0200", "3": "200000", "4": original["4"], "11": self.next_stan(), "25": "00",
            "37": original["37"], "41": self.tid, "42": self.mid, "49": "156",
            "60": Field60("23", self.batch, "000", "6", "0").build(),
            "61": Field61(Field60.parse(str(original["60"])).batch, str(original["11"])).build(),
        }
        if "38" in original:
            fields["38"] = original["38"]
        if pan:
            fields.update(self._card(pan, None, "05"))
        return self.exchange(fields)

    def refund_fields(self, original: Message, amount_fen: int, pan: str) -> Message:
        """Return a refund request's fields (new STAN)."""
        return {
            "t": "0220", "3": "200000", "4": f"{amount_fen:012d}", "11": self.next_stan(),
            "25": "00", "37": original["37"], "41": self.tid, "42": self.mid, "49": "156",
            "60": Field60("25", self.batch, "000", "6", "0").build(),
            "61": Field61(Field60.parse(str(original["60"])).batch, str(original["11"]),
                          str(original["13"])).build(),
            **self._card(pan, None, "05"),
        }

    def reversal_of(self, request: Message, reason: str = "98") -> Message | None:
        """Reverse a request (a copy with MTI 0400, no PIN data, 39 = reason)."""
        fields = {k: v for k, v in request.items()
                  if k not in ("26", "35", "36", "37", "52", "53", "64")}
        fields["t"] = "0400"
        fields["39"] = reason
        return self.exchange(fields)

    def balance(self, pan: str, pin: str = "123456") -> Message | None:
        """Ask a card's balance."""
        return self.exchange({
            "t": "0200", "3": "310000", "11": self.next_stan(), "25": "00", "41": self.tid,
            "42": self.mid, "49": "156", "60": Field60("01", self.batch, "000", "6", "0").build(),
            **self._card(pan, pin, "05"),
        })

    def settle(self, totals: Totals) -> Message | None:
        """Send 0500 with ``totals`` (domestic)."""
        return self.exchange({
            "t": "0500", "11": self.next_stan(), "41": self.tid, "42": self.mid,
            "48": SettlementField48(totals).build(), "49": "156",
            "60": Field60("00", self.batch, "201").build(), "63": "001",
        })

    def upload(self, field48: str, code: str = "201") -> Message | None:
        """Send one 0320 (detail ``201`` or end ``202``)."""
        return self.exchange({
            "t": "0320", "11": self.next_stan(), "41": self.tid, "42": self.mid, "48": field48,
            "60": Field60("00", self.batch, code).build(),
        })

    def echo(self) -> Message | None:
        """Send an echo test."""
        return self.exchange({"t": "0820", "11": self.next_stan(), "41": self.tid,
                              "42": self.mid, "60": Field60("00", self.batch, "301").build()})
