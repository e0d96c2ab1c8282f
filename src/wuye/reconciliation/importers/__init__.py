"""Import settlement files and bank statements: :func:`file_import`, one module per layout.

=============  ============================================  =====================
kind           layout                                        module
=============  ============================================  =====================
``acquirer``   card acquirer settlement CSV (contract §1)     :mod:`.acquirer`
``wechat``     WeChat Pay trade bill (§2)                     :mod:`.wechat`
``alipay``     Alipay bill, GBK CSV in a zip (§3)             :mod:`.alipay`
``bank_csv``   bank statement CSV (§4)                        :mod:`.bank`
``bank_mt940`` bank statement MT940 (§4)                      :mod:`.bank`
=============  ============================================  =====================

A file is checked whole before anything is written; then its rows go in with one bulk insert
per table inside one transaction. The same bytes twice (same sha256 for the company) return
the first import's ``SourceFile`` and add nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from wuye.estates.models import Company
from wuye.merchants.models import Merchant
from wuye.reconciliation.models import (
    MERCHANT_CHANNEL,
    BankMovement,
    ChannelRecord,
    ChannelSettlement,
    SourceFile,
)

from .. import store
from . import acquirer, alipay, bank, wechat
from .base import (
    MOVEMENT_COLUMNS,
    RECORD_COLUMNS,
    FileRejected,
    Parsed,
    bulk_insert,
    bulk_insert_csv,
)

__all__ = ["FileRejected", "ImportResult", "file_import", "sniff"]

KINDS = tuple(SourceFile.Kind.values)


@dataclass(frozen=True)
class ImportResult:
    """What :func:`file_import` did: the file's row and whether this call created it."""

    source: SourceFile
    created: bool


def sniff(data: bytes, name: str = "") -> str:
    """Return the kind of a settlement file or statement from its first bytes.

    Raises FileRejected if it is none of the known layouts.
    """
    if data[:4] == b"PK\x03\x04":
        return "alipay"
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    if head.startswith(acquirer.HEADER.encode()):
        return "acquirer"
    if head.startswith("交易时间,公众账号ID".encode()):
        return "wechat"
    if head.startswith(b"txn_date,value_date,serial_no"):
        return "bank_csv"
    stripped = head.lstrip()
    if stripped.startswith((b":20:", b"{1:")) or b"\n:20:" in head:
        return "bank_mt940"
    raise FileRejected(_("无法识别的文件格式"), file=name or "?", line=1)


def file_import(
    source: str | Path | bytes,
    *,
    company: Company,
    kind: str | None = None,
    user: Any = None,
    name: str | None = None,
    account_no: str = "",
    now: datetime | None = None,
) -> ImportResult:
    """Check and import one file (a path or its bytes) for ``company``; return its SourceFile.

    ``kind`` is sniffed when None. ``account_no`` names the account of a bank CSV (the CSV
    has no account column; MT940 carries its own). Importing the same bytes again returns the
    first import with ``created=False``.

    Raises FileRejected naming the file, line and field of the first problem; nothing of a
    rejected file is written.
    """
    if isinstance(source, bytes):
        data, path = source, None
        display = name or "upload"
    else:
        path = Path(source)
        display = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FileRejected(str(exc), file=display) from None
    digest = hashlib.sha256(data).hexdigest()
    existing = SourceFile.objects.filter(company=company, sha256=digest).first()
    if existing is not None:
        return ImportResult(existing, False)
    if kind is None:
        kind = sniff(data, display)
    if kind not in KINDS:
        raise FileRejected(_("未知的文件类型：%(k)s") % {"k": kind}, file=display)

    with tempfile.TemporaryDirectory(prefix="wuye-import-") as tmp:
        return _import(kind, data, path, display, account_no, digest, Path(tmp), company, user, now)


def _import(
    kind: str,
    data: bytes,
    path: Path | None,
    display: str,
    account_no: str,
    digest: str,
    workdir: Path,
    company: Company,
    user: Any,
    now: datetime | None,
) -> ImportResult:
    parsed = _parse(kind, data, path, display, account_no, workdir, company.pk)
    if parsed.records:
        parsed.records = _mark_duplicates(parsed.records, company.pk)
    merchants = company_merchants(company)
    _check_merchants(parsed, merchants, display)
    if parsed.movements:
        parsed.movements = [_recognised(m, merchants) for m in parsed.movements]
    when = now or timezone.now()
    try:
        with transaction.atomic():
            sf = SourceFile.objects.create(
                company=company,
                kind=kind,
                original_name=display[:255],
                sha256=digest,
                size_bytes=len(data),
                row_count=parsed.row_count,
                total_fen=parsed.total_fen,
                fee_milli_fen=parsed.fee_milli_fen,
                net_fen=parsed.net_fen,
                account_no=parsed.account_no,
                columnar=parsed.parquet is not None,
                imported_at=when,
                imported_by=user,
            )
            _write(sf, parsed, display)
    except IntegrityError as exc:
        if SourceFile.objects.filter(company=company, sha256=digest).exists():
            # Imported concurrently by someone else: same answer as a second import.
            return ImportResult(SourceFile.objects.get(company=company, sha256=digest), False)
        raise FileRejected(_("与已导入的数据冲突：%(e)s") % {"e": exc}, file=display) from None
    return ImportResult(sf, True)


