import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import close_old_connections, connection, transaction

from wuye.accounts.models import Role
from wuye.receipts.models import Receipt, ReceiptSequence
from wuye.receipts.services import ReceiptAlreadyIssued, ReceiptCommunityMismatch
from wuye.receipts.tests.helpers import issue, sample_content
from wuye.testing.factories import make_community, make_user

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


def test_receipts_are_numbered_one_by_one_per_community_with_code_and_year():
    community = make_community(code="C001")
    other = make_community(company=community.company, code="C002")

    numbers = [issue(community).number for _ in range(3)]
    other_number = issue(other).number

    assert numbers == ["C001-2026-000001", "C001-2026-000002", "C001-2026-000003"]
    assert other_number == "C002-2026-000001"


def test_the_year_is_the_local_year_and_a_new_year_starts_again_at_one():
    community = make_community(code="C001")
    # 2026-12-31 16:30 UTC is already 2027-01-01 00:30 in Shanghai.
    last_of_2026 = issue(community, issued_at=datetime(2026, 12, 31, 15, 59, tzinfo=UTC))
    first_of_2027 = issue(community, issued_at=datetime(2026, 12, 31, 16, 30, tzinfo=UTC))

    assert last_of_2026.number == "C001-2026-000001"
    assert first_of_2027.number == "C001-2027-000001"


def test_a_rolled_back_payment_gives_its_number_back():
    community = make_community(code="C001")
    issue(community)

    with pytest.raises(Boom), transaction.atomic():
        issue(community)
        raise Boom  # the payment fails after the receipt was issued

    after = issue(community)

    assert after.seq == 2
    assert list(Receipt.objects.order_by("seq").values_list("seq", flat=True)) == [1, 2]


def test_a_rolled_back_first_receipt_of_the_year_leaves_no_gap_either():
    community = make_community(code="C001")

    with pytest.raises(Boom), transaction.atomic():
        issue(community)
        raise Boom

    assert issue(community).seq == 1


def test_the_receipt_keeps_the_content_it_was_issued_with():
    community = make_community()
    content = sample_content()

    receipt = issue(community, content=content)
    receipt.refresh_from_db()

    assert receipt.content == content.to_dict()
    assert receipt.amount_fen == 80_000
    assert receipt.household_label == "3-2-1502"
    assert receipt.state == Receipt.State.ISSUED
    assert len(receipt.verify_token) >= 24


def test_one_reference_gets_one_receipt_per_kind_and_the_refused_one_takes_no_number():
    community = make_community()
    issue(community, reference="PAY-1")

    with pytest.raises(ReceiptAlreadyIssued), transaction.atomic():
        issue(community, reference="PAY-1")
    refund = issue(community, reference="PAY-1", kind="refund")

    assert refund.seq == 2
    assert refund.kind == Receipt.Kind.REFUND


def test_a_community_of_another_company_is_refused():
    community = make_community()
    stranger = make_community()

    with pytest.raises(ReceiptCommunityMismatch), transaction.atomic():
        issue_for(stranger.pk, company_id=community.company_id)
    assert not ReceiptSequence.objects.exists()


def issue_for(community_id: int, *, company_id: int) -> Receipt:
    from wuye.receipts.services import receipt_issue

    return receipt_issue(
        company_id=company_id,
        community_id=community_id,
        reference="X",
        content=sample_content(),
        issued_at=datetime(2026, 5, 1, tzinfo=UTC),
    )


def test_issuing_takes_few_queries(django_assert_max_num_queries):
    community = make_community()
    issue(community)

    with django_assert_max_num_queries(6):  # savepoints included; 2 statements of work
        issue(community)


def _run_concurrently(workers: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run ``work(w)`` in ``workers`` threads released together; return what they raised."""
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(w: int) -> None:
        try:
            barrier.wait()
            work(w)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_get_numbers_one_to_n_with_no_gap_or_repeat():
    community = make_community(code="C009")
    workers, per_worker = 8, 15

    def work(w: int) -> None:
        for i in range(per_worker):
            try:
                with transaction.atomic():
                    issue(community, reference=f"W{w}-{i}")
                    if i % 5 == 4:  # some payments fail after taking a number
                        raise Boom
            except Boom:
                pass

    errors = _run_concurrently(workers, work)

    assert errors == []
    seqs = sorted(Receipt.objects.filter(community=community).values_list("seq", flat=True))
    committed = workers * (per_worker - per_worker // 5)
    assert seqs == list(range(1, committed + 1))
    assert ReceiptSequence.objects.get(community=community).last_seq == committed


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_receipts_of_a_year_create_one_sequence():
    community = make_community(code="C010")
    workers = 6

    def work(w: int) -> None:
        with transaction.atomic():
            issue(community, reference=f"F{w}")

    errors = _run_concurrently(workers, work)

    assert errors == []
    assert sorted(Receipt.objects.values_list("seq", flat=True)) == list(range(1, workers + 1))
    assert ReceiptSequence.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="triggers are PostgreSQL's")
def test_the_database_refuses_to_change_or_delete_an_issued_receipt():
    from django.db import IntegrityError

    receipt = issue(make_community())

    for change in (
        {"amount_fen": 1},
        {"number": "C999-2026-000001"},
        {"content": {"forged": True}},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Receipt.objects.filter(pk=receipt.pk).update(**change)
    with pytest.raises(IntegrityError), transaction.atomic():
        Receipt.objects.filter(pk=receipt.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReceiptSequence.objects.update(last_seq=0)
    Receipt.objects.filter(pk=receipt.pk).update(reprint_count=1)  # print marks may change
    with pytest.raises(IntegrityError), transaction.atomic():  # void without an approver
        Receipt.objects.filter(pk=receipt.pk).update(state="void")
    approver = make_user(receipt.company, Role.FINANCE)
    Receipt.objects.filter(pk=receipt.pk).update(
        state="void", void_approved_by=approver, void_approved_at=receipt.issued_at
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Receipt.objects.filter(pk=receipt.pk).update(state="issued")
