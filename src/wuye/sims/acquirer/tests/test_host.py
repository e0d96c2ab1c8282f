"""The host answers the whole contract (pos-iso8583.md §3-§7) on loopback."""

from __future__ import annotations

from datetime import datetime

import pytest

from wuye.iso8583 import codec, crypto
from wuye.iso8583.codec import Header
from wuye.iso8583.fields import (
    BatchItem,
    SettlementField48,
    Totals,
    build_batch_end_48,
    build_batch_upload_48,
)
from wuye.sims.acquirer.host import HostConfig
from wuye.sims.acquirer.server import start_acquirer
from wuye.sims.acquirer.testclient import TestTerminal

from .conftest import DEMO, TMK, TZ, txns

PAN = "6222021000000000017"
LOW = "6228480000000000026"
CREDIT = "6259000000000000030"
EXPIRED = "6234560000000000043"
DO_NOT_HONOUR = "6222021000000000058"
SILENT = "6217000000000000061"
OTHER_PIN = "6222021000000000074"
TAP = "6258000000000000081"


# ---- sign-on ---------------------------------------------------------------------------


def test_sign_on_issues_fresh_single_length_keys_each_time(acquirer):
    term = TestTerminal(acquirer.port)
    first = term.sign_on()
    keys1 = (term.pik, term.mak)
    second = term.sign_on()

    assert first["39"] == second["39"] == "00"
    assert len(term.mak) == 8 and len(term.pik) == 16
    assert bytes(second["62"])[28:36] == bytes(8)
    assert (term.pik, term.mak) != keys1
    assert first["60"] == "00000001003"
    assert len(first["37"]) == 12 and first["37"] != second["37"]
    assert set(first) >= {"11", "12", "13", "32", "37", "39", "41", "42", "60", "62"}


def test_double_length_mak_when_configured(tmp_path):
    with start_acquirer(tmp_path, terminals=[DEMO], config=HostConfig(single_mak=False)) as h:
        term = TestTerminal(h.port)
        assert term.sign_on()["39"] == "00"
        assert len(term.mak) == 16
        assert term.purchase(100, PAN)["mac_ok"] == b"1"


def test_unknown_terminal_gets_97_and_no_keys(acquirer):
    term = TestTerminal(acquirer.port, tid="99999999")
    answer = term.sign_on()
    assert answer["39"] == "97"
    assert "62" not in answer


def test_wrong_merchant_gets_03(acquirer):
    term = TestTerminal(acquirer.port, mid="898310048990009")
    assert term.sign_on()["39"] == "03"


def test_sign_on_without_operator_is_a_format_error(acquirer):
    term = TestTerminal(acquirer.port)
    answer = term.exchange({"t": "0800", "11": "000001", "41": DEMO[0], "42": DEMO[1],
                            "60": "00000001003"})
    assert answer["39"] == "30"


def test_echo_and_sign_off(terminal, acquirer):
    assert terminal.echo()["39"] == "00"
    answer = terminal.exchange({"t": "0820", "11": terminal.next_stan(), "41": terminal.tid,
                                "42": terminal.mid, "60": "00000001002"})
    assert answer["t"] == "0830" and answer["39"] == "00"
    # signed off: the old MAK is no longer accepted
    assert terminal.purchase(100, PAN)["39"] == "A0"


