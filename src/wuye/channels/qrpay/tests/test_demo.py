"""The demo's QR history: real services, an in-process simulator, one recovered notification."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from wuye.billing.tests.helpers import issue_bill
from wuye.channels.qrpay.demo import demo_load_qr
from wuye.channels.qrpay.models import QrTrade
from wuye.payments.models import Payment
from wuye.payments.tests.helpers import household
from wuye.testing.factories import make_unit

pytestmark = pytest.mark.django_db


def test_the_demo_adds_qr_payments_with_one_recovered_lost_notification(
    settings: Any, wechat_key_dir: Path
) -> None:
    settings.WUYE_WECHAT_KEY_DIR = str(wechat_key_dir)
    h = household()
    for n in range(30):
        unit = make_unit(h.unit.building, room_no=f"{n + 1:03d}", label=f"1-{n + 1:03d}")
        issue_bill(
            unit=unit,
            fee_item=h.item,
            amount_fen=10000,
            period_start=date(2026, 1, 1),
            due_date=date(2026, 1, 1),
            issued_on=date(2026, 1, 1),
        )
    lines: list[str] = []

    demo_load_qr(today=timezone.localdate(), say=lines.append)

    wechat = Payment.objects.filter(channel="wechat")
    assert wechat.count() == 20  # two a working day for ten days
    assert QrTrade.objects.filter(recovered_by_query=True).count() == 1
    assert all(p.funding_source for p in wechat)
    huabei = Payment.objects.filter(channel="alipay")
    assert [p.funding_source for p in huabei] in ([], ["花呗/PCREDIT"])
    assert len(lines) == 1 and "微信支付" in lines[0]
    assert (wechat_key_dir / "sim" / "state.json").exists()
