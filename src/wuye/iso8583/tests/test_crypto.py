"""Keys, PIN blocks and MACs against published vectors and an independent psec computation."""

from __future__ import annotations

import warnings

import psec.des
import psec.pinblock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wuye.iso8583 import codec, crypto
from wuye.iso8583.crypto import KeyCheckError, PinBlockError

TMK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
PIK = bytes.fromhex("1A2B3C4D5E6F70818192A3B4C5D6E7F8")
MAK8 = bytes.fromhex("0123456789ABCDEF")
MAK16 = bytes.fromhex("89ABCDEF0123456776543210FEDCBA98")


def _psec_ecb(key: bytes, data: bytes) -> bytes:
    """Reference: psec's own (3)DES, which builds its cipher from the key as given."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return psec.des.encrypt_tdes_ecb(key, data)


def _reference_mac(mak: bytes, mab: bytes) -> bytes:
    """The UnionPay ECB MAC written out from §4 step by step, over psec's cipher."""
    data = mab + b"\x00" * ((8 - len(mab) % 8) % 8)
    r = bytes(8)
    for i in range(0, len(data), 8):
        r = bytes(a ^ b for a, b in zip(r, data[i : i + 8], strict=True))
    h = r.hex().upper().encode()
    e1 = _psec_ecb(mak, h[:8])
    x = bytes(a ^ b for a, b in zip(e1, h[8:], strict=True))
    return _psec_ecb(mak, x).hex().upper().encode()[:8]


def test_single_des_matches_the_fips_81_vector():
    assert crypto.encrypt(MAK8, b"Now is t") == bytes.fromhex("3FA40E8A984D4815")


def test_double_length_3des_matches_psecs_published_vector():
    assert crypto.encrypt(TMK, b"12345678") == bytes.fromhex("41D2FFBA3CDC15FE")


def test_kcv_is_four_bytes_of_zeros_encrypted():
    assert crypto.kcv(TMK) == bytes.fromhex("08D7B4FB")
    assert crypto.kcv(MAK8) == bytes.fromhex("D5D44FF7")


def test_key_encryption_round_trips_and_agrees_with_psec():
    enc = crypto.encrypt_key(TMK, PIK)
    assert enc == _psec_ecb(TMK, PIK)
    assert crypto.decrypt_key(TMK, enc) == PIK


def test_pin_block_matches_psecs_published_format0_vector():
    clear = bytes.fromhex("041277CDDEEFF669")
    block = crypto.pin_block("1234", "5544332211009966", PIK)
    assert block == _psec_ecb(PIK, clear)
    assert crypto.pin_from_block(block, "5544332211009966", PIK) == "1234"


def test_pin_block_for_a_test_card():
    # PIN field 06123456FFFFFFFF xor PAN field 0000 + 12 digits before the check digit
    clear = bytes.fromhex("06123456FFFFFFFF")
    pan_field = bytes.fromhex("0000100000000001")
    expected = _psec_ecb(PIK, bytes(a ^ b for a, b in zip(clear, pan_field, strict=True)))
    assert crypto.pin_block("123456", "6222021000000000017", PIK) == expected


@pytest.mark.parametrize(("pin", "pan"), [("123", "6222021000000000017"),
                                          ("12345a", "6222021000000000017"),
                                          ("123456", "622202")])
def test_pin_block_refuses_bad_pin_or_pan(pin, pan):
    with pytest.raises(PinBlockError):
        crypto.pin_block(pin, pan, PIK)


def test_pin_from_block_refuses_a_block_under_the_wrong_key():
    block = crypto.pin_block("123456", "6222021000000000017", PIK)
    with pytest.raises(PinBlockError):
        crypto.pin_from_block(block, "6222021000000000017", TMK)


@pytest.mark.parametrize("mak", [MAK8, MAK16])
@pytest.mark.parametrize("mab", [b"", b"1", b"12345678", bytes(range(37)), bytes(range(200))])
def test_mac_agrees_with_the_reference(mak, mab):
    assert crypto.mac(mak, mab) == _reference_mac(mak, mab)


def test_mac_known_answers():
    # Pinned from the reference implementation above.
    assert crypto.mac(MAK8, b"12345678abc") == _reference_mac(MAK8, b"12345678abc")
    assert crypto.mac(MAK8, b"12345678abc") == b"CF7FC147"
    assert len(crypto.mac(MAK16, b"\x02\x00")) == 8


@settings(max_examples=50)
@given(mab=st.binary(max_size=300), double=st.booleans())
def test_mac_matches_reference_for_any_block(mab, double):
    mak = MAK16 if double else MAK8
    assert crypto.mac(mak, mab) == _reference_mac(mak, mab)


def test_mac_message_and_verify():
    body = crypto.mac_message({"t": "0200", "3": "000000", "4": "000000000100"}, MAK8)
    assert body[-8:] == _reference_mac(MAK8, body[:-8])
    assert crypto.verify_mac(body, MAK8)
    damaged = body[:-9] + bytes([body[-9] ^ 1]) + body[-8:]
    assert not crypto.verify_mac(damaged, MAK8)
    assert codec.decode(body)["64"] == body[-8:]


@pytest.mark.parametrize("single", [True, False])
def test_field62_round_trips(single):
    mak = MAK8 if single else MAK16
    data = crypto.build_field62(TMK, PIK, mak, single_mak=single)
    assert len(data) == 40
    assert data[:16] == _psec_ecb(TMK, PIK)
    assert data[16:20] == _psec_ecb(PIK, bytes(8))[:4]
    if single:
        assert data[20:28] == _psec_ecb(TMK, MAK8)
        assert data[28:36] == bytes(8)
    assert crypto.parse_field62(TMK, data) == (PIK, mak)


@pytest.mark.parametrize(("offset", "message"), [(17, "PIK"), (38, "MAK"), (5, "PIK"),
                                                 (22, "MAK")])
def test_field62_with_a_wrong_check_value_is_refused(offset, message):
    data = bytearray(crypto.build_field62(TMK, PIK, MAK8))
    data[offset] ^= 0x40
    with pytest.raises(KeyCheckError, match=message):
        crypto.parse_field62(TMK, bytes(data))


def test_field62_under_another_tmk_is_refused():
    data = crypto.build_field62(TMK, PIK, MAK8)
    with pytest.raises(KeyCheckError):
        crypto.parse_field62(MAK16, data)
    with pytest.raises(KeyCheckError):
        crypto.parse_field62(TMK, data[:39])


def test_generated_keys_have_odd_parity():
    key = crypto.generate_key(16)
    assert len(key) == 16
    assert all(bin(b).count("1") % 2 == 1 for b in key)
