"""The demo's notices paid by Alipay: real services, the simulator with the demo keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from wuye.billing.tests.helpers import issue_bill
from wuye.channels.qrpay.models import QrTrade
from wuye.notices.demo import demo_load_notices
from wuye.notices.models import NoticeOrder
from wuye.payments.models import Payment
from wuye.payments.tests.helpers import household
from wuye.sims.alipay.cli import sim_from_settings
from wuye.testing.factories import make_unit

pytestmark = pytest.mark.django_db


def test_the_demo_pays_notices_by_alipay_with_huabei_and_one_recovered_notification(
    settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    settings.ALIPAY_APP_PRIVATE_KEY = ""
    settings.ALIPAY_PUBLIC_KEY = ""
    h = household()
    for n in range(8):
        unit = make_unit(h.unit.building, room_no=f"{n + 1:03d}", label=f"1-{n + 1:03d}")
        issue_bill(unit=unit, fee_item=h.item, amount_fen=10_000, period_start=date(2026, 1, 1))
    lines: list[str] = []

    demo_load_notices(today=timezone.localdate(), say=lines.append)

    paid = Payment.objects.filter(channel="alipay")
    assert paid.count() == 5  # one a working day in the one community
    assert NoticeOrder.objects.count() == 5
    assert "花呗/PCREDIT" in {p.funding_source for p in paid}
    assert QrTrade.objects.filter(channel="alipay", recovered_by_query=True).count() == 1
    assert len(lines) == 1 and "补单 1 笔" in lines[0]
    # The simulator that serves the demo afterwards knows those trades.
    assert len(sim_from_settings().trades) == 5
    for trade in sim_from_settings().trades.values():
        assert trade.created_at < trade.paid_at  # the simulator's clock follows the history
