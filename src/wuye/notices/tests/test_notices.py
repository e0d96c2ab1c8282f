"""Bill notices: contents, PDF with a QR that decodes to the pay URL, the pay page paid
through the Alipay simulator, the batch job and the staff screen."""

from __future__ import annotations

import io
import shutil
import subprocess
import urllib.parse
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from wuye.accounts.models import Role
from wuye.core.models import Job
from wuye.estates.models import Resident
from wuye.notices import services
from wuye.notices.models import Notice, NoticeOrder
from wuye.notices.pdf import notices_pdf
from wuye.notices.selectors import notice_page
from wuye.payments.models import Order, Payment
from wuye.payments.tests.helpers import household, staff
from wuye.sims.alipay.testing import RunningSim
from wuye.testing.factories import make_unit

pytestmark = pytest.mark.django_db


def _household_with_debt():  # type: ignore[no-untyped-def]
    h = household(late_fee_enabled=True, late_fee_daily_ppm=500, late_fee_grace_days=0)
    Resident.objects.create(unit=h.unit, name="王小明")
    h.bill(30_000, month=1, due_date=date(2026, 1, 15))
    h.bill(30_000, month=2, due_date=date(2026, 2, 15))
    return h


def test_a_notice_lists_open_bills_with_late_fees_and_the_total() -> None:
    h = _household_with_debt()

    notice = services.notice_create(unit=h.unit, as_of=date(2026, 3, 1), now=timezone.now())

    page = notice_page(notice, pay_url="http://x/")
    assert [ln.period for ln in page.lines] == ["2026-01", "2026-02"]
    assert notice.outstanding_fen == 60_000
    # 万分之五 a day: 45 days on the first bill, 14 on the second.
    assert notice.late_fee_fen == 30_000 * 5 * 45 // 10_000 + 30_000 * 5 * 14 // 10_000
    assert notice.total_fen == notice.outstanding_fen + notice.late_fee_fen


def test_a_household_that_owes_nothing_gets_no_notice() -> None:
    unit = make_unit()
    with pytest.raises(services.NoticeNothingDue):
        services.notice_create(unit=unit, as_of=date(2026, 3, 1), now=timezone.now())
    assert not Notice.objects.exists()


def test_a_forged_token_opens_nothing(client) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=date(2026, 3, 1), now=timezone.now())
    token = services.notice_token(notice)
    forged = str(notice.pk + 1) + token[token.index(":") :]
    assert client.get(reverse("notices:pay", args=[forged])).status_code == 404
    assert client.get(reverse("notices:pay", args=[token])).status_code == 200


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) missing")
def test_the_pdf_shows_household_bills_total_and_a_qr_that_decodes_to_the_pay_url(
    tmp_path: Path,
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=date(2026, 3, 1), now=timezone.now())
    url = services.notice_pay_url(notice)

    pdf = notices_pdf([notice_page(notice, pay_url=url)], size="A4")

    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "缴费通知单" in text and h.unit.label in text and "王小明" in text
    assert "2026-01" in text and "2026-02" in text
    assert f"{notice.total_fen // 100:,}.{notice.total_fen % 100:02d}" in text
    (tmp_path / "n.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", str(tmp_path / "n.pdf"), str(tmp_path / "p")], check=True
    )
    (png,) = tmp_path.glob("p*.png")
    (found,) = zxingcpp.read_barcodes(Image.open(png))
    assert found.text == url
    assert urllib.parse.urlsplit(url).path == reverse("notices:pay", args=[notice_token(notice)])


def notice_token(notice: Notice) -> str:
    return services.notice_token(notice)


def test_a_resident_pays_a_notice_with_huabei_from_its_pay_page(client, alipay: RunningSim) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=timezone.localdate(), now=timezone.now())
    token = services.notice_token(notice)

    page = client.get(reverse("notices:pay", args=[token]))
    assert page.status_code == 200 and "支付宝" in page.content.decode()
    started = client.post(reverse("notices:pay_start", args=[token]), {"channel": "alipay"})
    assert started.status_code == 200
    body = started.content.decode()
    assert "<svg" in body
    link = NoticeOrder.objects.get(notice=notice)
    code_url = next(t.qr_token for t in alipay.sim.trades.values())
    assert code_url in body

    again = client.post(reverse("notices:pay_start", args=[token]), {"channel": "alipay"})
    assert again.status_code == 200
    assert NoticeOrder.objects.filter(notice=notice).count() == 1  # one order per notice

    assert client.get(reverse("notices:pay_status", args=[token])).json() == {"paid": False}
    alipay.sim.qr_pay(code_url, funding="huabei")
    alipay.deliver()

    status = client.get(reverse("notices:pay_status", args=[token])).json()
    assert status["paid"] is True and status["funding_source"] == "花呗/PCREDIT"
    assert status["amount_fen"] == link.order.amount_fen
    link.order.refresh_from_db()
    assert link.order.state == Order.State.PAID
    assert Payment.objects.get(order=link.order).funding_source == "花呗/PCREDIT"
    assert "已支付" in client.get(reverse("notices:pay", args=[token])).content.decode()
    # Paid: choosing a channel again starts nothing new.
    client.post(reverse("notices:pay_start", args=[token]), {"channel": "alipay"})
    assert NoticeOrder.objects.filter(notice=notice).count() == 1


