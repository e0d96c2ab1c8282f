"""What the POS shows: payee and amount to confirm, "insert / swipe / tap card", PIN entry
(masked), result and slip.

``HeadlessScreen`` presents the ``--auto-card``/``--auto-pin`` card by itself and logs each
screen (the demo terminal and the tests use it); ``CursesScreen`` is the interactive one, on a
terminal window, with the keys a POS has: digits, Enter (确认), Backspace (更正), Esc (取消).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, Protocol

from django.utils.translation import gettext as _

from wuye.posterm.card import Card, CardError

log = logging.getLogger("wuye.posterm")


def yuan(fen: int) -> str:
    """Return ``¥1,280.00`` for 128000 fen."""
    return f"¥{fen // 100:,}.{fen % 100:02d}"


class Screen(Protocol):
    """The terminal's display and keypad."""

    def show(self, title: str, lines: list[str]) -> None:
        """Put a screen up."""

    def confirm(self, payee: str, amount_fen: int, kind: str) -> bool:
        """Show payee and amount; return whether the resident confirms."""

    def read_card(self, amount_fen: int, entry_modes: list[str]) -> Card | None:
        """Ask for the card (insert / swipe / tap); return it, or None when cancelled."""

    def read_pin(self, attempt: int) -> str | None:
        """Ask for the PIN (masked); return it, or None for no PIN."""


class HeadlessScreen:
    """A screen without a person: shows go to the log (and stdout), the card comes by itself."""

    def __init__(
        self,
        *,
        auto_card: str | None,
        auto_pin: str | None,
        entry: str = "chip",
        echo: Callable[[str], Any] | None = None,
    ) -> None:
        self.auto_card = auto_card
        self.auto_pin = auto_pin
        self.entry = entry
        self.echo = echo

    def show(self, title: str, lines: list[str]) -> None:
        """Log the screen."""
        text = f"[{title}] " + " | ".join(lines)
        if text == getattr(self, "_last", None):
            return
        self._last = text
        log.info("screen %s", text)
        if self.echo:
            self.echo(text)

    def confirm(self, payee: str, amount_fen: int, kind: str) -> bool:
        """Show the request and confirm it (the headless terminal always does)."""
        self.show(_("请确认"), [payee, yuan(amount_fen)])
        return True

    def read_card(self, amount_fen: int, entry_modes: list[str]) -> Card | None:
        """Present the configured card; None (cancel) when there is none."""
        self.show(_("请插卡/刷卡/挥卡"), [yuan(amount_fen)])
        if not self.auto_card:
            return None
        entry = self.entry if self.entry in entry_modes else entry_modes[0]
        return Card(self.auto_card, entry=entry)

    def read_pin(self, attempt: int) -> str | None:
        """Enter the configured PIN."""
        self.show(_("请输入密码"), ["*" * len(self.auto_pin or "")])
        return self.auto_pin


class CursesScreen:
    """An interactive POS screen in a terminal window (``curses``)."""

    def __init__(self, stdscr: Any, *, header: str) -> None:
        self.scr = stdscr
        self.header = header

    def _put(self, y: int, text: str) -> None:
        height, width = self.scr.getmaxyx() if hasattr(self.scr, "getmaxyx") else (24, 80)
        if y >= height - 1:
            return
        cut, used = "", 0
        for ch in text:  # CJK characters take two columns
            used += 2 if ord(ch) > 0x2E7F else 1
            if used >= width:
                break
            cut += ch
        try:
            self.scr.addstr(y, 0, cut)
        except Exception as exc:  # curses.error at the window's edge: show less
            log.debug("screen line %s not drawn: %s", y, exc)

    def show(self, title: str, lines: list[str]) -> None:
        """Draw a screen: header, title, lines (cut to the window)."""
        self.scr.erase()
        self._put(0, self.header)
        self._put(2, title)
        for i, line in enumerate(lines):
            self._put(4 + i, line)
        self.scr.refresh()

    def _line(self, title: str, lines: list[str], *, mask: bool, max_len: int) -> str | None:
        typed = ""
        while True:
            shown = "*" * len(typed) if mask else typed
            self.show(title, [*lines, "", "> " + shown])
            key = self.scr.get_wch()
            if key in ("\n", "\r"):
                return typed
            if key == "\x1b":
                return None
            if key in ("\x7f", "\b", 263):
                typed = typed[:-1]
            elif isinstance(key, str) and key.isdigit() and len(typed) < max_len:
                typed += key

    def confirm(self, payee: str, amount_fen: int, kind: str) -> bool:
        """Ask the resident to confirm payee and amount (Enter) or cancel (Esc)."""
        while True:
            self.show(
                _("请确认"),
                [
                    _("收款方: ") + payee,
                    _("金额: ") + yuan(amount_fen),
                    "",
                    _("确认请按回车, 取消请按 Esc"),
                ],
            )
            key = self.scr.get_wch()
            if key in ("\n", "\r"):
                return True
            if key == "\x1b":
                return False

    def read_card(self, amount_fen: int, entry_modes: list[str]) -> Card | None:
        """Ask for the card: the reader is simulated by typing the PAN, then the entry mode."""
        while True:
            pan = self._line(
                _("请插卡/刷卡/挥卡"),
                [yuan(amount_fen), _("(输入卡号模拟读卡)")],
                mask=False,
                max_len=19,
            )
            if pan is None:
                return None
            choices = {"1": "chip", "2": "stripe", "3": "tap"}
            how = self._line(_("读卡方式"), [_("1 插卡  2 刷卡  3 挥卡")], mask=False, max_len=1)
            if how is None:
                return None
            try:
                return Card(pan, entry=choices.get(how, "chip"))
            except CardError as exc:
                self.show(_("读卡失败"), [str(exc)])
                self.scr.get_wch()

    def read_pin(self, attempt: int) -> str | None:
        """Ask for the PIN, shown as asterisks; an empty entry means no PIN."""
        lines = [] if attempt == 1 else [_("密码错误, 请重新输入")]
        pin = self._line(_("请输入密码"), lines, mask=True, max_len=12)
        return pin or None


def stdout_echo(text: str) -> None:
    """Write one screen line to stdout (headless mode)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
