"""Write what the acquirer and the bank send the merchant after a settlement date.

Per merchant: the acquirer settlement file (``settlement-files.md`` §1) and the bank statement
CSV (§4) with the T+1 credit of the file's net amount. Money is integer fen until the file,
where it becomes yuan with two decimals.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from wuye.core.money import format_yuan
from wuye.sims.acquirer.store import Store
from wuye.sims.bankfile import settlement_credit_csv

SETTLEMENT_HEADER = (
    "settle_date,txn_date,txn_time,mid,tid,batch_no,stan,rrn,auth_code,txn_type,card_no,"
    "card_type,amount,fee,net_amount,orig_rrn"
)

FeeFn = Callable[[str, str, int, date], int]
"""(mid, card_type "debit"/"credit", amount_fen ≥ 0, transaction date) → fee in fen."""


class ExportError(ValueError):
    """The files cannot be written as asked (no rates for a merchant, bad date)."""


@dataclass(frozen=True)
class Rates:
    """Fee rates given on the command line: debit rate with a cap, credit rate."""

    debit_ppm: int
    debit_cap_fen: int | None
    credit_ppm: int

    @classmethod
    def parse(cls, text: str) -> Rates:
        """Parse ``debit_ppm,debit_cap_fen,credit_ppm`` (cap may be empty); raise ExportError."""
        parts = text.split(",")
        if len(parts) != 3:
            raise ExportError(f"--rates {text!r}: expected debit_ppm,debit_cap_fen,credit_ppm")
        try:
            debit, cap, credit = int(parts[0]), (int(parts[1]) if parts[1] else None), int(parts[2])
        except ValueError:
            raise ExportError(f"--rates {text!r}: integers expected") from None
        if min(debit, credit, cap or 0) < 0 or max(debit, credit) > 100_000:
            raise ExportError(f"--rates {text!r}: rates 0..100000 ppm, cap not negative")
        return cls(debit, cap, credit)

    def fee(self, mid: str, card_type: str, amount_fen: int, on_date: date) -> int:
        """Return the fee (half-up to the fen, capped for debit, never above the amount)."""
        from wuye.merchants.selectors import fee_amount

        if card_type == "debit":
            return fee_amount(amount_fen=amount_fen, rate_ppm=self.debit_ppm,
                              cap_fen=self.debit_cap_fen)
        return fee_amount(amount_fen=amount_fen, rate_ppm=self.credit_ppm)


def wuye_fee(mid: str, card_type: str, amount_fen: int, on_date: date) -> int:
    """Return the fee by the merchant's contracted rate in Wuye; raise ``ExportError``."""
    from wuye.merchants.models import Channel, Merchant
    from wuye.merchants.selectors import NoFeeRate, fee_for

    merchant = Merchant.objects.filter(channel=Channel.ACQUIRER, merchant_no=mid).first()
    if merchant is None:
        raise ExportError(f"merchant {mid} is not set up in Wuye: give --rates")
    try:
        return fee_for(merchant=merchant, card_type=card_type, amount_fen=amount_fen,
                       on_date=on_date)
    except NoFeeRate as exc:
        raise ExportError(str(exc)) from None


@dataclass(frozen=True)
class Line:
    """One settlement-file row in fen."""

    text: str
    amount_fen: int
    fee_fen: int


def _line(row: sqlite3.Row, fee: FeeFn) -> Line:
    at = datetime.fromisoformat(row["local_at"])
    refund = row["kind"] == "REFUND"
    sign = -1 if refund else 1
    amount = row["amount_fen"]
    fee_fen = fee(row["mid"], row["card_type"].lower(), amount, at.date())
    cols = [
        row["settle_date"], at.strftime("%Y%m%d"), at.strftime("%H%M%S"), row["mid"], row["tid"],
        # refunds carry no authorization in the file (the contract's example), though the
        # host gives them an auth id on the wire so a 94 can show they were approved
        row["batch"], row["stan"], row["rrn"], "" if refund else row["auth_code"], row["kind"],
        row["masked_pan"], row["card_type"], format_yuan(sign * amount),
        format_yuan(sign * fee_fen), format_yuan(sign * (amount - fee_fen)),
        (row["orig_rrn"] or "") if refund else "",
    ]
    return Line(",".join(cols), sign * amount, sign * fee_fen)


def settlement_file(rows: list[sqlite3.Row], fee: FeeFn) -> tuple[bytes, int]:
    """Return (file bytes, net fen) for one merchant's rows of one settlement date."""
    lines = [_line(r, fee) for r in rows]
    amount = sum(x.amount_fen for x in lines)
    fees = sum(x.fee_fen for x in lines)
    text = [SETTLEMENT_HEADER, *(x.text for x in lines),
            f"TRAILER,{len(lines)},{format_yuan(amount)},{format_yuan(fees)},"
            f"{format_yuan(amount - fees)}"]
    return ("\n".join(text) + "\n").encode("utf-8"), amount - fees


def export(
    store: Store,
    settle_date: date,
    out: Path,
    *,
    fee: FeeFn,
    acquirer_name: str = "模拟收单机构有限公司",
    acquirer_account: str = "31000000000000001",
    opening_balance_fen: int = 0,
) -> list[Path]:
    """Write each merchant's settlement file and bank statement for ``settle_date``.

    Files: ``acquirer_<MID>_<YYYYMMDD>.csv`` and ``bank_<MID>_<YYYYMMDD>.csv`` in ``out``.
    The bank credits the net amount on the settlement date (T+1 of the transactions); its
    running balance counts this acquirer's credits from ``opening_balance_fen``. Return the
    paths written; raise ``ExportError`` when a merchant has no rates.
    """
    day = settle_date.strftime("%Y%m%d")
    by_mid: dict[str, list[sqlite3.Row]] = {}
    for row in store.settlement_rows(day):
        by_mid.setdefault(row["mid"], []).append(row)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for mid, rows in sorted(by_mid.items()):
        data, net = settlement_file(rows, fee)
        before = 0
        earlier: dict[str, list[sqlite3.Row]] = {}
        for row in store.net_before(mid, day):
            earlier.setdefault(row["settle_date"], []).append(row)
        for those in earlier.values():
            before += settlement_file(those, fee)[1]
        path = out / f"acquirer_{mid}_{day}.csv"
        path.write_bytes(data)
        written.append(path)
        bank = settlement_credit_csv(
            net_fen=net,
            booked_on=settle_date,
            serial_no=f"POS{day}{mid[-6:]}",
            memo=f"POS清算 {day} {mid}",
            payer_name=acquirer_name,
            payer_account=acquirer_account,
            opening_fen=opening_balance_fen + before,
        )
        bank_path = out / f"bank_{mid}_{day}.csv"
        bank_path.write_bytes(bank.encode("utf-8"))
        written.append(bank_path)
    return written
