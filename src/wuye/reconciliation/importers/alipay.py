"""Alipay account bill (支付宝业务明细, contract §3): a zip holding a GBK CSV.

A bill covers one day (China time) and settles the next: its rows' ``settle_date`` is that day + 1.

``#`` comment lines before the table name the account (``#账号：[2088…]``, the merchant) and
after it give the totals (``#交易合计：N笔，商家实收共X元`` and ``#退款合计：…``), which must agree
with the rows. Cells are trimmed (Alipay pads them with tabs). A payment (业务类型 交易) counts
its 订单金额; a refund (退款) its 商家实收, stored negative. 服务费 is the fee, stored with the
amount's sign whichever sign the file uses.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.utils.translation import gettext as _

from .base import Parsed, Where, local_datetime, yuan_fen

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,"
    "对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,"
    "商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,"
    "退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
_IX = {name: i for i, name in enumerate(HEADER)}
_ACCOUNT = re.compile(r"#\s*账号[:：]\s*\[?\s*(\d+)")
_TOTAL = re.compile(r"#\s*(交易|退款)合计[:：]\s*(\d+)\s*笔\s*[,，]\s*商家实收共\s*(-?[\d.]+)\s*元")
_CN = timedelta(hours=8)
SETTLE_LAG = timedelta(days=1)


def _member_text(data: bytes, name: str) -> tuple[str, str]:
    where = Where(name)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise where.reject(_("支付宝账单应为 zip 压缩包")) from None
    for info in zf.infolist():
        raw = zf.read(info)
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise Where(f"{name}/{info.filename}", line).reject(_("文件不是 GBK 编码")) from None
        if "支付宝交易号" in text and "汇总" not in info.filename:
            return info.filename, text
    raise where.reject(_("压缩包里没有支付宝业务明细表"))


def parse(data: bytes, name: str) -> Parsed:
    """Parse and check an Alipay bill zip; return ChannelRecord tuples and settlements.

    Raises FileRejected (file, line, field) for a bad zip, encoding, header, field, or totals
    that disagree with the rows.
    """
    member, text = _member_text(data, name)
    fname = f"{name}/{member}"
    lines = text.splitlines()
    merchant = ""
    totals: dict[str, tuple[int, int]] = {}
    header_at = None
    for i, line in enumerate(lines):
        if line.startswith("#"):
            m = _ACCOUNT.search(line)
            if m:
                merchant = m.group(1)
            t = _TOTAL.search(line)
            if t:
                w = Where(fname, i + 1)
                totals[t.group(1)] = (int(t.group(2)), yuan_fen(t.group(3), w, t.group(1)))
        elif header_at is None and line.strip():
            header_at = i
    if header_at is None:
        raise Where(fname, 1).reject(_("找不到明细表头"))
    where = Where(fname, header_at + 1)
    head = [c.strip() for c in next(csv.reader([lines[header_at]]))]
    if head != HEADER:
        raise where.reject(_("表头不是支付宝业务明细的表头"))
    if not merchant:
        raise Where(fname, 1).reject(_("注释行里没有“#账号：[…]”(商户号)"))
    if "交易" not in totals or "退款" not in totals:
        raise Where(fname, len(lines)).reject(_("缺少“#交易合计”/“#退款合计”汇总注释行"))

    parsed = Parsed(kind="alipay")
    sums: dict[str, list[int]] = {"交易": [0, 0], "退款": [0, 0]}
    gross: dict[Any, int] = defaultdict(int)
    fees: dict[Any, int] = defaultdict(int)
    count: dict[Any, int] = defaultdict(int)
    for i in range(header_at + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            continue
        where.line = i + 1
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(HEADER):
            raise where.reject(
                _("列数应为 %(n)d，实际 %(m)d") % {"n": len(HEADER), "m": len(cells)}
            )
        ref = cells[_IX["支付宝交易号"]]
        if not ref:
            raise where.reject(_("缺少支付宝交易号"), "支付宝交易号")
        btype = cells[_IX["业务类型"]]
        done_at = local_datetime(cells[_IX["完成时间"]], "%Y-%m-%d %H:%M:%S", where, "完成时间")
        order_amt = yuan_fen(cells[_IX["订单金额（元）"]], where, "订单金额（元）")
        received = yuan_fen(cells[_IX["商家实收（元）"]], where, "商家实收（元）")
        fee = abs(yuan_fen(cells[_IX["服务费（元）"]], where, "服务费（元）"))
        if btype == "交易":
            if order_amt <= 0:
                raise where.reject(_("交易的订单金额应大于 0"), "订单金额（元）")
            kind, amount, own_ref, orig_ref = "payment", order_amt, ref, ""
            our_refund_no = ""
        elif btype == "退款":
            if received == 0:
                raise where.reject(_("退款行的商家实收不能为 0"), "商家实收（元）")
            batch = cells[_IX["退款批次号/请求号"]]
            kind, amount, fee = "refund", -abs(received), -fee
            # A refund's own id is its request number; the trade number is the original's.
            own_ref, orig_ref, our_refund_no = (batch or ref), ref, batch
        else:
            raise where.reject(_("业务类型应为“交易”或“退款”：“%(v)s”") % {"v": btype}, "业务类型")
        # The channel settles a day's bill the next day (D+1): that is its settlement date.
        sdate = (done_at + _CN).date() + SETTLE_LAG
        parsed.records.append(
            (
                "alipay",
                merchant,
                sdate,
                done_at,
                own_ref,
                cells[_IX["商户订单号"]],
                kind,
                amount,
                fee * 1000,
                amount - fee,
                "",
                "",
                "",
                orig_ref,
                our_refund_no,
                "",
                cells[_IX["终端号"]][:16],
                "",
                "",
                i + 1,
            )
        )
        sums[btype][0] += 1
        sums[btype][1] += abs(amount) if btype == "交易" else amount
        gross[sdate] += amount
        fees[sdate] += fee
        count[sdate] += 1

    for label in ("交易", "退款"):
        promised_n, promised_fen = totals[label]
        n, fen = sums[label]
        # Refund totals may be printed with or without the minus sign.
        ok = promised_n == n and (promised_fen == fen or promised_fen == -fen)
        if not ok:
            raise Where(fname, len(lines)).reject(
                _("%(l)s合计与明细不符：汇总 %(pn)d 笔 %(pf)d 分，明细 %(n)d 笔 %(f)d 分")
                % {"l": label, "pn": promised_n, "pf": promised_fen, "n": n, "f": fen}
            )
    parsed.row_count = len(parsed.records)
    parsed.total_fen = sum(gross.values())
    parsed.fee_milli_fen = sum(fees.values()) * 1000
    for sdate in sorted(gross):
        parsed.settlements.append(
            {
                "channel": "alipay",
                "merchant_no": merchant,
                "settle_date": sdate,
                "row_count": count[sdate],
                "gross_fen": gross[sdate],
                "fee_fen": fees[sdate],
                "net_fen": gross[sdate] - fees[sdate],
            }
        )
    parsed.net_fen = sum(s["net_fen"] for s in parsed.settlements)
    return parsed
