"""Settlement and bank files byte for byte as settlement-files.md §1 and §4 lay them out."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from wuye.iso8583.fields import Totals, build_batch_end_48
from wuye.sims.acquirer import cli
from wuye.sims.acquirer.export import ExportError, Rates, export
from wuye.sims.acquirer.testclient import TestTerminal

from .conftest import TZ

PAN = "6222021000000000017"
CREDIT = "6259000000000000030"
RATES = Rates(debit_ppm=5000, debit_cap_fen=2000, credit_ppm=6000)


def _at(clock, hh, mm, ss=0, day=20):
    clock.now = datetime(2026, 11, day, hh, mm, ss, tzinfo=TZ)


def _day(terminal, clock, acquirer):
    """A day of business; return the answers of the rows that must appear."""
    _at(clock, 9, 30, 15)
    a_req = terminal.purchase_fields(128000, PAN)
    a = {**a_req, **terminal.exchange(a_req)}
    _at(clock, 9, 45)
    b_req = terminal.purchase_fields(50000, CREDIT)
    b = {**b_req, **terminal.exchange(b_req)}
    _at(clock, 10, 0)
    c_req = terminal.purchase_fields(1_000_000, PAN)  # fee 50.00 capped to 20.00
    c = {**c_req, **terminal.exchange(c_req)}
    _at(clock, 10, 10)
    voided = terminal.purchase_fields(700, PAN)
    terminal.void({**voided, **terminal.exchange(voided)})
    reversed_ = terminal.purchase_fields(800, PAN)
    terminal.exchange(reversed_)
    terminal.reversal_of(reversed_)
    terminal.purchase(100, "6234560000000000043")  # declined
    _at(clock, 10, 15)
    r = terminal.exchange(terminal.refund_fields(b, 30000, CREDIT))
    _at(clock, 23, 30)
    terminal.purchase(900, PAN)  # after the cut-off: settles on the 22nd
    training = TestTerminal(acquirer.port, training=True, stan=100)
    _at(clock, 11, 0)
    training.sign_on()
    training.purchase(600, PAN)
    training.close()
    return a, b, c, r


def test_settlement_file_is_byte_exact(terminal, clock, acquirer, tmp_path):
    a, b, c, r = _day(terminal, clock, acquirer)

    paths = export(acquirer.host.store, date(2026, 11, 21), tmp_path / "out", fee=RATES.fee)

    assert [p.name for p in paths] == ["acquirer_898310048990001_20261121.csv",
                                       "bank_898310048990001_20261121.csv"]
    m, t = "898310048990001", "10000001"
    expected = (
        "settle_date,txn_date,txn_time,mid,tid,batch_no,stan,rrn,auth_code,txn_type,card_no,"
        "card_type,amount,fee,net_amount,orig_rrn\n"
        f"20261121,20261120,093015,{m},{t},000001,{a['11']},{a['37']},{a['38']},PURCHASE,"
        "622202*********0017,DEBIT,1280.00,6.40,1273.60,\n"
        f"20261121,20261120,094500,{m},{t},000001,{b['11']},{b['37']},{b['38']},PURCHASE,"
        "625900*********0030,CREDIT,500.00,3.00,497.00,\n"
        f"20261121,20261120,100000,{m},{t},000001,{c['11']},{c['37']},{c['38']},PURCHASE,"
        "622202*********0017,DEBIT,10000.00,20.00,9980.00,\n"
        f"20261121,20261120,101500,{m},{t},000001,{r['11']},{r['37']},,REFUND,"
        f"625900*********0030,CREDIT,-300.00,-1.80,-298.20,{b['37']}\n"
        "TRAILER,4,11480.00,27.60,11452.40\n"
    )
    assert paths[0].read_bytes() == expected.encode("utf-8")
    assert paths[1].read_bytes() == (
        "txn_date,value_date,serial_no,direction,amount,balance,counterparty_name,"
        "counterparty_account,memo\n"
        "20261121,20261121,POS20261121990001,C,11452.40,11452.40,模拟收单机构有限公司,"
        "31000000000000001,POS清算 20261121 898310048990001\n"
    ).encode()


def test_next_days_bank_balance_runs_on(terminal, clock, acquirer, tmp_path):
    _day(terminal, clock, acquirer)
    paths = export(acquirer.host.store, date(2026, 11, 22), tmp_path, fee=RATES.fee)
    settle = paths[0].read_text(encoding="utf-8").splitlines()
    bank = paths[1].read_text(encoding="utf-8").splitlines()
    assert settle[-1] == "TRAILER,1,9.00,0.05,8.95"
    assert bank[1].split(",")[3:6] == ["C", "8.95", "11461.35"]


def test_files_import_with_wuyes_own_readers(terminal, clock, acquirer, tmp_path):
    from wuye.reconciliation.importers import acquirer as acquirer_reader
    from wuye.reconciliation.importers import bank as bank_reader

    _day(terminal, clock, acquirer)
    paths = export(acquirer.host.store, date(2026, 11, 21), tmp_path, fee=RATES.fee)
    parsed = acquirer_reader.parse(paths[0], paths[0].name)
    assert (parsed.row_count, parsed.total_fen, parsed.net_fen) == (4, 1_148_000, 1_145_240)
    moved = bank_reader.parse_csv(paths[1].read_bytes(), paths[1].name,
                                  account_no="6222000000000000001")
    assert len(moved.movements) == 1


def test_empty_day_writes_nothing(acquirer, tmp_path):
    assert export(acquirer.host.store, date(2026, 11, 21), tmp_path, fee=RATES.fee) == []


def test_rates_parse_and_refuse():
    assert Rates.parse("5000,2000,6000") == RATES
    assert Rates.parse("5000,,6000").debit_cap_fen is None
    for bad in ("5000,2000", "a,b,c", "5000,2000,200000", "-1,0,0"):
        with pytest.raises(ExportError):
            Rates.parse(bad)


def test_wuye_rates_need_the_merchant(acquirer, terminal, tmp_path, db):
    terminal.purchase(100, PAN)
    with pytest.raises(ExportError, match="898310048990001"):
        export(acquirer.host.store, date(2026, 11, 21), tmp_path, fee=_wuye_fee())


def _wuye_fee():
    from wuye.sims.acquirer.export import wuye_fee

    return wuye_fee


def test_wuye_rates_are_the_contracted_ones(acquirer, terminal, tmp_path, db):
    from wuye.estates.models import Company
    from wuye.merchants.models import CardType, Channel
    from wuye.merchants.services import fee_rate_set, merchant_create

    company = Company.objects.create(name="申和物业", bank_name="工商银行",
                                     bank_account_no="6222000000000000001")
    merchant = merchant_create(
        company=company, channel=Channel.ACQUIRER, name="申和物业",
        merchant_no="898310048990001", bank_name="工商银行", bank_account_name="申和物业",
        bank_account_no="6222000000000000001",
    )
    fee_rate_set(merchant=merchant, card_type=CardType.DEBIT, rate_ppm=5000, cap_fen=2000,
                 effective_from=date(2026, 1, 1))
    fee_rate_set(merchant=merchant, card_type=CardType.CREDIT, rate_ppm=6000,
                 effective_from=date(2026, 1, 1))
    terminal.purchase(1_000_000, PAN)
    terminal.purchase(10_000, CREDIT)
    paths = export(acquirer.host.store, date(2026, 11, 21), tmp_path, fee=_wuye_fee())
    assert paths[0].read_text(encoding="utf-8").splitlines()[-1] == (
        "TRAILER,2,10100.00,20.60,10079.40"
    )


def test_export_command(terminal, acquirer, tmp_path, capsys):
    terminal.purchase(128000, PAN)
    terminal.settle(Totals(128000, 1, 0, 0))
    terminal.upload(build_batch_end_48(0), "202")
    data_dir = tmp_path / "acq"

    code = cli.main(["export", "--date", "20261121", "--out", str(tmp_path / "o"),
                     "--data-dir", str(data_dir), "--rates", "5000,2000,6000"])

    assert code == 0
    out = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[1] for p in out] == ["acquirer_898310048990001_20261121.csv",
                                                  "bank_898310048990001_20261121.csv"]


def test_export_command_refuses_bad_input(tmp_path, capsys):
    assert cli.main(["export", "--date", "20261121", "--out", str(tmp_path),
                     "--data-dir", str(tmp_path / "none")]) == 2
    assert "no simulator data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", "--date", "2026-11-21", "--out", str(tmp_path)])
