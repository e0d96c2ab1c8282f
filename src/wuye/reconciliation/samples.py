"""Write the contract's file layouts (``../shared/spec/settlement-files.md``) from plain rows.

For tests, the benchmark, demos and simulators: each function returns the bytes of a well-formed
file; damage is injected by editing those bytes. Amounts are integer fen in, two-decimal yuan
out (five decimals for WeChat fees), never through floats.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from wuye.core.money import format_yuan

from .importers import acquirer, alipay, bank, wechat


def milli_yuan5(milli_fen: int) -> str:
    """Format thousandths of a fen as yuan with five decimals (``4864000 → "48.64000"``)."""
    sign = "-" if milli_fen < 0 else ""
    whole, frac = divmod(abs(milli_fen), 100_000)
    return f"{sign}{whole}.{frac:05d}"


@dataclass
class CardRow:
    rrn: str
    amount_fen: int
    fee_fen: int
    txn_at: datetime
    settle_date: date
    mid: str = "898310048990001"
    tid: str = "10000001"
    batch: str = "000001"
    stan: str = "000001"
    auth_code: str = "A1B2C3"
    masked_pan: str = "622202******0017"
    card_type: str = "DEBIT"
    orig_rrn: str = ""


def acquirer_csv(rows: Sequence[CardRow]) -> bytes:
    """Return an acquirer settlement file holding ``rows`` and a matching trailer."""
    out = [acquirer.HEADER]
    tot = fee = 0
    for r in rows:
        kind = "REFUND" if r.amount_fen < 0 else "PURCHASE"
        out.append(
            ",".join(
                [
                    r.settle_date.strftime("%Y%m%d"),
                    r.txn_at.strftime("%Y%m%d"),
                    r.txn_at.strftime("%H%M%S"),
                    r.mid,
                    r.tid,
                    r.batch,
                    r.stan,
                    r.rrn,
                    r.auth_code if kind == "PURCHASE" else "",
                    kind,
                    r.masked_pan,
                    r.card_type,
                    format_yuan(r.amount_fen),
                    format_yuan(r.fee_fen),
                    format_yuan(r.amount_fen - r.fee_fen),
                    r.orig_rrn,
                ]
            )
        )
        tot += r.amount_fen
        fee += r.fee_fen
    out.append(
        f"TRAILER,{len(rows)},{format_yuan(tot)},{format_yuan(fee)},{format_yuan(tot - fee)}"
    )
    return ("\n".join(out) + "\n").encode()


@dataclass
class QrRow:
    reference: str
    order_no: str
    amount_fen: int  # negative for a refund
    fee_milli_fen: int
    txn_at: datetime
    merchant_no: str
    funding_source: str = "OTHERS"
    orig_reference: str = ""  # a refund's original payment
    refund_no: str = ""  # our refund number (商户退款单号 / 退款批次号)


def wechat_bill(rows: Sequence[QrRow], *, app_id: str = "wx2421b1c4370ec43b") -> bytes:
    """Return a WeChat Pay trade bill holding ``rows`` and a matching summary."""
    out = [",".join(wechat.HEADER)]
    paid = refunded = fee = 0
    for r in rows:
        refund = r.amount_fen < 0
        txn_id = r.orig_reference if refund else r.reference
        cells = [
            r.txn_at.strftime("%Y-%m-%d %H:%M:%S"),
            app_id,
            r.merchant_no,
            "0",
            "",
            txn_id,
            r.order_no,
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
            "NATIVE",
            "REFUND" if refund else "SUCCESS",
            r.funding_source,
            "CNY",
            format_yuan(0 if refund else r.amount_fen),
            "0.00",
            r.reference if refund else "0",
            r.refund_no if refund else "0",
            format_yuan(-r.amount_fen if refund else 0),
            "0.00",
            "ORIGINAL" if refund else "",
            "SUCCESS" if refund else "",
            "物业费",
            "",
            milli_yuan5(r.fee_milli_fen),
            "0.38%",
            format_yuan(abs(r.amount_fen)),
            format_yuan(-r.amount_fen if refund else 0),
            "",
        ]
        out.append(",".join("`" + c for c in cells))
        if refund:
            refunded += -r.amount_fen
        else:
            paid += r.amount_fen
        fee += r.fee_milli_fen
    out.append(",".join(wechat.SUMMARY_HEADER))
    orders = sum(r.amount_fen for r in rows if r.amount_fen > 0)
    summary = [
        str(len(rows)),
        format_yuan(paid),
        format_yuan(refunded),
        "0.00",
        milli_yuan5(fee),
        format_yuan(orders),
        format_yuan(refunded),
    ]
    out.append(",".join("`" + c for c in summary))
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def alipay_zip(rows: Sequence[QrRow], *, merchant_no: str, day: date) -> bytes:
    """Return an Alipay bill zip (GBK CSV with ``#`` comments) holding ``rows``."""
    out = [
        "#支付宝业务明细查询",
        f"#账号：[{merchant_no}]",
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        ",".join(alipay.HEADER),
    ]
    n_pay = n_ref = s_pay = s_ref = 0
    for r in rows:
        refund = r.amount_fen < 0
        fee_fen = r.fee_milli_fen // 1000
        cells = [
            r.orig_reference if refund else r.reference,
            r.order_no,
            "退款" if refund else "交易",
            "物业费",
            r.txn_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.txn_at.strftime("%Y-%m-%d %H:%M:%S"),
            "",
            "",
            "",
            "",
            "jia***@example.com",
            format_yuan(abs(r.amount_fen)),
            format_yuan(r.amount_fen),
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00",
            "0.00",
            r.reference if refund else "",
            format_yuan(-fee_fen),
            "0.00",
            "",
        ]
        out.append(",".join(c + "\t" for c in cells))
        if refund:
            n_ref += 1
            s_ref += r.amount_fen
        else:
            n_pay += 1
            s_pay += r.amount_fen
    out += [
        "#-----------------------------------------业务明细列表结束------------------------------------",
        f"#交易合计：{n_pay}笔，商家实收共{format_yuan(s_pay)}元，商家优惠共0.00元",
        f"#退款合计：{n_ref}笔，商家实收共{format_yuan(s_ref)}元，商家优惠共0.00元",
        f"#导出时间：[{day:%Y年%m月%d日} 08:30:00]",
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{merchant_no}_{day:%Y%m%d}_业务明细.csv", "\r\n".join(out).encode("gbk"))
    return buf.getvalue()


@dataclass
class BankRow:
    serial_no: str
    direction: str
    amount_fen: int
    txn_date: date
    memo: str
    value_date: date | None = None
    counterparty_name: str = "某某支付有限公司"
    counterparty_account: str = "31000000000000001"


def _balances(rows: Iterable[BankRow], opening_fen: int) -> list[int]:
    out, bal = [], opening_fen
    for r in rows:
        bal += r.amount_fen if r.direction == "C" else -r.amount_fen
        out.append(bal)
    return out


def bank_csv(rows: Sequence[BankRow], *, opening_fen: int = 0) -> bytes:
    """Return a bank statement CSV of ``rows``, balances running from ``opening_fen``."""
    out = [",".join(bank.CSV_HEADER)]
    for r, bal in zip(rows, _balances(rows, opening_fen), strict=True):
        out.append(
            ",".join(
                [
                    f"{r.txn_date:%Y%m%d}",
                    f"{(r.value_date or r.txn_date):%Y%m%d}",
                    r.serial_no,
                    r.direction,
                    format_yuan(r.amount_fen),
                    format_yuan(bal),
                    r.counterparty_name,
                    r.counterparty_account,
                    r.memo,
                ]
            )
        )
    return ("\n".join(out) + "\n").encode()


def _mt_amount(fen: int) -> str:
    return format_yuan(abs(fen)).replace(".", ",")


def bank_mt940(
    rows: Sequence[BankRow], *, account_no: str, opening_fen: int = 0, day: date | None = None
) -> bytes:
    """Return the MT940 statement of the same ``rows`` as :func:`bank_csv`."""
    start = day or (rows[0].txn_date if rows else date.today())
    closing = _balances(rows, opening_fen)[-1] if rows else opening_fen
    end = rows[-1].txn_date if rows else start
    out = [
        ":20:STMT" + start.strftime("%Y%m%d"),
        f":25:{account_no}",
        ":28C:1/1",
        f":60F:{'C' if opening_fen >= 0 else 'D'}{start:%y%m%d}CNY{_mt_amount(opening_fen)}",
    ]
    for r in rows:
        value = r.value_date or r.txn_date
        out.append(
            f":61:{value:%y%m%d}{r.txn_date:%m%d}{r.direction}{_mt_amount(r.amount_fen)}"
            f"NTRF{r.serial_no}"
        )
        out.append(f":86:/CNTP/{r.counterparty_account}/{r.counterparty_name}/REMI/{r.memo}")
    out.append(f":62F:{'C' if closing >= 0 else 'D'}{end:%y%m%d}CNY{_mt_amount(closing)}")
    return ("\r\n".join(out) + "\r\n").encode()
