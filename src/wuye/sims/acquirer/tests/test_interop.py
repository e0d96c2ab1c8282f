"""Byte compatibility: frames built by hand from pos-iso8583.md, crypto straight from
``cryptography``, sent over a raw socket; answers parsed by hand. No ``wuye.iso8583`` here."""

from __future__ import annotations

import socket

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from .conftest import TMK

TPDU = bytes.fromhex("6000030000")
HEADER = bytes.fromhex("603100310000")
PAN = "6222021000000000017"


def ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    key24 = key * 3 if len(key) == 8 else key + key[:8]
    cipher = Cipher(TripleDES(key24), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def unionpay_mac(mak: bytes, mab: bytes) -> bytes:
    mab += b"\x00" * (-len(mab) % 8)
    r = bytearray(8)
    for i in range(0, len(mab), 8):
        for j in range(8):
            r[j] ^= mab[i + j]
    h = bytes(r).hex().upper().encode()
    e1 = ecb(mak, h[:8])
    x = bytes(a ^ b for a, b in zip(e1, h[8:], strict=True))
    return ecb(mak, x).hex().upper().encode()[:8]


def bitmap(*fields: int) -> bytes:
    bits = 0
    for f in fields:
        bits |= 1 << (64 - f)
    return bits.to_bytes(8, "big")


def lllvar_n(digits: str) -> bytes:
    padded = digits + "0" * (len(digits) % 2)
    return bytes.fromhex(f"{len(digits):04d}" + padded)


# The response side: (kind, size) per field — n: BCD digits, a: ASCII chars, b: bytes;
# ll/lll: 1- or 2-byte BCD length prefix.
FORMATS = {
    2: ("n", "ll"), 3: ("n", 6), 4: ("n", 12), 11: ("n", 6), 12: ("n", 6), 13: ("n", 4),
    14: ("n", 4), 15: ("n", 4), 25: ("n", 2), 32: ("n", "ll"), 37: ("a", 12), 38: ("a", 6),
    39: ("a", 2), 41: ("a", 8), 42: ("a", 15), 44: ("a", "ll"), 48: ("n", "lll"),
    49: ("a", 3), 54: ("a", "lll"), 55: ("b", "lll"), 60: ("n", "lll"), 61: ("n", "lll"),
    62: ("b", "lll"), 63: ("a", "lll"), 64: ("b", 8),
}


def parse(body: bytes) -> dict[int | str, object]:
    out: dict[int | str, object] = {"mti": body[:2].hex()}
    bits = int.from_bytes(body[2:10], "big")
    pos = 10
    for f in range(2, 65):
        if not bits & (1 << (64 - f)):
            continue
        kind, size = FORMATS[f]
        if size == "ll":
            n, pos = int(body[pos : pos + 1].hex()), pos + 1
        elif size == "lll":
            n, pos = int(body[pos : pos + 2].hex()), pos + 2
        else:
            n = size
        if kind == "n":
            nbytes = (n + 1) // 2
            out[f] = body[pos : pos + nbytes].hex()[:n]
        elif kind == "a":
            nbytes = n
            out[f] = body[pos : pos + n].decode("ascii")
        else:
            nbytes = n
            out[f] = body[pos : pos + n]
        pos += nbytes
    assert pos == len(body), "trailing bytes"
    return out


def roundtrip(sock: socket.socket, body: bytes) -> tuple[bytes, bytes, bytes]:
    payload = TPDU + HEADER + body
    sock.sendall(len(payload).to_bytes(2, "big") + payload)
    size = int.from_bytes(sock.recv(2), "big")
    data = b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data[:5], data[5:11], data[11:]


def test_hand_built_sign_on_and_purchase(acquirer):
    with socket.create_connection(("127.0.0.1", acquirer.port), timeout=5) as sock:
        sign_on = (
            bytes.fromhex("0800") + bitmap(11, 41, 42, 60, 63)
            + bytes.fromhex("000001") + b"10000001" + b"898310048990001"
            + bytes.fromhex("0011" "000000010030") + bytes.fromhex("0003") + b"001"
        )
        assert sign_on.hex().upper().startswith("08000020000000C00012")
        tpdu, header, body = roundtrip(sock, sign_on)

        assert tpdu == bytes.fromhex("6000000003")
        assert header == bytes.fromhex("603100310000")
        answer = parse(body)
        assert answer["mti"] == "0810" and answer[39] == "00" and answer[11] == "000001"
        keys = answer[62]
        assert isinstance(keys, bytes) and len(keys) == 40
        pik = ecb(TMK, keys[:16], decrypt=True)
        assert ecb(pik, bytes(8))[:4] == keys[16:20]
        assert keys[28:36] == bytes(8)  # single-length MAK
        mak = ecb(TMK, keys[20:28], decrypt=True)
        assert ecb(mak, bytes(8))[:4] == keys[36:40]
        batch = str(answer[60])[2:8]

        pin_block = ecb(pik, bytes(a ^ b for a, b in zip(bytes.fromhex("06123456FFFFFFFF"),
                                                          bytes.fromhex("0000100000000001"),
                                                          strict=True)))
        mab = (
            bytes.fromhex("0200")
            + bitmap(2, 3, 4, 11, 14, 22, 25, 26, 41, 42, 49, 52, 53, 60, 64)
            + bytes.fromhex("19" "62220210000000000170")
            + bytes.fromhex("000000" "000000128000" "000002" "3012" "0510" "00" "12")
            + b"10000001" + b"898310048990001" + b"156" + pin_block
            + bytes.fromhex("2600000000000000")
            + bytes.fromhex("0013" "22" + batch + "000" "60" "0")
        )
        tpdu, header, body = roundtrip(sock, mab + unionpay_mac(mak, mab))

        answer = parse(body)
        assert answer["mti"] == "0210"
        assert answer[39] == "00", answer
        assert (answer[3], answer[4], answer[11], answer[41], answer[42]) == (
            "000000", "000000128000", "000002", "10000001", "898310048990001")
        assert len(str(answer[37])) == 12 and len(str(answer[38])) == 6
        assert answer[64] == unionpay_mac(mak, body[:-8])