# ---- purchase and the test cards --------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "amount", "pin", "entry", "code"),
    [
        (PAN, 128000, "123456", "05", "00"),
        (PAN, 10_000_000, "123456", "05", "00"),
        (PAN, 10_000_001, "123456", "05", "51"),
        (LOW, 5000, "123456", "02", "00"),
        (LOW, 5001, "123456", "02", "51"),
        (CREDIT, 5_000_000, "123456", "05", "00"),
        (CREDIT, 5_000_001, "123456", "05", "51"),
        (EXPIRED, 100, "123456", "05", "54"),
        (DO_NOT_HONOUR, 100, "123456", "05", "05"),
        (OTHER_PIN, 100, "654321", "05", "00"),
        (OTHER_PIN, 100, "123456", "05", "55"),
        (TAP, 99_999, None, "07", "00"),
        (TAP, 100_000, None, "07", "55"),
        (TAP, 100_000, "123456", "07", "00"),
        (PAN, 100, None, "05", "55"),
        ("6222021000000000018", 100, "123456", "05", "14"),  # Luhn fails
        ("6222021000000000025", 100, "123456", "05", "14"),  # not a card of this host
        (PAN, 0, "123456", "05", "13"),
    ],
)
def test_purchase_by_test_card(terminal, acquirer, pan, amount, pin, entry, code):
    request = terminal.purchase_fields(amount, pan, pin, entry)
    answer = terminal.exchange(request)

    assert answer["t"] == "0210"
    assert answer["39"] == code
    assert answer["mac_ok"] == b"1"
    for key in ("3", "4", "11", "41", "42"):
        assert answer[key] == request[key]
    assert ("38" in answer) == (code == "00")
    if code == "00":
        assert len(answer["38"]) == 6
        assert answer["63"] == "CUP"
        assert len(answer["44"]) == 22
        assert answer["15"] == "1121"
    assert set(answer) >= {"3", "4", "11", "12", "13", "15", "25", "32", "37", "39", "41", "42",
                           "49", "60", "64"}


def test_silent_card_is_acted_on_but_never_answered_so_it_drives_a_reversal(terminal, acquirer):
    terminal.timeout_s = 0.5
    request = terminal.purchase_fields(1000, SILENT)

    assert terminal.exchange(request) is None
    assert txns(acquirer, kind="PURCHASE")[0]["response_code"] == "00"

    reversal = terminal.reversal_of(request)
    assert reversal["t"] == "0410" and reversal["39"] == "00" and reversal["mac_ok"] == b"1"
    assert txns(acquirer, kind="PURCHASE")[0]["reversed"] == 1


def test_track2_only_purchase(terminal):
    request = terminal.purchase_fields(100, PAN, entry="02")
    del request["2"], request["14"]
    request["35"] = PAN + "=30121010000"
    assert terminal.exchange(request)["39"] == "00"


def test_chip_data_gets_issuer_data_back(terminal):
    request = terminal.purchase_fields(100, PAN)
    request["23"] = "001"
    request["55"] = bytes.fromhex("9F2608" "1122334455667788")
    answer = terminal.exchange(request)
    assert answer["39"] == "00"
    assert answer["55"] == bytes.fromhex("8A023030")


def test_three_wrong_pins_exceed_the_tries(terminal):
    codes = [terminal.purchase(100, PAN, pin="000000")["39"] for _ in range(3)]
    codes.append(terminal.purchase(100, PAN, pin="123456")["39"])
    assert codes == ["55", "55", "75", "75"]


def test_pin_retry_with_the_same_stan_is_processed_again(terminal):
    request = terminal.purchase_fields(100, PAN, pin="000000")
    assert terminal.exchange(request)["39"] == "55"
    request["52"] = crypto.pin_block("123456", PAN, terminal.pik)
    assert terminal.exchange(request)["39"] == "00"


def test_bad_mac_gets_a0_and_moves_nothing(terminal, acquirer):
    frame = terminal.frame(terminal.purchase_fields(100, PAN))
    damaged = frame[:-1] + bytes([frame[-1] ^ 0x01])
    reply = terminal.send_raw(damaged)
    answer = codec.decode(codec.unframe(reply)[2])

    assert answer["39"] == "A0"
    assert txns(acquirer) == []


def test_missing_mac_gets_a0(terminal, acquirer):
    answer = terminal.exchange(terminal.purchase_fields(100, PAN), mac=False)
    assert answer["39"] == "A0"
    assert txns(acquirer) == []


def test_missing_mandatory_field_is_a_format_error(terminal, acquirer):
    request = terminal.purchase_fields(100, PAN)
    del request["25"]
    assert terminal.exchange(request)["39"] == "30"
    assert txns(acquirer) == []