def _parse(
    kind: str,
    data: bytes,
    path: Path | None,
    display: str,
    account_no: str,
    workdir: Path,
    company_id: int,
) -> Parsed:
    if kind == "acquirer":
        pg = connection.vendor == "postgresql"
        if path is None:
            path = workdir / "upload.csv"
            path.write_bytes(data)
        return acquirer.parse(
            path,
            display,
            workdir=workdir,
            pg=pg,
            company_id=company_id,
            columnar_min_rows=store.COLUMNAR_MIN_ROWS,
        )
    if kind == "wechat":
        return wechat.parse(data, display)
    if kind == "alipay":
        return alipay.parse(data, display)
    if kind == "bank_csv":
        return bank.parse_csv(data, display, account_no=account_no)
    return bank.parse_mt940(data, display)


def _mark_duplicates(records: list[tuple[Any, ...]], company_id: int) -> list[tuple[Any, ...]]:
    """Append ``is_duplicate`` to each record: its (kind, reference) came on an earlier line
    or was already imported for the channel near its settlement date (few rows: QR bills)."""
    i_channel, i_date = RECORD_COLUMNS.index("channel"), RECORD_COLUMNS.index("settle_date")
    i_ref, i_kind = RECORD_COLUMNS.index("reference"), RECORD_COLUMNS.index("kind")
    window = timedelta(days=store.DUP_WINDOW_DAYS)
    seen: set[tuple[str, str, str]] = set()
    for channel in {r[i_channel] for r in records}:
        days = [r[i_date] for r in records if r[i_channel] == channel]
        con = duckdb.connect()
        try:
            store.prior_references_load(
                con, company_id, channel, min(days) - window, max(days) + window + timedelta(1)
            )
            seen |= {(channel, k, ref) for k, ref in con.execute("SELECT * FROM prior").fetchall()}
        finally:
            con.close()
    out = []
    for r in records:
        key = (r[i_channel], r[i_kind], r[i_ref])
        out.append((*r, key in seen))
        seen.add(key)
    return out


def company_merchants(company: Company) -> dict[str, str]:
    """Return the company's merchant numbers mapped to reconciliation channels."""
    channel_of = {mc: rc for rc, mc in MERCHANT_CHANNEL.items()}
    return {
        m.merchant_no: channel_of[m.channel]
        for m in Merchant.objects.filter(company=company)
        if m.channel in channel_of
    }


def _check_merchants(parsed: Parsed, merchants: dict[str, str], display: str) -> None:
    for s in parsed.settlements:
        if merchants.get(s["merchant_no"]) != s["channel"]:
            raise FileRejected(
                _("商户号 %(m)s 不是本公司的%(c)s商户")
                % {"m": s["merchant_no"], "c": s["channel"]},
                file=display,
            )


def _recognised(row: tuple[object, ...], merchants: dict[str, str]) -> tuple[object, ...]:
    if row[4] != "C":
        return row
    channel, merchant_no, settle_date = bank.recognise(str(row[9]), merchants)
    return (*row[:10], channel, merchant_no, settle_date, row[13])


def _write(sf: SourceFile, parsed: Parsed, display: str) -> None:
    for s in parsed.settlements:
        clash = ChannelSettlement.objects.filter(
            company_id=sf.company_id,
            channel=s["channel"],
            merchant_no=s["merchant_no"],
            settle_date=s["settle_date"],
        ).first()
        if clash is not None:
            raise FileRejected(
                _("商户 %(m)s 在 %(d)s 的结算已由文件 %(f)s 导入")
                % {"m": s["merchant_no"], "d": s["settle_date"], "f": clash.source.original_name},
                file=display,
            )
    ChannelSettlement.objects.bulk_create(
        [ChannelSettlement(source=sf, company_id=sf.company_id, **s) for s in parsed.settlements]
    )
    prefix = (sf.pk, sf.company_id)
    if parsed.records:
        bulk_insert(ChannelRecord._meta.db_table, RECORD_COLUMNS, parsed.records, prefix=prefix)
    if parsed.records_csv is not None:
        bulk_insert_csv(
            ChannelRecord._meta.db_table, RECORD_COLUMNS, parsed.records_csv, prefix=prefix
        )
    if parsed.parquet is not None:
        # The rows stay columnar; the file counts only through this SourceFile row (store).
        store.parquet_install(parsed.parquet, sf.company_id, sf.sha256)
    if parsed.movements:
        serials = [m[1] for m in parsed.movements]
        known = set(
            BankMovement.objects.filter(
                company_id=sf.company_id, account_no=parsed.account_no, serial_no__in=serials
            ).values_list("serial_no", flat=True)
        )
        # A statement overlapping an earlier one (or the CSV after the MT940 of the same
        # day) adds only the movements not yet known.
        fresh = [m for m in parsed.movements if m[1] not in known]
        if fresh:
            bulk_insert(BankMovement._meta.db_table, MOVEMENT_COLUMNS, fresh, prefix=prefix)
        sf.row_count = len(fresh)
        sf.save(update_fields=["row_count"])
