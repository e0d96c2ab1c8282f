"""``wuye reconcile import|run|watch``: the commands finance and cron call."""

from __future__ import annotations

import json
from datetime import date, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from wuye.reconciliation.cli import subcommands
from wuye.reconciliation.models import ChannelRecord, ReconRun, SourceFile
from wuye.reconciliation.samples import BankRow, CardRow, acquirer_csv, bank_csv

from .conftest import ACCOUNT, CARD_MID

SETTLE = date(2026, 11, 21)


def acq() -> bytes:
    return acquirer_csv([CardRow("000000000001", 10000, 50, datetime(2026, 11, 20, 9, 0), SETTLE)])


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reconcile", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_subcommands_are_discovered_from_the_cli_package():
    assert {"import", "run", "watch", "report"} <= set(subcommands())


def test_import_then_run_from_the_command_line(company, tmp_path):
    good = tmp_path / "acq.csv"
    good.write_bytes(acq())
    out, _ = run("import", str(good), "--company", str(company.pk))
    assert "imported as" in out and ChannelRecord.objects.count() == 1
    out, _ = run("import", str(good), "--company", str(company.pk))
    assert "already imported" in out and SourceFile.objects.count() == 1

    bad = tmp_path / "bad.csv"
    bad.write_bytes(acq().replace(b"100.00,0.50,99.50", b"100.00,0.50,99.60"))
    with pytest.raises(CommandError, match="1 file"):
        run("import", str(bad), "--company", str(company.pk))

    out, _ = run(
        "run", "--date", "20261121", "--channel", "card", "--json", "--company", str(company.pk)
    )
    (card,) = json.loads(out)
    assert card["channel"] == "card" and card["categories"]["channel_only"]["count"] == 1
    assert ReconRun.objects.count() == 1
    with pytest.raises(CommandError, match="--date"):
        run("run", "--date", "2026-13-01", "--company", str(company.pk))


def test_watch_files_done_and_rejected_with_the_error(company, tmp_path):
    (tmp_path / "acq.csv").write_bytes(acq())
    (tmp_path / "bank.csv").write_bytes(
        bank_csv([BankRow("B1", "C", 9950, SETTLE, f"POS清算 20261121 {CARD_MID}")])
    )
    (tmp_path / "broken.csv").write_bytes(acq().replace(b"TRAILER,1", b"TRAILER,2"))
    (tmp_path / "copying.part").write_bytes(b"half")
    out, err = run(
        "watch",
        "--inbox",
        str(tmp_path),
        "--once",
        "--account",
        ACCOUNT,
        "--company",
        str(company.pk),
    )
    assert "acq.csv: imported" in out and "bank.csv: imported" in out
    assert "broken.csv: rejected" in err
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["acq.csv", "bank.csv"]
    assert sorted(p.name for p in (tmp_path / "rejected").iterdir()) == [
        "broken.csv",
        "broken.csv.error.txt",
    ]
    error = (tmp_path / "rejected" / "broken.csv.error.txt").read_text("utf-8")
    assert error.startswith("broken.csv，第 3 行，字段 count")
    assert (tmp_path / "copying.part").exists()
    # The same file dropped again is filed as done without adding anything.
    (tmp_path / "again.csv").write_bytes(acq())
    out, _ = run("watch", "--inbox", str(tmp_path), "--once", "--company", str(company.pk))
    assert "again.csv: duplicate" in out and ChannelRecord.objects.count() == 1
