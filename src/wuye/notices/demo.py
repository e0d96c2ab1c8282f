"""Bill notices paid by Alipay in the demo history, through the real services and simulator.

``demo_load_notices(today=..., say=...)``: on each of the five working days before ``today``,
one household per community gets its bill notice and pays it from the notice's pay page with
Alipay — balance, bank card or 花呗 (``PCREDIT``) — and on one of those days Alipay's
notification is lost and the background query (``qrpay.services.qr_poll_due``) recovers it.
The Alipay simulator runs in-process with the demo keys and keeps its trades in the data dir
(``<data>/alipay/sim-trades.jsonl``), so the ``wuye sim alipay`` the demo serves afterwards
knows them and ``wuye sim alipay export --date …`` writes their bill and bank credit.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F
from django.test.utils import override_settings

from wuye.billing.models import Bill
from wuye.estates.models import Community, Unit
from wuye.notices.services import NoticeError, notice_create, notice_pay_start
from wuye.payments.models import Payment

TZ = ZoneInfo("Asia/Shanghai")
FUNDINGS = ("balance", "bankcard", "huabei")


def _working_days(today: date, n: int) -> list[date]:
    out: list[date] = []
    day = today - timedelta(days=1)
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


def _owing(community: Community, rng: random.Random) -> Unit | None:
    ids = sorted(
        set(
            Bill.objects.filter(community=community, amount_fen__gt=F("paid_fen") + F("waived_fen"))
            .exclude(kind=Bill.Kind.LATE_FEE)
            .values_list("unit_id", flat=True)
        )
    )
    if not ids:
        return None
    return Unit.objects.select_related("community").get(pk=rng.choice(ids))


def _clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def demo_load_notices(*, today: date, say: Callable[[str], None]) -> None:
    """Add notices paid by Alipay to the demo history (module doc); say a one-line summary."""
    from wuye.sims.alipay.cli import sim_from_settings
    from wuye.sims.alipay.notifier import Notifier
    from wuye.sims.alipay.server import SimServer

    qr = importlib.import_module("wuye.channels.qrpay.services")
    journal = settings.DATA_DIR / "alipay" / "sim-trades.jsonl"
    if journal.exists():
        journal.unlink()  # a fresh demo starts the simulator's books afresh
    sim = sim_from_settings()
    arrived: list[datetime] = []

    def post(url: str, body: bytes) -> tuple[int, bytes]:
        headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
        status, answer, _ctype = qr.notification_handle("alipay", headers, body, now=arrived[-1])
        return status, answer

    server = SimServer(sim, notifier=Notifier(transport=post, clock=lambda: 0.0))
    server.start(deliver=False)
    rng = random.Random(8)
    counts = dict.fromkeys(FUNDINGS, 0)
    recovered = 0
    try:
        with override_settings(ALIPAY_GATEWAY_URL=server.url + "/gateway.do"):
            days = _working_days(today, 5)
            for i, day in enumerate(days):
                for community in Community.objects.order_by("pk"):
                    unit = _owing(community, rng)
                    if unit is None:
                        continue
                    when = datetime.combine(day, time(18, 0), tzinfo=TZ) + timedelta(
                        minutes=rng.randrange(0, 180)
                    )
                    funding = FUNDINGS[(i + community.pk) % len(FUNDINGS)]
                    lose = i == 2 and community.pk == Community.objects.order_by("pk")[0].pk
                    sim.clock = _clock(when)  # the trade is created now, paid 50 s later
                    try:
                        notice = notice_create(unit=unit, as_of=day, now=when)
                        started = notice_pay_start(notice=notice, channel="alipay", now=when)
                    except NoticeError:
                        continue
                    sim.clock = _clock(when + timedelta(seconds=50))
                    sim.faults.lose_notifications = 1 if lose else 0
                    sim.qr_pay(started.code.code_url, funding=funding)
                    arrived.append(when + timedelta(seconds=52))
                    server.pump()
                    if lose:
                        qr.qr_poll_due(now=when + timedelta(minutes=3))
                    if Payment.objects.filter(order=started.order).exists():
                        counts[funding] += 1
                        recovered += int(lose)
    finally:
        server.stop()
    say(
        f"缴费通知单: 支付宝扫码缴费 {sum(counts.values())} 笔 (余额 {counts['balance']}, "
        f"银行卡 {counts['bankcard']}, 花呗 {counts['huabei']}), 丢失通知经查询补单 {recovered} 笔"
    )