def test_wrong_processing_code_for_the_type_is_invalid(terminal):
    request = terminal.purchase_fields(100, PAN)
    request["3"] = "200000"
    assert terminal.exchange(request)["39"] == "12"


def test_duplicate_gets_94_with_the_originals_result_and_no_new_effect(terminal, acquirer):
    request = terminal.purchase_fields(128000, PAN)
    first = terminal.exchange(request)
    terminal.sign_on()  # new keys: the PIN block and MAC change, the content does not
    request["52"] = crypto.pin_block("123456", PAN, terminal.pik)
    again = terminal.exchange(request)

    assert first["39"] == "00"
    assert again["39"] == "94"
    assert again["37"] == first["37"] and again["38"] == first["38"]
    assert len(txns(acquirer)) == 1


def test_same_stan_with_other_content_is_refused(terminal, acquirer):
    request = terminal.purchase_fields(128000, PAN)
    terminal.exchange(request)
    request["4"] = "000000000001"
    assert terminal.exchange(request)["39"] == "12"
    assert len(txns(acquirer)) == 1


def test_rrns_are_unique_and_carry_the_host_day(terminal, clock):
    rrns = {terminal.purchase(100, PAN)["37"] for _ in range(5)}
    assert len(rrns) == 5
    assert all(r.startswith("1120") and len(r) == 12 for r in rrns)


# ---- void, refund, reversal ----------------------------------------------------------


def _buy(terminal, amount=128000, pan=PAN):
    request = terminal.purchase_fields(amount, pan)
    answer = terminal.exchange(request)
    assert answer["39"] == "00"
    return {**request, **answer}


def test_void_marks_the_purchase_voided(terminal, acquirer):
    original = _buy(terminal)
    answer = terminal.void(original, pan=PAN)

    assert answer["39"] == "00" and answer["3"] == "200000" and len(answer["38"]) == 6
    assert txns(acquirer, kind="PURCHASE")[0]["voided"] == 1
    assert terminal.void(original)["39"] == "12"  # twice


def test_void_without_the_card_uses_the_originals(terminal, acquirer):
    original = _buy(terminal)
    assert terminal.void(original)["39"] == "00"
    assert txns(acquirer, kind="VOID")[0]["masked_pan"] == "622202*********0017"


def test_void_checks_amount_and_original(terminal):
    original = _buy(terminal)
    assert terminal.void({**original, "4": "000000000001"})["39"] == "13"
    assert terminal.void({**original, "37": "000000000000"})["39"] == "25"
    assert terminal.void({**original, "11": "999999"})["39"] == "25"
    assert terminal.void(original, pan=CREDIT)["39"] == "25"


def test_refund_up_to_what_is_left(terminal, acquirer):
    original = _buy(terminal, 30000, CREDIT)
    first = terminal.exchange(terminal.refund_fields(original, 20000, CREDIT))
    too_much = terminal.exchange(terminal.refund_fields(original, 10001, CREDIT))
    rest = terminal.exchange(terminal.refund_fields(original, 10000, CREDIT))

    assert first["t"] == "0230" and first["39"] == "00" and len(first["38"]) == 6
    assert too_much["39"] == "13"
    assert rest["39"] == "00"
    assert txns(acquirer, kind="PURCHASE")[0]["refunded_fen"] == 30000


def test_refund_sent_again_unchanged_gets_94_and_refunds_once(terminal, acquirer):
    original = _buy(terminal, 30000, CREDIT)
    request = terminal.refund_fields(original, 30000, CREDIT)
    first = terminal.exchange(request)
    again = terminal.exchange(request)
    assert (first["39"], again["39"]) == ("00", "94")
    assert again["37"] == first["37"] and again["38"] == first["38"]
    assert len(txns(acquirer, kind="REFUND")) == 1


