"""QR payments in the demo history, through the real services and an in-process simulator.

``demo_load_qr(today=..., say=...)`` replays, over the ten working days before ``today``,
residents paying their bill notices by WeChat Pay (balance, debit card, credit card), one
payment whose notification was lost and that the background query recovered, and — when the
Alipay channel is installed — one payment by Huabei (花呗, ``PCREDIT``). Each goes: order →
``qr_start`` (the simulator's Native order, signed both ways) → the resident pays in the
simulator → the signed, encrypted notification → ``notification_handle`` → ``payment_capture``.
The simulator's orders are kept in its state file, so ``wuye sim wechat export`` writes the
trade bills of those days.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import F
from django.test.utils import override_settings

from wuye.billing.models import Bill
from wuye.channels.qrpay import services
from wuye.channels.qrpay.models import QrTrade
from wuye.estates.models import Community
from wuye.payments.models import Order, Payment
from wuye.payments.services import PaymentError, order_create

TZ = ZoneInfo("Asia/Shanghai")
PER_DAY = 2
"""WeChat payments per community and working day."""
FUNDINGS = ("balance", "balance", "debit", "credit")


def _days(today: date, n: int) -> list[date]:
    out: list[date] = []
    day = today - timedelta(days=1)
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day -= timedelta(days=1)
    return sorted(out)


def _owing_units(community: Community, rng: random.Random) -> list[tuple[Any, list[int]]]:
    """Households of ``community`` with unpaid bills, shuffled, each with those bills."""
    from wuye.estates.models import Unit

    rows = (
        Bill.objects.filter(community=community, amount_fen__gt=F("paid_fen") + F("waived_fen"))
        .exclude(kind=Bill.Kind.LATE_FEE)
        .values_list("unit_id", "pk")
        .order_by("unit_id", "pk")
    )
    bills: dict[int, list[int]] = {}
    for unit_id, pk in rows:
        bills.setdefault(unit_id, []).append(pk)
    units = sorted(bills)
    rng.shuffle(units)
    units = units[:200]
    chosen = Unit.objects.in_bulk(units)
    return [(chosen[u], bills[u]) for u in units if u in chosen]


def _pay_wechat(
    sim: Any, unit: Any, bill_ids: list[int], when: datetime, funding: str, *, lose: bool
) -> Payment | None:
    try:
        order = order_create(
            unit=unit,
            bill_ids=bill_ids,
            channel="wechat",
            idempotency_key=f"demo-qr-{unit.pk}-{when:%Y%m%d%H%M}",
            cashier=None,
            now=when,
        )
    except PaymentError:
        return None
    sim.clock = lambda: when + timedelta(seconds=40)
    try:
        code = services.qr_start(order, now=when)
    except (PaymentError, services.QrError, services.ChannelUnavailable):
        return None  # loaded before (the same key is the same, paid order)
    if lose:
        sim.faults.lose_notifications = 1
    sim.wallet_pay(code.code_url, funding)
    arrived = when + timedelta(seconds=42)
    for item in sim.outbox_take():
        services.notification_handle("wechat", item.headers, item.body, now=arrived)
    if lose:  # the background job finds it once the notify window has passed
        services.qr_poll_due(now=when + timedelta(seconds=120))
    return Payment.objects.filter(order=order).first()


def demo_load_qr(*, today: date, say: Callable[[str], None]) -> None:
    """Add QR payments to the demo history (see the module doc); print a one-line summary."""
    from wuye.channels.wechat.keys import keys_get
    from wuye.sims.wechat import sim_from_settings, state_path

    keys_get()  # demo keys into the data dir, shared with `wuye sim wechat`
    path = state_path()
    if path.exists():
        path.unlink()  # a fresh demo starts the simulator's books afresh
    sim = sim_from_settings(deliver="manual", persist=True)
    port = sim.start()
    rng = random.Random(5)
    counts: dict[str, int] = {}
    recovered = 0
    try:
        with override_settings(WUYE_WECHAT_BASE_URL=f"http://127.0.0.1:{port}"):
            days = _days(today, 10)
            communities = list(Community.objects.order_by("pk"))
            lost_day = days[len(days) // 2]
            lost_pending = True
            queues = {c.pk: _owing_units(c, rng) for c in communities}
            for day in days:
                for community in communities:
                    queue = queues[community.pk]
                    today_units, queues[community.pk] = queue[:PER_DAY], queue[PER_DAY:]
                    for unit, bill_ids in today_units:
                        when = datetime.combine(day, time(9, 0), tzinfo=TZ) + timedelta(
                            minutes=rng.randrange(0, 600)
                        )
                        funding = rng.choice(FUNDINGS)
                        lose = lost_pending and day >= lost_day
                        payment = _pay_wechat(sim, unit, bill_ids, when, funding, lose=lose)
                        if payment is None:
                            continue
                        lost_pending = lost_pending and not lose
                        counts[funding] = counts.get(funding, 0) + 1
                        if (
                            lose
                            and QrTrade.objects.filter(
                                payment=payment, recovered_by_query=True
                            ).exists()
                        ):
                            recovered += 1
    finally:
        sim.stop()
    huabei = _huabei(today=today, rng=rng)
    total = sum(counts.values())
    say(
        f"扫码支付: 微信支付 {total} 笔 (零钱 {counts.get('balance', 0)}, 储蓄卡 "
        f"{counts.get('debit', 0)}, 信用卡 {counts.get('credit', 0)}), 丢失通知经查询补单 "
        f"{recovered} 笔, 支付宝花呗 {huabei} 笔"
    )


def _huabei(*, today: date, rng: random.Random) -> int:
    """One Huabei payment through the Alipay channel and its simulator, if installed."""
    try:
        from wuye.channels.registry import channel_get
        from wuye.sims.alipay.testing import running_sim
    except ImportError:
        return 0
    try:
        channel_get("alipay")
    except LookupError:
        return 0
    day = _days(today, 3)[0]
    when = datetime.combine(day, time(19, 30), tzinfo=TZ)
    community = Community.objects.order_by("pk").first()
    if community is None:
        return 0
    owing = _owing_units(community, rng)
    if not owing:
        return 0
    unit, bill_ids = owing[-1]  # one the WeChat days did not take

    def transport(url: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        status, answer, _ctype = services.notification_handle(
            "alipay", headers, body, now=when + timedelta(seconds=30)
        )
        return status, answer

    from django.conf import settings as dj_settings

    saved = {k: getattr(dj_settings, k, None) for k in dir(dj_settings) if k.startswith("ALIPAY_")}
    try:
        with running_sim(dj_settings, transport=transport, now=lambda: when) as running:
            order = order_create(
                unit=unit,
                bill_ids=bill_ids,
                channel="alipay",
                idempotency_key=f"demo-huabei-{unit.pk}-{day:%Y%m%d}",
                cashier=None,
                now=when,
            )
            code = services.qr_start(order, now=when)
            running.sim.qr_pay(code.code_url, funding="huabei")
            running.deliver()
            return 1 if Order.objects.get(pk=order.pk).state == Order.State.PAID else 0
    except (PaymentError, ValueError, LookupError, OSError):
        return 0
    finally:
        for k, v in saved.items():
            setattr(dj_settings, k, v)
