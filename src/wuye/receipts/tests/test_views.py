import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from wuye.accounts.models import Role
from wuye.receipts.models import Receipt
from wuye.receipts.tests.helpers import issue
from wuye.testing.factories import make_community, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def community():
    return make_community(code="C001")


@pytest.fixture
def receipt(community):
    return issue(community)


def _login(client, community, role):
    user = make_user(community.company, role, communities=[community])
    client.force_login(user)
    return user


def _text(response) -> str:
    data = b"".join(response) if response.streaming else response.content
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_the_first_print_is_the_original_and_later_prints_are_numbered_reprints(
    client, community, receipt
):
    _login(client, community, Role.CASHIER)
    url = reverse("receipts:pdf", args=[receipt.pk])

    first = client.get(url)
    second = client.get(url, {"format": "a5"})
    third = client.get(url)

    assert first.status_code == 200
    assert first["Content-Type"] == "application/pdf"
    assert "补打" not in _text(first)
    assert "补打 / REPRINT #1" in _text(second)
    assert "补打 / REPRINT #2" in _text(third)
    receipt.refresh_from_db()
    assert receipt.printed_at is not None
    assert receipt.reprint_count == 2


def test_the_escpos_download_carries_the_receipt_and_counts_as_a_print(client, community, receipt):
    _login(client, community, Role.CASHIER)

    response = client.get(reverse("receipts:escpos", args=[receipt.pk]), {"paper": "58"})

    assert response.status_code == 200
    assert receipt.number.encode() in response.content
    assert "阳光花园".encode("gb18030") in response.content
    assert "attachment" in response["Content-Disposition"]
    receipt.refresh_from_db()
    assert receipt.printed_at is not None


def test_an_unknown_format_is_not_found_and_not_counted(client, community, receipt):
    _login(client, community, Role.CASHIER)

    response = client.get(reverse("receipts:pdf", args=[receipt.pk]), {"format": "x"})

    assert response.status_code == 404
    receipt.refresh_from_db()
    assert receipt.printed_at is None


def test_a_receipt_of_another_company_or_community_is_not_found(client, community, receipt):
    other = make_community(company=community.company)
    _login(client, other, Role.CASHIER)

    assert client.get(reverse("receipts:pdf", args=[receipt.pk])).status_code == 404
    assert client.get(reverse("receipts:detail", args=[receipt.pk])).status_code == 404
    client.force_login(make_user(make_community().company, Role.ADMIN))
    assert client.get(reverse("receipts:detail", args=[receipt.pk])).status_code == 404


def test_an_auditor_reads_receipts_but_does_not_print_them(client, community, receipt):
    _login(client, community, Role.AUDITOR)

    assert client.get(reverse("receipts:detail", args=[receipt.pk])).status_code == 200
    assert client.get(reverse("receipts:list")).status_code == 200
    assert client.get(reverse("receipts:pdf", args=[receipt.pk])).status_code == 403


def test_the_list_finds_a_receipt_by_number_or_household(client, community, receipt):
    _login(client, community, Role.FINANCE)

    by_number = client.get(reverse("receipts:list"), {"q": "000001"})
    by_unit = client.get(reverse("receipts:list"), {"q": "9-9-999"})

    assert receipt.number in by_number.content.decode()
    assert receipt.number not in by_unit.content.decode()


def test_the_verification_page_is_public_and_shows_no_personal_data(client, receipt):
    response = client.get(reverse("receipts:verify", args=[receipt.verify_token]))

    page = response.content.decode()
    assert response.status_code == 200
    assert receipt.number in page
    assert "¥800.00" in page
    assert "上海示范物业服务有限公司" in page
    assert "3-2-1***" in page
    assert "3-2-1502" not in page
    assert "张伟" not in page  # the payer's name
    assert "有效收据" in page


def test_an_unknown_token_is_not_found(client):
    response = client.get(reverse("receipts:verify", args=["no-such-token-000000000"]))

    assert response.status_code == 404
    assert "未找到此收据" in response.content.decode()


def test_a_cashier_asks_finance_approves_and_the_verification_page_says_void(
    client, community, receipt
):
    cashier = _login(client, community, Role.CASHIER)
    response = client.post(
        reverse("receipts:void_request", args=[receipt.pk]), {"reason": "收款金额错误"}
    )
    assert response.status_code == 302
    # The cashier cannot approve, even their own request.
    assert client.post(reverse("receipts:void_approve", args=[receipt.pk])).status_code == 403

    _login(client, community, Role.FINANCE)
    pending = client.get(reverse("receipts:voids"))
    assert receipt.number in pending.content.decode()
    client.post(reverse("receipts:void_approve", args=[receipt.pk]), {"next": "voids"})

    receipt.refresh_from_db()
    assert receipt.state == Receipt.State.VOID
    assert receipt.void_requested_by == cashier
    page = client.get(reverse("receipts:verify", args=[receipt.verify_token])).content.decode()
    assert "已作废" in page
    pdf = client.get(reverse("receipts:pdf", args=[receipt.pk]))
    assert "作废 / VOID" in _text(pdf)


def test_finance_cannot_approve_their_own_void_request_through_the_screen(
    client, community, receipt
):
    _login(client, community, Role.FINANCE)
    client.post(reverse("receipts:void_request", args=[receipt.pk]), {"reason": "重复"})

    response = client.post(reverse("receipts:void_approve", args=[receipt.pk]), follow=True)

    receipt.refresh_from_db()
    assert receipt.state == Receipt.State.VOID_PENDING
    assert "不能审批自己的申请" in response.content.decode()


def test_the_screens_speak_english_when_asked(client, community, receipt):
    _login(client, community, Role.FINANCE)
    client.cookies["django_language"] = "en"

    page = client.get(reverse("receipts:detail", args=[receipt.pk])).content.decode()

    assert "Request void" in page


def _fake_printer():
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.append(chunk)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], received, thread


def test_a_configured_network_printer_gets_the_escpos_bytes(client, community, receipt, settings):
    port, received, thread = _fake_printer()
    settings.WUYE_RECEIPT_PRINTERS = {"counter-1": f"127.0.0.1:{port}"}
    _login(client, community, Role.CASHIER)

    detail = client.get(reverse("receipts:detail", args=[receipt.pk])).content.decode()
    client.post(
        reverse("receipts:print", args=[receipt.pk]), {"printer": "counter-1", "paper": "58"}
    )
    thread.join(timeout=5)

    assert "counter-1" in detail
    data = b"".join(received)
    assert receipt.number.encode() in data
    assert data.endswith(b"\x1dV\x00")
    receipt.refresh_from_db()
    assert receipt.printed_at is not None


def test_an_unreachable_printer_does_not_count_as_a_print(client, community, receipt, settings):
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    settings.WUYE_RECEIPT_PRINTERS = {"counter-1": f"127.0.0.1:{port}"}
    _login(client, community, Role.CASHIER)

    response = client.post(
        reverse("receipts:print", args=[receipt.pk]), {"printer": "counter-1"}, follow=True
    )

    assert "无法连接" in response.content.decode()
    receipt.refresh_from_db()
    assert receipt.printed_at is None