def test_refund_needs_the_original(terminal):
    original = _buy(terminal, 30000, CREDIT)
    assert terminal.exchange(terminal.refund_fields({**original, "37": "111111111111"}, 100,
                                                    CREDIT))["39"] == "25"
    assert terminal.exchange(terminal.refund_fields({**original, "13": "0101"}, 100,
                                                    CREDIT))["39"] == "25"
    terminal.void(original)
    assert terminal.exchange(terminal.refund_fields(original, 100, CREDIT))["39"] == "12"


def test_refund_of_a_purchase_from_an_earlier_settled_batch(terminal, acquirer):
    original = _buy(terminal, 30000, CREDIT)
    terminal.settle(Totals(30000, 1, 0, 0))
    terminal.upload(build_batch_end_48(0), "202")
    terminal.sign_on()
    assert terminal.batch == "000002"
    answer = terminal.exchange(terminal.refund_fields(original, 30000, CREDIT))
    assert answer["39"] == "00"


def test_reversal_is_idempotent(terminal, acquirer):
    request = terminal.purchase_fields(100, PAN)
    terminal.exchange(request)
    first = terminal.reversal_of(request)
    second = terminal.reversal_of(request)

    assert (first["39"], second["39"]) == ("00", "00")
    assert set(first) >= {"3", "4", "11", "25", "32", "39", "41", "42", "49", "60", "64"}
    assert txns(acquirer, kind="PURCHASE")[0]["reversed"] == 1


def test_reversal_of_an_unknown_original_is_approved(terminal, acquirer):
    request = terminal.purchase_fields(100, PAN)  # never sent
    assert terminal.reversal_of(request)["39"] == "00"
    assert txns(acquirer) == []


def test_reversal_of_a_void_restores_the_purchase(terminal, acquirer):
    original = _buy(terminal)
    stan_before = terminal.stan
    terminal.void(original)
    void_request = {"t": "0200", "3": "200000", "4": original["4"],
                    "11": f"{stan_before + 1:06d}", "25": "00", "41": terminal.tid,
                    "42": terminal.mid, "49": "156", "60": "2300000100060",
                    "61": f"000001{original['11']}"}
    assert terminal.reversal_of(void_request)["39"] == "00"
    purchase = txns(acquirer, kind="PURCHASE")[0]
    assert purchase["voided"] == 0
    assert txns(acquirer, kind="VOID")[0]["reversed"] == 1


def test_reversal_of_a_settled_original_is_refused(terminal):
    request = terminal.purchase_fields(100, PAN)
    terminal.exchange(request)
    terminal.settle(Totals(100, 1, 0, 0))
    assert terminal.reversal_of(request)["39"] == "12"


def test_reversal_with_a_bad_mac_changes_nothing(terminal, acquirer):
    request = terminal.purchase_fields(100, PAN)
    terminal.exchange(request)
    fields = {k: v for k, v in request.items() if k not in ("26", "52", "53", "64")}
    fields.update(t="0400", **{"39": "98"})
    frame = terminal.frame(fields)
    reply = terminal.send_raw(frame[:-1] + bytes([frame[-1] ^ 1]))
    assert codec.decode(codec.unframe(reply)[2])["39"] == "A0"
    assert txns(acquirer, kind="PURCHASE")[0]["reversed"] == 0


def test_balance_inquiry(terminal, acquirer):
    answer = terminal.balance(LOW)
    assert answer["39"] == "00"
    assert answer["54"] == "1001156C000000005000"
    assert terminal.balance(CREDIT)["54"].endswith("000005000000")
    assert terminal.balance(LOW, pin="111111")["39"] == "55"


# ---- settlement and batch upload ----------------------------------------------------


def _day(terminal):
    a = _buy(terminal, 128000, PAN)
    _buy(terminal, 5000, CREDIT)
    v = _buy(terminal, 2000, PAN)
    terminal.void(v)
    r = terminal.purchase_fields(300, PAN)
    terminal.exchange(r)
    terminal.reversal_of(r)
    terminal.exchange(terminal.refund_fields(a, 30000, PAN))
    terminal.purchase(100, EXPIRED)
    # debit: 128000 + 5000 + 2000 (voided counts); credit: void 2000 + refund 30000
    return Totals(135000, 3, 32000, 2)


