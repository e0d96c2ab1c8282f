from datetime import date

import pytest
from django.db import DatabaseError, connection, transaction

from wuye.ledger.models import AccountKind, JournalEntry, JournalLine
from wuye.ledger.selectors import account_balance
from wuye.ledger.services import UnbalancedEntry, credit, debit, entry_post, entry_reverse
from wuye.testing.factories import make_community, make_unit

pytestmark = pytest.mark.django_db


def _post(community, unit, amount=1000, key=None):
    return entry_post(
        company_id=community.company_id,
        kind=JournalEntry.Kind.BILLING,
        memo="test",
        effective_date=date(2026, 1, 1),
        idempotency_key=key,
        lines=[
            debit(AccountKind.RECEIVABLE, amount, community_id=community.pk, household_id=unit.pk),
            credit(AccountKind.REVENUE, amount, community_id=community.pk),
        ],
    )


def test_a_balanced_entry_moves_the_household_receivable():
    unit = make_unit()
    _post(unit.community, unit, 1234)
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk) == 1234
    assert account_balance(account=AccountKind.REVENUE, community_id=unit.community_id) == -1234


def test_an_unbalanced_entry_is_refused_and_writes_nothing():
    community = make_community()
    with pytest.raises(UnbalancedEntry):
        entry_post(
            company_id=community.company_id,
            kind="billing",
            memo="x",
            effective_date=date(2026, 1, 1),
            lines=[debit(AccountKind.RECEIVABLE, 100), credit(AccountKind.REVENUE, 99)],
        )
    assert JournalEntry.objects.count() == 0


def test_the_same_key_posts_once():
    unit = make_unit()
    first = _post(unit.community, unit, key="k1")
    again = _post(unit.community, unit, key="k1")
    assert first.pk == again.pk
    assert JournalLine.objects.count() == 2


def test_reversal_brings_balances_back_to_zero_as_of_its_date():
    unit = make_unit()
    entry = _post(unit.community, unit, 500)
    entry_reverse(entry=entry, memo="undo", effective_date=date(2026, 2, 1))
    assert account_balance(account=AccountKind.RECEIVABLE, household_id=unit.pk) == 0
    assert (
        account_balance(
            account=AccountKind.RECEIVABLE, household_id=unit.pk, as_of=date(2026, 1, 31)
        )
        == 500
    )


def test_entries_cannot_be_edited_or_deleted_from_python():
    unit = make_unit()
    entry = _post(unit.community, unit)
    entry.memo = "changed"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.lines.first().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="database triggers on PostgreSQL")
def test_postgres_refuses_updates_deletes_and_unbalanced_inserts():
    unit = make_unit()
    entry = _post(unit.community, unit)
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalLine.objects.filter(entry=entry).update(amount_fen=1)
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        JournalLine.objects.bulk_create(
            [JournalLine(entry=entry, account=AccountKind.BANK, amount_fen=7)]
        )
