"""The POS screens: confirm, card, masked PIN, slip."""

from __future__ import annotations

from wuye.posterm.card import Card
from wuye.posterm.config import TerminalConfig
from wuye.posterm.engine import Outcome
from wuye.posterm.screen import CursesScreen, HeadlessScreen
from wuye.posterm.slip import slip_escpos, slip_text


class FakeWindow:
    """Enough of a curses window: keys in, drawn text out."""

    def __init__(self, keys: str) -> None:
        self.keys = list(keys)
        self.drawn: list[str] = []

    def erase(self) -> None:
        self.drawn.append("--")

    def addstr(self, y: int, x: int, text: str) -> None:
        self.drawn.append(text)

    def refresh(self) -> None:
        pass

    def get_wch(self) -> str:
        return self.keys.pop(0)


def test_the_pin_is_shown_masked_and_returned():
    win = FakeWindow("6543\x7f21\n")
    pin = CursesScreen(win, header="申和物业").read_pin(1)
    assert pin == "65421"
    assert "> *****" in win.drawn and not any("654" in d for d in win.drawn)


def test_confirm_shows_payee_and_amount_and_esc_cancels():
    win = FakeWindow("\x1b")
    assert CursesScreen(win, header="h").confirm("上海申和物业", 128000, "purchase") is False
    assert any("上海申和物业" in d for d in win.drawn) and any("¥1,280.00" in d for d in win.drawn)


def test_a_card_is_read_from_the_keypad_with_its_entry_mode():
    win = FakeWindow("6222021000000000017\n3\n")
    card = CursesScreen(win, header="h").read_card(100, ["chip", "tap"])
    assert card == Card("6222021000000000017", entry="tap")


def test_the_headless_screen_presents_its_card_and_never_echoes_the_pan():
    lines: list[str] = []
    screen = HeadlessScreen(auto_card="6222021000000000017", auto_pin="123456", echo=lines.append)
    card = screen.read_card(100, ["stripe", "chip"])
    assert card is not None and card.entry == "chip"
    assert screen.read_pin(1) == "123456"
    assert not any("6222021000000000017" in s or "123456" in s for s in lines)


def _outcome(**kw) -> Outcome:
    base = dict(
        kind="purchase",
        approved=True,
        response_code="00",
        rrn="112200000002",
        auth_code="J4TU4H",
        masked_pan="622202*********0017",
        batch="000001",
        stan="000002",
        amount_fen=128000,
        card_type="DEBIT",
        entry_mode="chip",
        txn_date="20261122",
        txn_time="093015",
    )
    base.update(kw)
    return Outcome(**base)


CFG = TerminalConfig(
    tid="10000001", mid="898310048990001", tmk=bytes(16), merchant_name="上海申和物业"
)


def test_the_slip_has_what_a_cardholder_copy_has():
    text = slip_text(_outcome(), CFG)
    for part in (
        "上海申和物业",
        "10000001",
        "898310048990001",
        "622202*********0017",
        "插卡",
        "000001",
        "000002",
        "112200000002",
        "J4TU4H",
        "RMB 1,280.00",
        "2026/11/22 09:30:15",
        "持卡人签名",
    ):
        assert part in text, part
    assert slip_escpos(text).endswith(b"\x1dV\x00")


def test_a_small_tap_needs_no_signature():
    text = slip_text(_outcome(entry_mode="tap", amount_fen=5000), CFG)
    assert "免签" in text and "持卡人签名" not in text


def test_the_screens_speak_english_too():
    from django.utils import translation

    win = FakeWindow("\x1b")
    with translation.override("en"):
        CursesScreen(win, header="h").confirm("Shenhe", 100, "purchase")
    assert "Please confirm" in win.drawn and any("Enter to confirm" in d for d in win.drawn)
