import json
from datetime import date

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from wuye.billing.models import Bill
from wuye.billing.selectors import negative_prepaid_balances, receivable_mismatches
from wuye.billing.tests.helpers import issue_bill
from wuye.ledger.models import AccountKind, JournalEntry
from wuye.ledger.services import credit, debit, entry_post
from wuye.testing.factories import make_fee_item, make_unit

pytestmark = pytest.mark.django_db


def _check(capsys, *args):
    call_command("ledger_check", "--json", *args)
    return json.loads(capsys.readouterr().out)


def test_a_consistent_ledger_passes(capsys):
    unit = make_unit()
    issue_bill(unit=unit, fee_item=make_fee_item(unit.community.company), amount_fen=1_000)
    assert _check(capsys)["ok"] is True


def test_a_bill_changed_behind_the_ledgers_back_is_reported(capsys):
    unit = make_unit()
    bill = issue_bill(unit=unit, fee_item=make_fee_item(unit.community.company), amount_fen=1_000)
    Bill.objects.filter(pk=bill.pk).update(paid_fen=400)  # no allocation, no entry

    with pytest.raises(CommandError):
        call_command("ledger_check", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report["receivable_mismatches"] == [
        {"unit_id": unit.pk, "receivable_fen": 1_000, "outstanding_fen": 600}
    ]
    assert receivable_mismatches(community_id=unit.community_id)[0].unit_id == unit.pk


def test_an_overspent_prepaid_balance_is_reported():
    unit = make_unit()
    entry_post(
        company_id=unit.community.company_id,
        kind=JournalEntry.Kind.PREPAY_OFFSET,
        memo="bad",
        effective_date=date(2026, 1, 1),
        lines=[
            debit(AccountKind.PREPAID, 300, community_id=unit.community_id, household_id=unit.pk),
            credit(AccountKind.BANK, 300, community_id=unit.community_id),
        ],
    )
    assert negative_prepaid_balances() == [(unit.pk, None, -300)]


def test_a_journal_line_naming_a_missing_household_is_reported(capsys):
    unit = make_unit()
    entry_post(
        company_id=unit.community.company_id,
        kind=JournalEntry.Kind.PREPAY_OFFSET,
        memo="a household that is not there (no database foreign key on the dimension)",
        effective_date=date(2026, 1, 1),
        lines=[
            debit(AccountKind.BANK, 300, community_id=unit.community_id),
            credit(
                AccountKind.PREPAID,
                300,
                community_id=unit.community_id,
                household_id=unit.pk + 99_999,
            ),
        ],
    )

    with pytest.raises(CommandError):
        call_command("ledger_check", "--json")

    report = json.loads(capsys.readouterr().out)
    assert report["dangling_dimensions"] == [
        {
            "table": "ledger_journalline",
            "column": "household_id",
            "target": "estates_unit",
            "rows": 1,
        }
    ]
