"""The daily account bill (GBK CSV in a zip, ``#`` comments around the table) and the T+1
bank credit (settlement-files.md §3 and §4).

Fees are the merchant's contracted rate from Wuye's merchants app (``merchants.selectors.
fee_for``: ``qr_credit`` for 花呗/credit card, ``qr_balance`` otherwise), looked up by the
app id (or PID) of the simulated account, so the bill charges what the contract says and a
fee-mismatch test can change the rate.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from wuye.channels.alipay.client import CHINA
from wuye.channels.alipay.constants import CREDIT_FUNDING
from wuye.core.money import format_yuan
from wuye.sims.alipay.state import AlipaySim, Trade, day_bounds
from wuye.sims.bankfile import next_working_day, settlement_credit_csv

COLUMNS = [
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "商品名称",
    "创建时间",
    "完成时间",
    "门店编号",
    "门店名称",
    "操作员",
    "终端号",
    "对方账户",
    "订单金额（元）",
    "商家实收（元）",
    "支付宝红包（元）",
    "集分宝（元）",
    "支付宝优惠（元）",
    "商家优惠（元）",
    "券核销金额（元）",
    "券名称",
    "商家红包消费金额（元）",
    "卡消费金额（元）",
    "退款批次号/请求号",
    "服务费（元）",
    "分润（元）",
    "备注",
]
RULE = "#-----------------------------------------"

FeeFn = Callable[[Trade, int, date], int]
"""Fee in fen for ``amount_fen`` of ``trade`` on a date (positive)."""


@dataclass(frozen=True)
class BillRow:
    trade: Trade
    kind: str  # 交易 / 退款
    amount_fen: int  # negative for a refund
    fee_fen: int  # charged: negative for a payment, given back: positive for a refund
    at: str
    request_no: str = ""


class NoMerchant(LookupError):
    """No Alipay merchant in Wuye with the simulator's app id or PID."""


def merchant_fee(sim: AlipaySim) -> FeeFn:
    """Return a fee function pricing by the contract of the merchant with the sim's app id."""
    from wuye.merchants.models import CardType, Channel, Merchant
    from wuye.merchants.selectors import fee_for

    merchant = (
        Merchant.objects.filter(channel=Channel.ALIPAY, app_id=sim.app_id).first()
        or Merchant.objects.filter(channel=Channel.ALIPAY, merchant_no=sim.pid).first()
    )
    if merchant is None:
        raise NoMerchant(f"Wuye 中没有 AppID {sim.app_id} / PID {sim.pid} 的支付宝商户")

    def fee(trade: Trade, amount_fen: int, on: date) -> int:
        kind = CardType.QR_CREDIT if trade.fund_channel in CREDIT_FUNDING else CardType.QR_BALANCE
        return fee_for(merchant=merchant, card_type=kind, amount_fen=amount_fen, on_date=on)

    return fee


def refund_fee_backs(fee_fen: int, amount_fen: int, refunds_fen: list[int]) -> list[int]:
    """Return the fee given back with each refund, in order: in proportion to the amount
    refunded so far (half-up to the fen), so the parts add up to at most the fee and to all of
    it once the payment is refunded in full."""
    out: list[int] = []
    given = done = 0
    for part in refunds_fen:
        done += part
        due = (fee_fen * done * 2 + amount_fen) // (2 * amount_fen) if amount_fen else 0
        out.append(due - given)
        given = due
    return out


def bill_rows(sim: AlipaySim, day: date, fee: FeeFn) -> list[BillRow]:
    """Return the day's payment and refund rows, in time order."""
    start, end = day_bounds(day)
    lo, hi = start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S")
    rows: list[BillRow] = []
    for t in sim.bill_trades(start, end):
        paid_fee = fee(t, t.amount_fen, day) if t.paid_at else 0
        if t.paid_at and lo <= t.paid_at < hi:
            rows.append(BillRow(t, "交易", t.amount_fen, -paid_fee, t.paid_at))
        backs = refund_fee_backs(paid_fee, t.amount_fen, [r.amount_fen for r in t.refunds])
        for r, back in zip(t.refunds, backs, strict=True):
            if lo <= r.at < hi:
                rows.append(BillRow(t, "退款", -r.amount_fen, back, r.at, r.out_request_no))
    rows.sort(key=lambda r: (r.at, r.trade.trade_no))
    return rows


def bill_csv(sim: AlipaySim, day: date, fee: FeeFn, *, exported_at: datetime) -> str:
    """Return the detail file's text (before GBK encoding)."""
    rows = bill_rows(sim, day, fee)
    start, end = day_bounds(day)
    out = io.StringIO()
    out.write("#支付宝业务明细查询\n")
    out.write(f"#账号：[{sim.pid}]\n")
    out.write(
        f"#起始日期：[{start:%Y年%m月%d日 %H:%M:%S}]   终止日期：[{end:%Y年%m月%d日 %H:%M:%S}]\n"
    )
    out.write(RULE + "业务明细列表----------------------------------------\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        t = r.trade
        writer.writerow(
            [
                t.trade_no,
                t.out_trade_no,
                r.kind,
                t.subject,
                t.created_at,
                r.at,
                "",
                "",
                "",
                "",
                t.buyer_logon_id,
                format_yuan(t.amount_fen),
                format_yuan(r.amount_fen),
                "0.00",
                "0.00",
                "0.00",
                "0.00",
                "0.00",
                "",
                "0.00",
                "0.00",
                r.request_no,
                format_yuan(r.fee_fen),
                "0.00",
                t.fund_channel,
            ]
        )
    out.write(RULE + "业务明细列表结束------------------------------------\n")
    for kind in ("交易", "退款"):
        mine = [r for r in rows if r.kind == kind]
        received = format_yuan(sum(r.amount_fen for r in mine))
        out.write(f"#{kind}合计：{len(mine)}笔，商家实收共{received}元，商家优惠共0.00元\n")
    out.write(f"#导出时间：[{exported_at.astimezone(CHINA):%Y年%m月%d日 %H:%M:%S}]\n")
    return out.getvalue()


def bill_zip(sim: AlipaySim, day: date, fee: FeeFn, *, exported_at: datetime) -> bytes:
    """Return the day's bill as Alipay ships it: a zip holding the GBK-encoded detail CSV."""
    text = bill_csv(sim, day, fee, exported_at=exported_at)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{sim.pid}0156_{day:%Y%m%d}_业务明细.csv", text.encode("gbk"))
    return buf.getvalue()


def bank_credit_csv(
    sim: AlipaySim, day: date, fee: FeeFn, *, account_no: str, opening_fen: int = 0
) -> str:
    """Return the §4 bank statement CSV with the T+1 credit of ``day``'s net settlement (the
    memo names the bill's settlement date, D+1)."""
    rows = bill_rows(sim, day, fee)
    net = sum(r.amount_fen + r.fee_fen for r in rows)
    credit_on = next_working_day(day)
    return settlement_credit_csv(
        net_fen=net,
        booked_on=credit_on,
        serial_no=f"ALI{day:%Y%m%d}{sim.pid[-6:]}",
        memo=f"支付宝结算 {day + timedelta(days=1):%Y%m%d} {sim.pid}",
        payer_name="支付宝（中国）网络技术有限公司",
        payer_account=account_no,
        opening_fen=opening_fen,
    )
