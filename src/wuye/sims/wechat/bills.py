"""The simulator's daily files: WeChat Pay's trade bill (settlement-files.md §2) and the T+1
bank credit of the day's net settlement (§4 CSV).

Fees are the merchant's contracted rate from Wuye's merchants app (``qr_balance`` for the
balance and debit cards, ``qr_credit`` for credit cards), kept exact to five decimals of a yuan
per row; the day's total is rounded half-up to the fen once, as WeChat settles it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from wuye.core.money import Rounding, div_round
from wuye.sims.bankfile import next_working_day, settlement_credit_csv

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
DEFAULT_RATES_PPM = {"qr_balance": 3800, "qr_credit": 6000}
"""Used only when Wuye has no WeChat merchant with that number (a bare simulator)."""
PAYER_NAME = "财付通支付科技有限公司"
PAYER_ACCOUNT = "31000000000000001"


def yuan(fen: int) -> str:
    """Return integer fen as yuan with two decimals (``-1.05``)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def yuan5(hundred_thousandths: int) -> str:
    """Return an amount in 1e-5 yuan with five decimals (``4.86400``)."""
    sign = "-" if hundred_thousandths < 0 else ""
    v = abs(hundred_thousandths)
    return f"{sign}{v // 100000}.{v % 100000:05d}"


def rate_text(rate_ppm: int) -> str:
    """Return a rate in ppm as WeChat prints it (``0.38%``, ``0.6%``)."""
    whole, frac = divmod(rate_ppm, 10000)
    text = f"{whole}.{frac:04d}".rstrip("0").rstrip(".")
    return f"{text}%"


def fee_units(amount_fen: int, rate_ppm: int) -> int:
    """Return the fee of ``amount_fen`` at ``rate_ppm`` in 1e-5 yuan, half-up at 5 decimals."""
    # amount_fen × rate_ppm / 1e6 fen = amount_fen × rate_ppm / 1e3 hundred-thousandths.
    return div_round(amount_fen * rate_ppm, 1000, Rounding.HALF_UP)


def contracted_rate(mchid: str, card_type: str, on_date: date) -> int:
    """Return the merchant's contracted rate in ppm from Wuye's merchants app (or the default)."""
    from wuye.merchants.models import Merchant
    from wuye.merchants.selectors import fee_rate_for

    merchant = Merchant.objects.filter(channel="wechat", merchant_no=mchid).first()
    if merchant is not None:
        rate = fee_rate_for(merchant=merchant, card_type=card_type, on_date=on_date)
        if rate is not None:
            return rate.rate_ppm
    return DEFAULT_RATES_PPM[card_type]


def _card_type(bank_type: str) -> str:
    return "qr_credit" if bank_type.endswith("_CREDIT") or bank_type == "PCREDIT" else "qr_balance"


@dataclass
class DayBill:
    text: str
    paid_fen: int
    refund_fen: int
    fee_units: int

    @property
    def fee_fen(self) -> int:
        """The day's fee rounded half-up to the fen (what WeChat keeps)."""
        return div_round(self.fee_units, 1000, Rounding.HALF_UP)

    @property
    def net_fen(self) -> int:
        return self.paid_fen - self.refund_fen - self.fee_fen


def _local(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def trade_bill(state: dict[str, Any], *, mchid: str, appid: str, day: date) -> DayBill:
    """Return the trade bill of ``day`` (Shanghai time) from the simulator's ``state``."""
    rows: list[list[str]] = []
    paid = refunded = fees = order_total = 0
    orders = state.get("orders", {})
    for o in sorted(orders.values(), key=lambda o: o.get("success_time") or ""):
        if not o.get("success_time") or _local(o["success_time"]).date() != day:
            continue
        amount = int(o["amount"])
        rate = contracted_rate(mchid, _card_type(o.get("bank_type", "")), day)
        fee = fee_units(amount, rate)
        paid += amount
        fees += fee
        order_total += amount
        rows.append(
            [
                _local(o["success_time"]).strftime("%Y-%m-%d %H:%M:%S"),
                appid,
                mchid,
                "0",
                "",
                o["transaction_id"],
                o["out_trade_no"],
                o.get("openid", ""),
                o["trade_type"],
                "SUCCESS",
                o.get("bank_type", "OTHERS"),
                "CNY",
                yuan(amount),
                "0.00",
                "0",
                "0",
                "0.00",
                "0.00",
                "",
                "",
                o.get("description", ""),
                o.get("attach", ""),
                yuan5(fee),
                rate_text(rate),
                yuan(amount),
                "0.00",
                "",
            ]
        )
    for r in sorted(state.get("refunds", {}).values(), key=lambda r: r.get("success_time") or ""):
        if r.get("status") != "SUCCESS" or _local(r["success_time"]).date() != day:
            continue
        o = orders[r["out_trade_no"]]
        amount = int(r["refund"])
        rate = contracted_rate(mchid, _card_type(o.get("bank_type", "")), day)
        fee = fee_units(amount, rate)
        refunded += amount
        fees -= fee
        rows.append(
            [
                _local(r["success_time"]).strftime("%Y-%m-%d %H:%M:%S"),
                appid,
                mchid,
                "0",
                "",
                o["transaction_id"],
                o["out_trade_no"],
                o.get("openid", ""),
                o["trade_type"],
                "REFUND",
                o.get("bank_type", "OTHERS"),
                "CNY",
                "0.00",
                "0.00",
                r["refund_id"],
                r["out_refund_no"],
                yuan(amount),
                "0.00",
                "ORIGINAL",
                "SUCCESS",
                o.get("description", ""),
                o.get("attach", ""),
                yuan5(-fee),
                rate_text(rate),
                yuan(int(o["amount"])),
                yuan(amount),
                "",
            ]
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    out.write(HEADER + "\r\n")
    for row in rows:
        writer.writerow(["`" + f for f in row])
    out.write(SUMMARY + "\r\n")
    summary = [
        str(len(rows)),
        yuan(paid),
        yuan(refunded),
        "0.00",
        yuan5(fees),
        yuan(order_total),
        yuan(refunded),
    ]
    writer.writerow(["`" + f for f in summary])
    return DayBill(out.getvalue(), paid, refunded, fees)


def bank_credit(bill: DayBill, *, mchid: str, day: date, balance_fen: int) -> str:
    """Return the §4 bank-statement CSV crediting ``bill``'s net amount on T+1.

    The memo names the settlement date (the bill's day + 1), as the card acquirer's credit
    names its settlement date: reconciliation ties the credit to it.
    """
    value = next_working_day(day)
    return settlement_credit_csv(
        net_fen=bill.net_fen,
        booked_on=value,
        serial_no=f"WX{value:%Y%m%d}{mchid}",
        memo=f"微信支付结算 {day + timedelta(days=1):%Y%m%d} {mchid}",
        payer_name=PAYER_NAME,
        payer_account=PAYER_ACCOUNT,
        opening_fen=balance_fen,
    )