def test_settlement_balanced_closes_without_upload(terminal, acquirer):
    totals = _day(terminal)
    answer = terminal.settle(totals)
    verdict = SettlementField48.parse(answer["48"])

    assert answer["t"] == "0510" and answer["39"] == "00"
    assert verdict.domestic == totals and verdict.domestic_code == "1"
    assert verdict.foreign_code == "1"
    assert answer["15"] == "1121"
    assert set(answer) >= {"11", "12", "13", "15", "32", "37", "39", "41", "42", "48", "49", "60"}
    end = terminal.upload(build_batch_end_48(0), "202")
    assert end["t"] == "0330" and end["39"] == "00"
    assert terminal.sign_on()["60"] == "00000002003"
    # the closed batch takes no more transactions
    terminal.batch = "000001"
    assert terminal.purchase(100, PAN)["39"] == "12"


def test_settlement_not_balanced_then_batch_upload(terminal, acquirer):
    _day(terminal)
    answer = terminal.settle(Totals(135000, 3, 2000, 1))
    assert SettlementField48.parse(answer["48"]).domestic_code == "2"

    items = [BatchItem(f"{n:06d}", PAN, 100 * n) for n in range(1, 10)]
    assert terminal.upload(build_batch_upload_48(items[:8]))["39"] == "00"
    assert terminal.upload(build_batch_upload_48(items[8:]))["39"] == "00"
    assert terminal.upload(build_batch_end_48(9), "202")["39"] == "00"

    rows = list(acquirer.host.store.db.execute("SELECT * FROM upload_item"))
    assert len(rows) == 9
    assert {r["masked_pan"] for r in rows} == {"622202*********0017"}
    assert acquirer.host.store.batch_state(terminal.tid, "000001") == "closed"


def test_void_after_settlement_is_refused(terminal):
    original = _buy(terminal)
    terminal.settle(Totals(128000, 1, 0, 0))
    assert terminal.void(original)["39"] == "12"


def test_settlement_with_foreign_totals_is_not_balanced(terminal):
    answer = terminal.exchange({
        "t": "0500", "11": terminal.next_stan(), "41": terminal.tid, "42": terminal.mid,
        "48": SettlementField48(Totals(), "0", Totals(1, 1, 0, 0)).build(), "49": "156",
        "60": "00000001201", "63": "001"})
    assert SettlementField48.parse(answer["48"]).foreign_code == "2"


# ---- business day ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "settle", "rrn_day"),
    [
        (datetime(2026, 11, 20, 22, 59, 59, tzinfo=TZ), "1121", "1120"),
        (datetime(2026, 11, 20, 23, 0, 0, tzinfo=TZ), "1122", "1121"),
        (datetime(2026, 12, 31, 23, 30, 0, tzinfo=TZ), "0102", "0101"),
    ],
)
def test_cut_off_moves_the_settlement_date(terminal, clock, acquirer, at, settle, rrn_day):
    clock.now = at
    answer = terminal.purchase(100, PAN)
    assert answer["15"] == settle
    assert answer["37"].startswith(rrn_day)
    assert txns(acquirer)[0]["settle_date"].endswith(settle)


def test_expiry_is_checked_against_the_host_clock(terminal, clock):
    clock.now = datetime(2031, 1, 1, 10, 0, tzinfo=TZ)
    assert terminal.purchase(100, PAN)["39"] == "54"


# ---- header, framing, training ------------------------------------------------------


def test_header_and_tpdu_of_the_answer(terminal, acquirer):
    acquirer.host.request_processing(terminal.tid, 3)
    terminal.echo()
    assert terminal.last_header == Header(status=0, processing=3, app_version="310000")
    terminal.echo()
    assert terminal.last_header.processing == 0


def test_training_transactions_are_marked(acquirer):
    term = TestTerminal(acquirer.port, training=True)
    term.sign_on()
    assert term.purchase(100, PAN)["39"] == "00"
    assert term.last_header.status == 1
    assert txns(acquirer)[0]["training"] == 1


