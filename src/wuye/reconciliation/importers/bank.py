"""Bank statements (银行流水, contract §4), as CSV and as SWIFT MT940: one meaning, same rows.

CSV: UTF-8, header ``txn_date,value_date,serial_no,direction,amount,balance,
counterparty_name,counterparty_account,memo``. MT940 (parsed by the ``mt-940`` library):
``:25:`` the account, ``:60F:`` the opening balance, per movement a ``:61:`` (value date,
booking date, C/D, amount, type, customer reference = ``serial_no``) and a ``:86:`` of the form
``/CNTP/<counterparty account>/<counterparty name>/REMI/<memo>``; the running balance comes from
``:60F:`` and must end at ``:62F:``. Both produce the same ``BankMovement`` rows.

A credit is *recognised* as a channel's settlement when its memo names one of the company's
merchant numbers and a ``YYYYMMDD`` date (``POS清算 20261121 898310048990001``).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date

from django.utils.translation import gettext as _

from wuye.core.money import MoneyFormatError, parse_yuan

from .base import Parsed, Where, compact_date, yuan_fen

CSV_HEADER = (
    "txn_date,value_date,serial_no,direction,amount,balance,counterparty_name,"
    "counterparty_account,memo"
).split(",")
_DATE8 = re.compile(r"(?<!\d)(20\d{6})(?!\d)")
_CNTP = re.compile(r"^/CNTP/([^/]*)/([^/]*)/REMI/(.*)$", re.S)


def recognise(memo: str, merchants: dict[str, str]) -> tuple[str, str, date | None]:
    """Return (channel, merchant_no, settle_date) named by a credit's memo, or blanks.

    ``merchants`` maps the company's merchant numbers to reconciliation channels.
    """
    for merchant_no, channel in merchants.items():
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(merchant_no)}(?![0-9A-Za-z])", memo):
            for m in _DATE8.finditer(memo):
                text = m.group(1)
                try:
                    when = date(int(text[:4]), int(text[4:6]), int(text[6:]))
                except ValueError:
                    continue
                return channel, merchant_no, when
            return channel, merchant_no, None
    return "", "", None


def _movement(
    account: str,
    serial: str,
    txn: date,
    value: date,
    direction: str,
    amount: int,
    balance: int | None,
    cname: str,
    cacct: str,
    memo: str,
    line: int,
) -> tuple[object, ...]:
    # Recognition (channel, merchant, settle_date) is filled in by the import service.
    return (
        account,
        serial,
        txn,
        value,
        direction,
        amount,
        balance,
        cname,
        cacct,
        memo,
        "",
        "",
        None,
        line,
    )


def parse_csv(data: bytes, name: str, *, account_no: str) -> Parsed:
    """Parse a bank statement CSV for ``account_no``; return BankMovement tuples.

    Raises FileRejected (file, line, field) for a bad header, encoding, date, direction,
    amount, repeated serial number or a balance that does not follow from the previous row.
    """
    where = Where(name, 1)
    if not account_no:
        raise where.reject(_("银行流水 CSV 不含账号，请指定账号(--account)"))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Where(name, data[: exc.start].count(b"\n") + 1).reject(
            _("文件不是 UTF-8 编码")
        ) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != CSV_HEADER:
        raise where.reject(_("表头不是银行流水 CSV 的表头"))
    parsed = Parsed(kind="bank_csv", account_no=account_no)
    seen: set[str] = set()
    prev_balance: int | None = None
    for i, raw in enumerate(rows[1:], start=2):
        where.line = i
        if not any(c.strip() for c in raw):
            continue
        if len(raw) != len(CSV_HEADER):
            raise where.reject(
                _("列数应为 %(n)d，实际 %(m)d") % {"n": len(CSV_HEADER), "m": len(raw)}
            )
        f = dict(zip(CSV_HEADER, (c.strip() for c in raw), strict=True))
        txn = compact_date(f["txn_date"], where, "txn_date")
        value = compact_date(f["value_date"], where, "value_date")
        serial = f["serial_no"]
        if not serial:
            raise where.reject(_("缺少流水号"), "serial_no")
        if serial in seen:
            raise where.reject(_("流水号重复：%(v)s") % {"v": serial}, "serial_no")
        seen.add(serial)
        direction = f["direction"]
        if direction not in ("C", "D"):
            raise where.reject(_("方向应为 C 或 D：“%(v)s”") % {"v": direction}, "direction")
        amount = yuan_fen(f["amount"], where, "amount")
        if amount <= 0:
            raise where.reject(_("金额应为正数"), "amount")
        balance = yuan_fen(f["balance"], where, "balance") if f["balance"] else None
        if balance is not None and prev_balance is not None:
            expected = prev_balance + (amount if direction == "C" else -amount)
            if balance != expected:
                raise where.reject(
                    _("余额不连续：应为 %(e)d 分，文件为 %(b)d 分") % {"e": expected, "b": balance},
                    "balance",
                )
        prev_balance = balance
        parsed.movements.append(
            _movement(
                account_no,
                serial,
                txn,
                value,
                direction,
                amount,
                balance,
                f["counterparty_name"],
                f["counterparty_account"],
                f["memo"],
                i,
            )
        )
    _totals(parsed)
    return parsed


def _totals(parsed: Parsed) -> None:
    parsed.row_count = len(parsed.movements)
    parsed.total_fen = sum(m[5] if m[4] == "C" else -m[5] for m in parsed.movements)
    parsed.net_fen = parsed.total_fen


def _mt_fen(amount: object, where: Where, field: str) -> int:
    try:
        return parse_yuan(str(getattr(amount, "amount", amount)))
    except MoneyFormatError:
        raise where.reject(_("金额不合法：%(v)s") % {"v": amount}, field) from None


def parse_mt940(data: bytes, name: str) -> Parsed:
    """Parse an MT940 statement with the ``mt-940`` library; return BankMovement tuples.

    Raises FileRejected naming the file, the ``:61:`` line and the field for a bad statement,
    a repeated serial number or a closing balance that the movements do not reach.
    """
    import mt940  # the pinned ``mt-940`` parser

    where = Where(name, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Where(name, data[: exc.start].count(b"\n") + 1).reject(
            _("文件不是 UTF-8 编码")
        ) from None
    lines = text.splitlines()
    tag61 = [i + 1 for i, line in enumerate(lines) if line.startswith(":61:")]
    try:
        statements = mt940.models.Transactions()
        statements.parse(text)
    except Exception as exc:  # the library raises plain exceptions for bad tags
        raise where.reject(_("MT940 解析失败：%(e)s") % {"e": exc}) from None
    data_ = statements.data
    account = str(data_.get("account_identification") or "").strip()
    if not account:
        raise where.reject(_("缺少 :25: 账号"), ":25:")
    opening = data_.get("final_opening_balance")
    if opening is None:
        raise where.reject(_("缺少 :60F: 期初余额"), ":60F:")
    balance = abs(_mt_fen(opening.amount, where, ":60F:"))
    if str(getattr(opening, "status", "C")) == "D":
        balance = -balance
    parsed = Parsed(kind="bank_mt940", account_no=account)
    seen: set[str] = set()
    txns = list(statements)
    if len(txns) != len(tag61):
        raise where.reject(_("有 :61: 行未能解析"), ":61:")
    for tx, line in zip(txns, tag61, strict=True):
        where.line = line
        d = tx.data
        status = str(d.get("status") or "")
        if status not in ("C", "D"):
            raise where.reject(_("方向应为 C 或 D：“%(v)s”") % {"v": status}, ":61:")
        # The library signs debits negative; the direction is in ``status``.
        amount = abs(_mt_fen(d["amount"], where, ":61:"))
        if amount == 0:
            raise where.reject(_("金额应为正数"), ":61:")
        serial = str(d.get("customer_reference") or "").strip()
        if not serial or serial == "NONREF":
            raise where.reject(_("缺少流水号(客户参考号)"), ":61:")
        if serial in seen:
            raise where.reject(_("流水号重复：%(v)s") % {"v": serial}, ":61:")
        seen.add(serial)
        vdate = d["date"]
        edate = d.get("entry_date") or vdate
        details = str(d.get("transaction_details") or "").replace("\n", "")
        m = _CNTP.match(details)
        cacct, cname, memo = (m.group(1), m.group(2), m.group(3)) if m else ("", "", details)
        balance += amount if status == "C" else -amount
        parsed.movements.append(
            _movement(
                account,
                serial,
                date(edate.year, edate.month, edate.day),
                date(vdate.year, vdate.month, vdate.day),
                status,
                amount,
                balance,
                cname.strip(),
                cacct.strip(),
                memo.strip(),
                line,
            )
        )
    closing = data_.get("final_closing_balance")
    if closing is not None:
        end = abs(_mt_fen(closing.amount, where, ":62F:"))
        if str(getattr(closing, "status", "C")) == "D":
            end = -end
        if end != balance:
            where.line = next((i + 1 for i, s in enumerate(lines) if s.startswith(":62F:")), 1)
            raise where.reject(
                _("期末余额 %(e)d 分与期初加发生额 %(b)d 分不符") % {"e": end, "b": balance},
                ":62F:",
            )
    _totals(parsed)
    return parsed
