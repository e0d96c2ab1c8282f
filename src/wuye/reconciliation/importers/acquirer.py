"""Acquirer settlement file (contract §1): UTF-8 CSV, header, one row per card transaction,
``TRAILER,count,amount,fee,net`` last.

Read with DuckDB's CSV reader; every field of every row is converted and checked in the same
SQL pass that reads the file, and the first bad row is reported with its line and field. Money
goes from text to fen by dropping the decimal point of a strictly two-decimal string: no floats.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
from django.utils.translation import gettext as _

from .. import store
from .base import FileRejected, Parsed, Where, compact_date, yuan_fen

HEADER = (
    "settle_date,txn_date,txn_time,mid,tid,batch_no,stan,rrn,auth_code,txn_type,"
    "card_no,card_type,amount,fee,net_amount,orig_rrn"
)
COLUMNS = HEADER.split(",")

# (field, SQL that is TRUE when the field is bad, message).
_CHECKS: list[tuple[str, str, str]] = [
    (
        "settle_date",
        "NOT regexp_full_match(settle_date, '\\d{8}') OR s_date IS NULL",
        "日期应为 YYYYMMDD",
    ),
    (
        "txn_date",
        "NOT regexp_full_match(txn_date, '\\d{8}') OR try_strptime(txn_date, '%Y%m%d') IS NULL",
        "日期应为 YYYYMMDD",
    ),
    (
        "txn_time",
        "NOT regexp_full_match(txn_time, '\\d{6}') OR local_at IS NULL",
        "时间应为 HHMMSS",
    ),
    ("mid", "NOT regexp_full_match(mid, '[0-9A-Za-z]{1,32}')", "商户号缺失或不合法"),
    ("tid", "NOT regexp_full_match(tid, '[0-9A-Za-z]{1,16}')", "终端号缺失或不合法"),
    ("batch_no", "NOT regexp_full_match(batch_no, '\\d{6}')", "批次号应为 6 位数字"),
    ("stan", "NOT regexp_full_match(stan, '\\d{6}')", "凭证号应为 6 位数字"),
    ("rrn", "NOT regexp_full_match(rrn, '[0-9A-Za-z]{12}')", "参考号应为 12 位"),
    ("auth_code", "NOT regexp_full_match(auth_code, '[0-9A-Za-z]{0,6}')", "授权码不合法"),
    ("txn_type", "txn_type NOT IN ('PURCHASE', 'REFUND')", "交易类型应为 PURCHASE 或 REFUND"),
    (
        "card_no",
        "NOT regexp_full_match(card_no, '\\d{6}\\*{3,9}\\d{4}')",
        "卡号应为掩码卡号(前 6 后 4)",
    ),
    ("card_type", "card_type NOT IN ('DEBIT', 'CREDIT')", "卡类型应为 DEBIT 或 CREDIT"),
    ("amount", "NOT regexp_full_match(amount, '-?\\d{1,13}\\.\\d{2}')", "金额应为两位小数"),
    ("fee", "NOT regexp_full_match(fee, '-?\\d{1,13}\\.\\d{2}')", "金额应为两位小数"),
    ("net_amount", "NOT regexp_full_match(net_amount, '-?\\d{1,13}\\.\\d{2}')", "金额应为两位小数"),
    (
        "amount",
        "(txn_type = 'PURCHASE') <> (amount_fen > 0) OR amount_fen = 0",
        "消费金额应为正、退货金额应为负",
    ),
    ("fee", "sign(fee_fen) * sign(amount_fen) < 0", "手续费的符号应与金额一致"),
    ("net_amount", "net_fen <> amount_fen - fee_fen", "净额不等于金额减手续费"),
    ("orig_rrn", "(txn_type = 'REFUND') <> (orig_rrn <> '')", "退货须带原参考号，消费不得带"),
]
# Messages above are marked for translation here (xgettext sees literal calls only).
_MESSAGES = {
    "日期应为 YYYYMMDD": lambda: _("日期应为 YYYYMMDD"),
    "时间应为 HHMMSS": lambda: _("时间应为 HHMMSS"),
    "商户号缺失或不合法": lambda: _("商户号缺失或不合法"),
    "终端号缺失或不合法": lambda: _("终端号缺失或不合法"),
    "批次号应为 6 位数字": lambda: _("批次号应为 6 位数字"),
    "凭证号应为 6 位数字": lambda: _("凭证号应为 6 位数字"),
    "参考号应为 12 位": lambda: _("参考号应为 12 位"),
    "授权码不合法": lambda: _("授权码不合法"),
    "交易类型应为 PURCHASE 或 REFUND": lambda: _("交易类型应为 PURCHASE 或 REFUND"),
    "卡号应为掩码卡号(前 6 后 4)": lambda: _("卡号应为掩码卡号(前 6 后 4)"),
    "卡类型应为 DEBIT 或 CREDIT": lambda: _("卡类型应为 DEBIT 或 CREDIT"),
    "金额应为两位小数": lambda: _("金额应为两位小数"),
    "消费金额应为正、退货金额应为负": lambda: _("消费金额应为正、退货金额应为负"),
    "手续费的符号应与金额一致": lambda: _("手续费的符号应与金额一致"),
    "净额不等于金额减手续费": lambda: _("净额不等于金额减手续费"),
    "退货须带原参考号，消费不得带": lambda: _("退货须带原参考号，消费不得带"),
}

_LINE = re.compile(r"Line: (\d+)")


def _fen_sql(col: str) -> str:
    # Only read when the field passed its pattern (checks below): digits with the point
    # dropped are the fen. try_cast keeps a bad row from stopping the pass before the check
    # names it.
    return f"try_cast(replace({col}, '.', '') AS BIGINT)"


def parse(
    path: Path,
    name: str,
    *,
    workdir: Path | None = None,
    pg: bool = False,
    company_id: int | None = None,
    columnar_min_rows: int | None = None,
) -> Parsed:
    """Parse and check an acquirer settlement file; return its rows for the writer.

    Rows go out as files DuckDB writes (no Python object per row): a Parquet file
    (``Parsed.parquet``, see :mod:`wuye.reconciliation.store`) when the file has at least
    ``columnar_min_rows`` rows, else a header-less CSV in ``RECORD_COLUMNS`` order
    (``Parsed.records_csv``). With ``company_id``, rows repeating a (kind, reference) already
    imported for the company's card channel near their settlement date are marked duplicates
    too (``is_duplicate``), as are repeats within the file.

    Raises FileRejected (file, line, field) for any damage: header, encoding, a bad field,
    a missing or disagreeing trailer.
    """
    where = Where(name, 1)
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
    if first != HEADER:
        raise where.reject(_("表头不是收单结算文件的表头：%(h)s") % {"h": first[:120]})

    con = duckdb.connect()
    try:
        return _parse(con, path, name, workdir, pg, company_id, columnar_min_rows)
    finally:
        con.close()


def _parse(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str,
    workdir: Path | None,
    pg: bool,
    company_id: int | None,
    columnar_min_rows: int | None,
) -> Parsed:
    cols = ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS)
    fields = ", ".join(f"coalesce({c}, '') AS {c}" for c in COLUMNS)
    case = " ".join(f"WHEN {sql} THEN {i}" for i, (_f, sql, _m) in enumerate(_CHECKS))
    # One pass: read, convert (fen, dates) and check every field of every row; the trailer
    # row is kept (check_no NULL) and looked at separately. A field's surrounding spaces are
    # not trimmed: the patterns reject them.
    try:
        con.execute(
            f"""CREATE TEMP TABLE rows AS
            SELECT *, CASE WHEN settle_date = 'TRAILER' THEN NULL
                           ELSE coalesce(CASE {case} END, -1) END AS check_no
            FROM (
              SELECT *, {_fen_sql("amount")} AS amount_fen, {_fen_sql("fee")} AS fee_fen,
                     {_fen_sql("net_amount")} AS net_fen,
                     CAST(try_strptime(settle_date, '%Y%m%d') AS DATE) AS s_date,
                     try_strptime(txn_date || txn_time, '%Y%m%d%H%M%S') AS local_at
              FROM (
                SELECT row_number() OVER () + 1 AS line_no, {fields}
                FROM read_csv(?, header = true, all_varchar = true, null_padding = true,
                              auto_detect = false, delim = ',', quote = '"', escape = '"',
                              columns = {{{cols}}})))""",  # noqa: S608 - names are ours
            [str(path)],
        )
    except duckdb.Error as exc:
        text = str(exc)
        m = _LINE.search(text)
        raise FileRejected(
            _duck_reason(text), file=name, line=int(m.group(1)) if m else None
        ) from None

    n_lines = con.execute("SELECT max(line_no) FROM rows").fetchone()
    assert n_lines is not None
    last_line = n_lines[0]
    trailers = con.execute(
        "SELECT line_no, txn_date, txn_time, mid, tid, batch_no FROM rows "
        "WHERE check_no IS NULL ORDER BY line_no"
    ).fetchall()
    if not trailers:
        raise FileRejected(_("文件没有 TRAILER 尾行"), file=name, line=(last_line or 1))
    t_line = trailers[0][0]
    if len(trailers) > 1 or t_line != last_line:
        raise FileRejected(_("TRAILER 尾行必须是唯一的最后一行"), file=name, line=t_line)

    bad = con.execute(
        "SELECT line_no, check_no FROM rows WHERE check_no >= 0 ORDER BY line_no LIMIT 1"
    ).fetchone()
    if bad is not None:
        line, check_no = bad
        field, _sql, msg = _CHECKS[check_no]
        sql = f"SELECT {field} FROM rows WHERE line_no = ?"  # noqa: S608 - field is ours
        value = con.execute(sql, [line]).fetchone()
        shown = value[0] if value else ""
        raise FileRejected(
            _MESSAGES[msg]() + _("：“%(v)s”") % {"v": shown}, file=name, line=line, field=field
        )

    trailer = trailers[0]
    tw = Where(name, t_line)
    _count_text, amount_t, fee_t, net_t = trailer[1], trailer[2], trailer[3], trailer[4]
    if not _count_text.isdigit():
        raise tw.reject(_("TRAILER 的笔数不是整数：“%(v)s”") % {"v": _count_text}, "count")
    t_count = int(_count_text)
    t_amount = yuan_fen(amount_t, tw, "amount")
    t_fee = yuan_fen(fee_t, tw, "fee")
    t_net = yuan_fen(net_t, tw, "net_amount")
    if trailer[5]:
        raise tw.reject(_("TRAILER 尾行的列数不对"))
    sums = con.execute(
        "SELECT count(*), coalesce(sum(amount_fen), 0), coalesce(sum(fee_fen), 0), "
        "coalesce(sum(net_fen), 0), min(s_date), max(s_date) FROM rows WHERE check_no = -1"
    ).fetchone()
    assert sums is not None
    count, s_amount, s_fee, s_net = (int(v) for v in sums[:4])
    for label, promised, actual in (
        ("count", t_count, count),
        ("amount", t_amount, s_amount),
        ("fee", t_fee, s_fee),
        ("net_amount", t_net, s_net),
    ):
        if promised != actual:
            raise tw.reject(
                _("TRAILER 与明细不符：尾行 %(p)s，明细合计 %(a)s") % {"p": promised, "a": actual},
                label,
            )

    parsed = Parsed(
        kind="acquirer",
        row_count=count,
        total_fen=s_amount,
        fee_milli_fen=s_fee * 1000,
        net_fen=s_net,
    )
    # Duplicates: a (kind, reference) seen on an earlier line, or already imported.
    kind_sql = "CASE txn_type WHEN 'PURCHASE' THEN 'payment' ELSE 'refund' END"
    con.execute(
        """CREATE TEMP TABLE dup AS SELECT line_no FROM rows r JOIN (
              SELECT txn_type, rrn, min(line_no) AS keep FROM rows WHERE check_no = -1
              GROUP BY txn_type, rrn HAVING count(*) > 1
            ) d USING (txn_type, rrn) WHERE r.line_no <> d.keep"""
    )
    if company_id is not None and count:
        first_day, last_day = sums[4], sums[5]
        store.prior_references_load(
            con,
            company_id,
            "card",
            first_day - timedelta(days=store.DUP_WINDOW_DAYS),
            last_day + timedelta(days=store.DUP_WINDOW_DAYS + 1),
        )
        con.execute(
            f"""INSERT INTO dup SELECT line_no FROM rows
                WHERE check_no = -1 AND ({kind_sql}, rrn) IN (SELECT (kind, reference) FROM prior)
                  AND line_no NOT IN (SELECT line_no FROM dup)"""  # noqa: S608
        )
    # Rows in RECORD_COLUMNS order (+ is_duplicate); txn_at is UTC (files carry China time).
    select = f"""SELECT 'card' AS channel, mid AS merchant_no, s_date AS settle_date,
                  local_at - INTERVAL 8 HOUR AS txn_at, rrn AS reference, '' AS order_no,
                  {kind_sql} AS kind, amount_fen, fee_fen * 1000 AS fee_milli_fen, net_fen,
                  card_no AS masked_pan, lower(card_type) AS card_type, '' AS funding_source,
                  orig_rrn AS orig_reference, '' AS refund_reference, auth_code, tid,
                  batch_no AS batch, stan, line_no,
                  line_no IN (SELECT line_no FROM dup) AS is_duplicate
           FROM rows WHERE check_no = -1"""  # noqa: S608
    base = path.with_name(path.name + ".records") if workdir is None else workdir / "rec"
    if columnar_min_rows is not None and count >= columnar_min_rows:
        out = base.with_suffix(".parquet")
        con.execute(f"COPY ({select}) TO {_quote(out)} (FORMAT parquet, COMPRESSION zstd)")
        parsed.parquet = out
    else:
        # The database gets CSV: text timestamps (an explicit offset for timestamptz).
        offset = "+00" if pg else ""
        out = base.with_suffix(".csv")
        con.execute(
            f"""COPY (SELECT * REPLACE (
                        strftime(settle_date, '%Y-%m-%d') AS settle_date,
                        strftime(txn_at, '%Y-%m-%d %H:%M:%S') || '{offset}' AS txn_at,
                        CASE WHEN is_duplicate THEN 'true' ELSE 'false' END AS is_duplicate)
                      FROM ({select}) ORDER BY line_no)
                TO {_quote(out)} (FORMAT csv, HEADER false, FORCE_QUOTE *)"""  # noqa: S608
        )
        parsed.records_csv = out
    settlements: list[dict[str, Any]] = []
    for mid, sdate, n, gross, fee, net in con.execute(
        """SELECT mid, settle_date, count(*), sum(amount_fen), sum(fee_fen), sum(net_fen)
           FROM rows WHERE check_no = -1 GROUP BY mid, settle_date ORDER BY mid, settle_date"""
    ).fetchall():
        settlements.append(
            {
                "channel": "card",
                "merchant_no": mid,
                "settle_date": compact_date(sdate, Where(name), "settle_date"),
                "row_count": int(n),
                "gross_fen": int(gross),
                "fee_fen": int(fee),
                "net_fen": int(net),
            }
        )
    parsed.settlements = settlements
    return parsed


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _duck_reason(text: str) -> str:
    for line in text.splitlines():
        low = line.lower()
        if "unicode" in low or "utf-8" in low:
            return _("文件不是 UTF-8 编码")
        if "expected number of columns" in low:
            return _("列数不对：%(d)s") % {"d": line.strip()}
    return _("CSV 格式错误：%(d)s") % {"d": text.splitlines()[0][:200]}
