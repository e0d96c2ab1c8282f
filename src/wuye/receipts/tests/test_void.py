from datetime import UTC, datetime

import pytest

from wuye.accounts.models import Role
from wuye.core.models import AuditEvent
from wuye.receipts.models import Receipt
from wuye.receipts.services import (
    ReceiptNotIssued,
    ReceiptVoidNotAllowed,
    ReceiptVoidNotPending,
    ReceiptVoidReasonMissing,
    ReceiptVoidSelfApproval,
    receipt_void_approve,
    receipt_void_reject,
    receipt_void_request,
)
from wuye.receipts.tests.helpers import issue
from wuye.testing.factories import make_community, make_user

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def community():
    return make_community(code="C001")


@pytest.fixture
def cashier(community):
    return make_user(community.company, Role.CASHIER)


@pytest.fixture
def finance(community):
    return make_user(community.company, Role.FINANCE)


def test_a_void_needs_a_request_and_someone_elses_approval_and_keeps_the_number(
    community, cashier, finance
):
    receipt = issue(community)
    issue(community)  # a later receipt: numbers are never reused

    pending = receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="金额录错", now=NOW)
    assert pending.state == Receipt.State.VOID_PENDING
    void = receipt_void_approve(receipt_id=receipt.pk, user=finance, now=NOW)

    void.refresh_from_db()
    assert void.state == Receipt.State.VOID
    assert void.number == "C001-2026-000001"
    assert (void.void_requested_by, void.void_approved_by) == (cashier, finance)
    assert void.void_reason == "金额录错"
    assert void.void_approved_at == NOW
    assert issue(community).seq == 3
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["receipt.void_request", "receipt.void_approve"]


def test_the_requester_cannot_approve_their_own_void(community, finance):
    receipt = issue(community)
    receipt_void_request(receipt_id=receipt.pk, user=finance, reason="重复打印", now=NOW)

    with pytest.raises(ReceiptVoidSelfApproval):
        receipt_void_approve(receipt_id=receipt.pk, user=finance, now=NOW)
    receipt.refresh_from_db()
    assert receipt.state == Receipt.State.VOID_PENDING


def test_a_cashier_or_manager_cannot_approve_a_void(community, cashier):
    manager = make_user(community.company, Role.MANAGER)
    receipt = issue(community)
    receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="错开", now=NOW)

    with pytest.raises(ReceiptVoidNotAllowed):
        receipt_void_approve(receipt_id=receipt.pk, user=manager, now=NOW)


def test_finance_of_another_company_cannot_touch_the_receipt(community, cashier):
    outsider = make_user(make_community().company, Role.FINANCE)
    receipt = issue(community)

    with pytest.raises(ReceiptVoidNotAllowed):
        receipt_void_request(receipt_id=receipt.pk, user=outsider, reason="x", now=NOW)
    receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="x", now=NOW)
    with pytest.raises(ReceiptVoidNotAllowed):
        receipt_void_approve(receipt_id=receipt.pk, user=outsider, now=NOW)


def test_an_auditor_cannot_request_a_void(community):
    auditor = make_user(community.company, Role.AUDITOR)
    receipt = issue(community)

    with pytest.raises(ReceiptVoidNotAllowed):
        receipt_void_request(receipt_id=receipt.pk, user=auditor, reason="x", now=NOW)


def test_a_void_request_needs_a_reason(community, cashier):
    receipt = issue(community)

    with pytest.raises(ReceiptVoidReasonMissing):
        receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="  ", now=NOW)


def test_a_rejected_request_leaves_the_receipt_valid_and_on_the_audit_trail(
    community, cashier, finance
):
    receipt = issue(community)
    receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="误操作", now=NOW)

    valid = receipt_void_reject(receipt_id=receipt.pk, user=finance, now=NOW, reason="无需作废")

    assert valid.state == Receipt.State.ISSUED
    assert valid.void_requested_by is None
    event = AuditEvent.objects.get(action="receipt.void_reject")
    assert event.detail["request_reason"] == "误操作"
    assert event.detail["reason"] == "无需作废"


def test_approving_without_a_request_or_voiding_twice_is_refused(community, cashier, finance):
    receipt = issue(community)
    with pytest.raises(ReceiptVoidNotPending):
        receipt_void_approve(receipt_id=receipt.pk, user=finance, now=NOW)

    receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="x", now=NOW)
    with pytest.raises(ReceiptNotIssued):
        receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="again", now=NOW)
    receipt_void_approve(receipt_id=receipt.pk, user=finance, now=NOW)
    with pytest.raises(ReceiptNotIssued):
        receipt_void_request(receipt_id=receipt.pk, user=cashier, reason="again", now=NOW)
