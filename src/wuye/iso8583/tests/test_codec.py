"""The codec against exact bytes written out by hand from pos-iso8583.md §1-§2."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wuye.iso8583 import codec
from wuye.iso8583.codec import FormatError, Header

# One field at a time after MTI 0200: (field, value, bitmap, encoded field bytes)
FIELD_TABLE = [
    ("2", "6222021000000000017", "4000000000000000", "19 62 22 02 10 00 00 00 00 01 70"),
    ("2", "6259000000000030", "4000000000000000", "16 62 59 00 00 00 00 00 30"),
    ("3", "000000", "2000000000000000", "00 00 00"),
    ("4", "000000128000", "1000000000000000", "00 00 00 12 80 00"),
    ("11", "000017", "0020000000000000", "00 00 17"),
    ("12", "093015", "0010000000000000", "09 30 15"),
    ("13", "1120", "0008000000000000", "11 20"),
    ("14", "3012", "0004000000000000", "30 12"),
    ("15", "1121", "0002000000000000", "11 21"),
    ("22", "051", "0000040000000000", "05 10"),
    ("22", "072", "0000040000000000", "07 20"),
    ("23", "001", "0000020000000000", "00 01"),
    ("25", "00", "0000008000000000", "00"),
    ("26", "12", "0000004000000000", "12"),
    ("32", "48020000", "0000000100000000", "08 48 02 00 00"),
    ("32", "01020000000", "0000000100000000", "11 01 02 00 00 00 00"),
    ("35", "6222021000000000017=3012101", "0000000020000000",
     "27 62 22 02 10 00 00 00 00 01 7D 30 12 10 10"),
    ("37", "000001234567", "0000000008000000", "30 30 30 30 30 31 32 33 34 35 36 37"),
    ("38", "A1B2C3", "0000000004000000", "41 31 42 32 43 33"),
    ("39", "00", "0000000002000000", "30 30"),
    ("41", "10000001", "0000000000800000", "31 30 30 30 30 30 30 31"),
    ("42", "898310048990001", "0000000000400000",
     "38 39 38 33 31 30 30 34 38 39 39 30 30 30 31"),
    ("44", "0102000000048020000", "0000000000100000",
     "19 30 31 30 32 30 30 30 30 30 30 30 34 38 30 32 30 30 30 30"),
    ("48", "0" * 62, "0000000000010000", "00 62" + " 00" * 31),
    ("49", "156", "0000000000008000", "31 35 36"),
    ("52", bytes.fromhex("0123456789ABCDEF"), "0000000000001000", "01 23 45 67 89 AB CD EF"),
    ("53", "2600000000000000", "0000000000000800", "26 00 00 00 00 00 00 00"),
    ("54", "C000000010000000", "0000000000000400",
     "00 16 43 30 30 30 30 30 30 30 31 30 30 30 30 30 30 30"),
    ("55", bytes.fromhex("9F2608AABBCCDDEEFF0011"), "0000000000000200",
     "00 11 9F 26 08 AA BB CC DD EE FF 00 11"),
    ("60", "22000001000", "0000000000000010", "00 11 22 00 00 01 00 00"),
    ("60", "2200000100050", "0000000000000010", "00 13 22 00 00 01 00 05 00"),
    ("61", "0000010000171120", "0000000000000008", "00 16 00 00 01 00 00 17 11 20"),
    ("62", bytes(3), "0000000000000004", "00 03 00 00 00"),
    ("63", "001", "0000000000000002", "00 03 30 30 31"),
    ("64", b"ABCD1234", "0000000000000001", "41 42 43 44 31 32 33 34"),
]


@pytest.mark.parametrize(("field", "value", "bitmap", "wire"), FIELD_TABLE)
def test_each_field_encodes_to_the_contracts_bytes(field, value, bitmap, wire):
    expected = bytes.fromhex("0200" + bitmap + wire.replace(" ", ""))

    body = codec.encode({"t": "0200", field: value})

    assert body == expected
    assert codec.decode(expected) == {"t": "0200", field: value}


def test_a_whole_purchase_request_has_the_hand_assembled_layout():
    body = codec.encode({
        "t": "0200", "3": "000000", "4": "000000000100", "11": "000001", "22": "021",
        "25": "00", "41": "10000001", "42": "898310048990001", "49": "156",
        "60": "22000001000", "64": b"\x00" * 8,
    })
    # bitmap: fields 3,4,11,22,25,41,42,49,60,64
    assert body.hex().upper() == (
        "0200" "30200480" "00C08011"
        "000000" "000000000100" "000001" "0210" "00"
        "3130303030303031" "383938333130303438393930303031" "313536"
        "0011" "220000010000" "0000000000000000"
    )


def test_bitmap_bits_match_the_fields_present():
    body = codec.encode({"t": "0800", "11": "000001", "41": "10000001", "42": "898310048990001",
                         "60": "00000001003", "63": "001"})
    assert body[:2] == b"\x08\x00"
    assert body[2:10] == bytes.fromhex("0020000000C00012")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"t": "0200", "4": "12345"}, "4"),
        ({"t": "0200", "4": "00000000012A"}, "4"),
        ({"t": "0200", "2": "62220210000000000171234"}, "2"),
        ({"t": "0200", "41": "123"}, "41"),
        ({"t": "0200", "52": "0011223344556677"}, "52"),
        ({"t": "0200", "35": "6222=30X"}, "35"),
        ({"t": "0200", "65": "1"}, "65"),
        ({"t": "0200", "1": b"\0" * 8}, "1"),
        ({"3": "000000"}, "t"),
        ({"t": "0200", "60": "2" * 18}, "60"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(fields, field):
    with pytest.raises(FormatError) as info:
        codec.encode(fields)
    assert info.value.field == field
    assert f"field {field}" in str(info.value)


@pytest.mark.parametrize(
    ("wire", "field"),
    [
        ("0200" "1000000000000000" "0000001280", "4"),  # one byte short
        ("0200" "1000000000000000" "0000000012A0", "4"),  # A is not a BCD digit
        ("0200" "4000000000000000" "25" + "11" * 13, "2"),  # length above 19
        ("0200" "0000000000000001" "41424344", "64"),  # MAC cut off
        ("0200" "2000000000000000" "000000" "FF", "3"),  # extra byte after the last field
        ("02", "t"),
        ("0200" "8000000000000000" "0000000000000000", "1"),  # secondary bitmap
        ("0200" "0000000002000000" "30FF", "39"),  # not ASCII
        ("0200" "0000000020000000" "05" "62EDA3", "35"),  # E is not a track-2 nibble
    ],
)
def test_damaged_messages_raise_format_error_naming_the_field(wire, field):
    with pytest.raises(FormatError) as info:
        codec.decode(bytes.fromhex(wire))
    assert info.value.field == field


def test_header_packs_and_unpacks():
    assert Header().pack() == bytes.fromhex("603100310000")
    assert Header(status=1, processing=3, app_version="310201").pack() == bytes.fromhex(
        "603113310201"
    )
    assert Header.unpack(bytes.fromhex("603106310000")) == Header(0, 6, "310000")
    with pytest.raises(FormatError):
        Header.unpack(bytes.fromhex("613100310000"))
    with pytest.raises(FormatError):
        Header.unpack(bytes.fromhex("6031003100"))


def test_frame_and_unframe_round_trip():
    body = codec.encode({"t": "0820", "11": "000001", "60": "00000001301"})
    header = Header().pack()

    data = codec.frame(body, tpdu=codec.DEFAULT_TPDU, header=header)

    assert data[:2] == (11 + len(body)).to_bytes(2, "big")
    assert data[2:13] == bytes.fromhex("6000030000" "603100310000")
    assert codec.unframe(data) == (codec.DEFAULT_TPDU, header, body)


@pytest.mark.parametrize(
    "data", ["000B60000300006031003100", "0004600003", "000D6000030000603100310000" + "00" * 3,
             "000D" "7000030000" "603100310000" "0800"],
)
def test_unframe_refuses_damaged_frames(data):
    with pytest.raises(FormatError):
        codec.unframe(bytes.fromhex(data))


def test_reply_tpdu_swaps_destination_and_source():
    assert codec.reply_tpdu(bytes.fromhex("6000030000")) == bytes.fromhex("6000000003")


def test_mab_is_everything_before_field_64():
    body = codec.encode({"t": "0200", "3": "000000", "64": b"12345678"})
    assert codec.mab(body) == body[:-8]
    plain = codec.encode({"t": "0800", "11": "000001"})
    assert codec.mab(plain) == plain


def test_read_frame_reads_whole_frames_and_reports_closing():
    async def run():
        reader = asyncio.StreamReader()
        one = codec.frame(b"\x08\x20" + bytes(8), header=Header().pack())
        reader.feed_data(one + one[:5])
        reader.feed_eof()
        first = await codec.read_frame(reader)
        with pytest.raises(codec.ConnectionClosed):
            await codec.read_frame(reader)
        return first, one

    first, one = asyncio.run(run())
    assert first == one


def test_read_frame_refuses_a_length_too_small():
    async def run():
        reader = asyncio.StreamReader()
        reader.feed_data(b"\x00\x03abc")
        await codec.read_frame(reader)

    with pytest.raises(FormatError):
        asyncio.run(run())


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@given(
    pan=st.from_regex(r"\A[0-9]{13,19}\Z"),
    amount=st.integers(min_value=0, max_value=10**12 - 1),
    stan=st.integers(min_value=0, max_value=999_999),
    mac=st.binary(min_size=8, max_size=8),
    icc=st.binary(min_size=0, max_size=255),
    op=st.from_regex(r"\A[ -~]{0,163}\Z"),
)
def test_any_valid_message_round_trips(pan, amount, stan, mac, icc, op):
    msg = {"t": "0200", "2": pan, "4": f"{amount:012d}", "11": f"{stan:06d}", "55": icc,
           "63": op, "64": mac}
    assert codec.decode(codec.encode(msg)) == msg
