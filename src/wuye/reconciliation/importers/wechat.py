"""WeChat Pay trade bill (交易账单, contract §2).

A bill covers one day (China time) and settles the next: its rows' ``settle_date`` is that day + 1.

A header row, detail rows whose every field starts with a back-tick, a summary header and one
summary row. Payments are ``交易状态 = SUCCESS`` (amount in 应结订单金额), refunds ``REFUND``
(amount in 退款金额, stored negative). Fees carry five decimals: kept exact in thousandths of
a fen per row; the day's fee per merchant is rounded half-up to the fen once.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.utils.translation import gettext as _

from .base import Parsed, Where, local_datetime, milli_to_fen, yuan_fen, yuan_milli_fen

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,"
    "交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,"
    "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,"
    "费率备注"
).split(",")
SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
).split(",")
_IX = {name: i for i, name in enumerate(HEADER)}
_CN = timedelta(hours=8)
SETTLE_LAG = timedelta(days=1)


def _unquote(cells: list[str], where: Where) -> list[str]:
    out = []
    for i, cell in enumerate(cells):
        if not cell.startswith("`"):
            raise where.reject(_("字段应以反引号 ` 开头"), HEADER[i] if i < len(HEADER) else None)
        out.append(cell[1:].strip())
    return out


def parse(data: bytes, name: str) -> Parsed:
    """Parse and check a WeChat Pay trade bill; return ChannelRecord tuples and settlements.

    Raises FileRejected (file, line, field) for a bad header, encoding, field, or a summary
    that disagrees with the detail rows.
    """
    where = Where(name, 0)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Where(name, line).reject(_("文件不是 UTF-8 编码")) from None
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows or [c.strip() for c in rows[0]] != HEADER:
        where.line = 1
        raise where.reject(_("表头不是微信支付交易账单的表头"))
    try:
        summary_at = next(i for i, r in enumerate(rows) if [c.strip() for c in r] == SUMMARY_HEADER)
    except StopIteration:
        where.line = len(rows)
        raise where.reject(_("账单缺少汇总行（总交易单数…）")) from None
    if summary_at != len(rows) - 2:
        where.line = summary_at + 1
        raise where.reject(_("汇总表头之后应恰好有一行汇总"))

    parsed = Parsed(kind="wechat")
    day_fee: dict[tuple[str, Any], int] = defaultdict(int)
    day_gross: dict[tuple[str, Any], int] = defaultdict(int)
    day_count: dict[tuple[str, Any], int] = defaultdict(int)
    paid_total = refund_total = fee_total = order_total = 0
    for i in range(1, summary_at):
        where.line = i + 1
        raw = rows[i]
        if len(raw) != len(HEADER):
            raise where.reject(_("列数应为 %(n)d，实际 %(m)d") % {"n": len(HEADER), "m": len(raw)})
        f = _unquote(raw, where)
        txn_at = local_datetime(f[_IX["交易时间"]], "%Y-%m-%d %H:%M:%S", where, "交易时间")
        mch = f[_IX["商户号"]]
        if not mch.isdigit():
            raise where.reject(_("商户号应为数字：“%(v)s”") % {"v": mch}, "商户号")
        ref = f[_IX["微信订单号"]]
        if not ref:
            raise where.reject(_("缺少微信订单号"), "微信订单号")
        state = f[_IX["交易状态"]]
        settle = yuan_fen(f[_IX["应结订单金额"]], where, "应结订单金额")
        refund = yuan_fen(f[_IX["退款金额"]], where, "退款金额")
        fee = yuan_milli_fen(f[_IX["手续费"]], where, "手续费")
        order = yuan_fen(f[_IX["订单金额"]], where, "订单金额")
        if f[_IX["货币种类"]] != "CNY":
            raise where.reject(_("币种应为 CNY"), "货币种类")
        if state == "SUCCESS":
            if settle <= 0:
                raise where.reject(_("成功交易的应结订单金额应大于 0"), "应结订单金额")
            kind, amount, fee_signed = "payment", settle, fee
            own_ref, orig_ref, our_refund_no = ref, "", ""
        elif state == "REFUND":
            if refund <= 0:
                raise where.reject(_("退款行的退款金额应大于 0"), "退款金额")
            # A refund returns its share of the fee: negative, whichever sign the file uses.
            kind, amount, fee_signed = "refund", -refund, -abs(fee)
            own_ref = f[_IX["微信退款单号"]]
            if not own_ref:
                raise where.reject(_("退款行缺少微信退款单号"), "微信退款单号")
            orig_ref, our_refund_no = ref, f[_IX["商户退款单号"]]
        else:
            raise where.reject(
                _("交易状态应为 SUCCESS 或 REFUND：“%(v)s”") % {"v": state}, "交易状态"
            )
        # The channel settles a day's bill the next day (D+1): that is its settlement date.
        sdate = (txn_at + _CN).date() + SETTLE_LAG
        parsed.records.append(
            (
                "wechat",
                mch,
                sdate,
                txn_at,
                own_ref,
                f[_IX["商户订单号"]],
                kind,
                amount,
                fee_signed,
                amount - milli_to_fen(fee_signed),
                "",
                "",
                f[_IX["付款银行"]],
                orig_ref,
                our_refund_no,
                "",
                "",
                "",
                "",
                i + 1,
            )
        )
        key = (mch, sdate)
        day_fee[key] += fee_signed
        day_gross[key] += amount
        day_count[key] += 1
        if kind == "payment":
            paid_total += settle
        else:
            refund_total += refund
        fee_total += fee_signed
        if kind == "payment":  # refund rows repeat the original order's amount
            order_total += order

    where.line = len(rows)
    s_raw = rows[-1]
    if len(s_raw) != len(SUMMARY_HEADER):
        raise where.reject(_("汇总行列数不对"))
    s = _unquote(s_raw, where)
    if not s[0].isdigit() or int(s[0]) != summary_at - 1:
        raise where.reject(
            _("汇总笔数 %(p)s 与明细 %(a)d 笔不符") % {"p": s[0], "a": summary_at - 1},
            "总交易单数",
        )
    checks = (
        ("应结订单总金额", yuan_fen(s[1], where, "应结订单总金额"), paid_total),
        ("退款总金额", yuan_fen(s[2], where, "退款总金额"), refund_total),
        ("手续费总金额", yuan_milli_fen(s[4], where, "手续费总金额"), fee_total),
        ("订单总金额", yuan_fen(s[5], where, "订单总金额"), order_total),
    )
    for label, promised, actual in checks:
        if promised != actual:
            raise where.reject(
                _("汇总与明细不符：汇总 %(p)s，明细合计 %(a)s") % {"p": promised, "a": actual},
                label,
            )
    parsed.row_count = len(parsed.records)
    parsed.total_fen = paid_total - refund_total
    parsed.fee_milli_fen = fee_total
    for key in sorted(day_gross):
        fee_fen = milli_to_fen(day_fee[key])
        parsed.settlements.append(
            {
                "channel": "wechat",
                "merchant_no": key[0],
                "settle_date": key[1],
                "row_count": day_count[key],
                "gross_fen": day_gross[key],
                "fee_fen": fee_fen,
                "net_fen": day_gross[key] - fee_fen,
            }
        )
    parsed.net_fen = sum(s["net_fen"] for s in parsed.settlements)
    return parsed
