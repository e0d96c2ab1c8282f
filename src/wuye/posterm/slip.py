"""The cardholder slip (持卡人存根): text for the screen and files, ESC/POS bytes for printers."""

from __future__ import annotations

from pathlib import Path

from escpos.printer import Dummy

from wuye.posterm.config import TerminalConfig
from wuye.posterm.engine import Outcome

KIND_NAMES = {
    "purchase": "消费/SALE",
    "void": "消费撤销/VOID",
    "refund": "退货/REFUND",
    "balance": "余额查询/BALANCE",
}
ENTRY_NAMES = {"stripe": "刷卡 S", "chip": "插卡 I", "tap": "挥卡 C", "manual": "手输 M"}
WIDTH = 32


def _yuan(fen: int) -> str:
    return f"RMB {fen // 100:,}.{fen % 100:02d}"


def slip_text(
    out: Outcome, cfg: TerminalConfig, *, copy: str = "持卡人存根 CARDHOLDER COPY"
) -> str:
    """Return the slip as text lines (masked PAN only)."""
    lines = [
        "银联POS签购单".center(WIDTH - 6),
        copy,
        "-" * WIDTH,
        f"商户名称: {cfg.merchant_name or cfg.receipt_header}",
        f"商户编号: {cfg.mid}",
        f"终端编号: {cfg.tid}  操作员: {cfg.operator}",
        f"卡号: {out.masked_pan} ({ENTRY_NAMES.get(out.entry_mode, out.entry_mode)})",
        f"卡类别: {'贷记卡' if out.card_type == 'CREDIT' else '借记卡'}",
        f"交易类型: {KIND_NAMES.get(out.kind, out.kind)}",
        f"批次号: {out.batch}  凭证号: {out.stan}",
        f"参考号: {out.rrn}",
        f"授权码: {out.auth_code}",
        f"日期时间: {out.txn_date[:4]}/{out.txn_date[4:6]}/{out.txn_date[6:]} "
        f"{out.txn_time[:2]}:{out.txn_time[2:4]}:{out.txn_time[4:]}",
        f"金额: {'-' if out.kind in ('void', 'refund') else ''}{_yuan(out.amount_fen)}",
    ]
    if out.original:
        lines.append(
            f"原参考号: {out.original.get('rrn', '')}  原凭证号: {out.original.get('stan', '')}"
        )
    if out.training:
        lines.append("*** 培训交易 TRAINING - 不入账 ***")
    lines.append("-" * WIDTH)
    if out.entry_mode == "tap" and out.kind == "purchase" and out.amount_fen < 100_000:
        lines.append("免签 (NO SIGNATURE REQUIRED)")
    else:
        lines += [
            "持卡人签名 CARDHOLDER SIGNATURE:",
            "",
            "_" * WIDTH,
            "本人确认以上交易，同意将其记入本卡账户",
        ]
    return "\n".join(lines) + "\n"


def slip_escpos(text: str) -> bytes:
    """Return the slip as ESC/POS bytes (GB18030 text, cut), as a thermal printer takes it."""
    printer = Dummy()
    printer._raw(b"\x1b\x40")  # initialise
    printer._raw(b"\x1c\x26")  # enter Chinese (double-byte) mode
    printer._raw(text.encode("gb18030"))
    printer._raw(b"\x1c\x2e")
    printer.cut()
    return bytes(printer.output)


def write_slip(out: Outcome, cfg: TerminalConfig, slip_dir: Path) -> Path:
    """Write ``<batch>-<stan>-<kind>`` ``.txt`` and ``.escpos`` files; return the text one."""
    slip_dir.mkdir(parents=True, exist_ok=True)
    text = slip_text(out, cfg)
    base = slip_dir / f"{out.batch}-{out.stan}-{out.kind}"
    base.with_suffix(".txt").write_text(text, encoding="utf-8")
    base.with_suffix(".escpos").write_bytes(slip_escpos(text))
    return base.with_suffix(".txt")