def test_undecodable_message_gets_30(terminal):
    body = bytes.fromhex("0200" "1000000000000000" "0000001280")
    reply = terminal.send_raw(codec.frame(body, header=Header().pack()))
    answer = codec.decode(codec.unframe(reply)[2])
    assert answer == {"t": "0210", "39": "30"}


def test_garbage_frame_closes_the_connection(terminal):
    assert terminal.send_raw(b"\x00\x05hello") is None


def test_several_requests_on_one_connection_and_one_per_connection(terminal):
    assert [terminal.echo()["39"] for _ in range(3)] == ["00"] * 3
    for _ in range(3):
        terminal.connect()
        assert terminal.echo()["39"] == "00"


def test_registry_terminals_are_accepted_and_refreshed(tmp_path):
    from wuye.terminals.selectors import AcquirerTerminal

    known: list[AcquirerTerminal] = []
    with start_acquirer(tmp_path, registry=lambda: list(known)) as handle:
        term = TestTerminal(handle.port)
        assert term.sign_on()["39"] == "97"
        known.append(AcquirerTerminal("10000001", "898310048990001", TMK, "申和物业"))
        handle.host._registry_at = -1e9  # let the next miss read the registry at once
        assert term.sign_on()["39"] == "00"
        # a new TMK in terminal management reaches the host at the next sign-on
        new_tmk = bytes.fromhex("11111111111111112222222222222222")
        known[0] = AcquirerTerminal("10000001", "898310048990001", new_tmk, "申和物业")
        term.tmk = new_tmk
        assert term.sign_on()["39"] == "00"


def test_a_failing_registry_does_not_stop_the_host(tmp_path):
    def broken():
        raise RuntimeError("db down")

    with start_acquirer(tmp_path, terminals=[DEMO], registry=broken) as handle:
        assert TestTerminal(handle.port).sign_on()["39"] == "00"


def test_no_card_data_or_keys_in_clear_in_the_store(terminal, acquirer, tmp_path):
    original = _buy(terminal, 100, PAN)
    terminal.void(original, pan=PAN)
    track = terminal.purchase_fields(100, CREDIT, entry="02")
    track["35"] = CREDIT + "=30121010000"
    terminal.exchange(track)
    terminal.settle(Totals(0, 0, 0, 0))
    terminal.upload(build_batch_upload_48([BatchItem("000001", PAN, 100)]))
    acquirer.host.store.db.execute("PRAGMA wal_checkpoint(FULL)")
    blob = b"".join(p.read_bytes() for p in (tmp_path / "acq").iterdir())

    for secret in (PAN.encode(), CREDIT.encode(), b"30121010000", TMK, TMK.hex().encode(),
                   TMK.hex().upper().encode(), terminal.mak, terminal.pik,
                   terminal.mak.hex().encode()):
        assert secret not in blob


def test_rrns_stay_unique_across_a_restart(tmp_path, clock):
    seen = set()
    for _ in range(2):
        with start_acquirer(tmp_path, terminals=[DEMO], clock=clock) as handle:
            term = TestTerminal(handle.port, stan=len(seen) * 10)
            seen.add(term.sign_on()["37"])
            for _ in range(3):
                seen.add(term.purchase(100, PAN)["37"])
            term.close()
    assert len(seen) == 8


def test_a_store_failure_answers_96_writes_nothing_and_the_host_carries_on(
    terminal, acquirer, monkeypatch
):
    import sqlite3

    def broken(**values):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(acquirer.host.store, "txn_insert", broken)
    answers = [terminal.purchase(100, PAN, pin="000000") for _ in range(3)]
    monkeypatch.undo()

    assert [a["39"] for a in answers] == ["96"] * 3
    assert txns(acquirer) == []
    # the three wrong PINs were rolled back with the rest: no "PIN tries exceeded"
    assert terminal.purchase(100, PAN)["39"] == "00"