def test_an_unknown_channel_is_refused_and_changes_nothing(client, alipay: RunningSim) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=timezone.localdate(), now=timezone.now())
    resp = client.post(
        reverse("notices:pay_start", args=[services.notice_token(notice)]), {"channel": "cash"}
    )
    assert resp.status_code == 409
    assert not Order.objects.exists()


def test_the_batch_job_makes_a_page_per_household_that_owes(
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    make_unit(h.unit.building)  # owes nothing: no page
    second = make_unit(h.unit.building)
    from wuye.billing.tests.helpers import issue_bill

    issue_bill(unit=second, fee_item=h.item, amount_fen=12_000, period_start=date(2026, 1, 1))
    admin = staff(h.community, Role.ADMIN)

    with django_capture_on_commit_callbacks(execute=True):
        job = services.notices_batch_launch(
            community=h.community, building=None, as_of=date(2026, 3, 1), size="A5", user=admin
        )

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert job.result["notices"] == 2 and job.result["households"] == 3
    assert job.progress_done == job.progress_total == 3
    reader = PdfReader(job.result_file.open("rb"))
    assert len(reader.pages) == 2
    assert Notice.objects.filter(job_id=job.pk).count() == 2


def test_a_cashier_may_not_make_notices(client) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    client.force_login(h.cashier)
    assert client.get(reverse("notices:index")).status_code == 403
    with pytest.raises(Exception, match="lacks"):
        services.notices_batch_launch(
            community=h.community, as_of=date(2026, 3, 1), size="A4", user=h.cashier
        )


def test_finance_makes_one_households_notice_from_the_screen(client) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    client.force_login(h.finance)
    assert client.get(reverse("notices:index")).status_code == 200

    resp = client.post(
        reverse("notices:household_pdf"),
        {
            "community": h.community.pk,
            "label": h.unit.label,
            "as_of": "2026-03-01",
            "size": "A4",
        },
    )

    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert h.unit.label in PdfReader(io.BytesIO(resp.content)).pages[0].extract_text()
    bad = client.post(
        reverse("notices:household_pdf"),
        {
            "community": h.community.pk,
            "label": "nope",
            "as_of": "2026-03-01",
            "size": "A4",
        },
    )
    assert bad.status_code == 400


def test_the_batch_pdf_downloads_only_for_those_who_may_see_it(client) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    job = Job.objects.create(
        kind="notices",
        title="t",
        company=h.community.company,
        params={"community_id": h.community.pk},
    )
    from django.core.files.base import ContentFile

    job.result_file.save("n.pdf", ContentFile(b"%PDF-1.4"), save=True)
    client.force_login(h.finance)
    assert client.get(reverse("notices:job_pdf", args=[job.pk])).status_code == 200
    other = household()
    client.force_login(other.finance)
    assert client.get(reverse("notices:job_pdf", args=[job.pk])).status_code == 404
    _ = timedelta


def test_the_pay_page_speaks_english_when_the_resident_picks_it(client, alipay: RunningSim) -> None:  # type: ignore[no-untyped-def]
    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=timezone.localdate(), now=timezone.now())
    token = services.notice_token(notice)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    page = client.get(reverse("notices:pay", args=[token])).content.decode()
    assert "Bill notice" in page and "Choose how to pay" in page
    assert ">Alipay<" in page
    shown = client.post(reverse("notices:pay_start", args=[token]), {"channel": "alipay"})
    assert "Open Alipay to pay" in shown.content.decode()


def test_bills_already_in_a_counter_order_are_refused_clearly(client, alipay: RunningSim) -> None:  # type: ignore[no-untyped-def]
    from wuye.payments.services import order_create

    h = _household_with_debt()
    notice = services.notice_create(unit=h.unit, as_of=timezone.localdate(), now=timezone.now())
    counter = order_create(
        unit=h.unit,
        bill_ids=notice.bill_ids,
        channel="cash",
        idempotency_key="counter-1",
        cashier=h.cashier,
        now=timezone.now(),
    )

    resp = client.post(
        reverse("notices:pay_start", args=[services.notice_token(notice)]), {"channel": "alipay"}
    )

    assert resp.status_code == 409
    assert f"#{counter.pk}" in resp.content.decode()  # names the order that holds the bills
    assert not NoticeOrder.objects.exists() and not alipay.sim.trades
