"""Money in Wuye: integer fen, always.

Rules (see docs/adr/0001-integer-money.md):

- Amounts are ``int`` fen in code and ``BigIntegerField`` in the database; names end in ``_fen``.
- Yuan appear only at the edges (screens, files, provider APIs) through :func:`parse_yuan` and
  :func:`format_yuan`, which go through ``Decimal`` strings, never ``float``.
- Every division names its rounding. :func:`div_round` is the one place a ratio becomes fen;
  the house rule is ``HALF_UP`` (四舍五入) applied once, at the end of a calculation.
"""

from __future__ import annotations

import enum
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN_PER_YUAN = 100


class Rounding(enum.StrEnum):
    """How a ratio becomes whole fen."""

    HALF_UP = "half_up"  # 四舍五入 (default)
    UP = "up"  # 进一 (ceiling, away from zero)
    DOWN = "down"  # 去尾 (floor, toward zero)


def div_round(numerator: int, denominator: int, rounding: Rounding = Rounding.HALF_UP) -> int:
    """Divide two integers and round to an integer, symmetric around zero.

    Raises ZeroDivisionError if ``denominator`` is 0.
    """
    if denominator == 0:
        raise ZeroDivisionError("div_round by zero")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    sign = -1 if numerator < 0 else 1
    n = abs(numerator)
    q, r = divmod(n, denominator)
    if rounding is Rounding.HALF_UP:
        if 2 * r >= denominator:
            q += 1
    elif rounding is Rounding.UP:
        if r:
            q += 1
    return sign * q


class MoneyFormatError(ValueError):
    """A yuan amount in a file or form is not a valid amount to the fen."""


def parse_yuan(text: str | int | Decimal) -> int:
    """Parse a yuan amount such as ``"1,234.50"`` or ``"¥12.3"`` into fen.

    Raises MoneyFormatError if it is not a number or has more than two decimals.
    """
    if isinstance(text, int):
        return text * FEN_PER_YUAN
    if isinstance(text, float):  # pragma: no cover - guarded by type hints
        raise MoneyFormatError("float amounts are not accepted; pass a string")
    raw = str(text).strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise MoneyFormatError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise MoneyFormatError(f"not an amount: {text!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise MoneyFormatError(f"more than two decimals: {text!r}")
    return int(fen)


def format_yuan(amount_fen: int, *, symbol: bool = False, grouping: bool = False) -> str:
    """Format fen as a yuan string with two decimals, e.g. ``123456 -> "1234.56"``."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), FEN_PER_YUAN)
    body = f"{yuan:,}" if grouping else str(yuan)
    return f"{sign}{'¥' if symbol else ''}{body}.{fen:02d}"


def decimal_to_scaled_int(value: Decimal | str | int, places: int) -> int:
    """Return ``value`` × 10**places as an exact int (for areas, prices, readings).

    Raises ValueError if ``value`` has more decimals than ``places``.
    """
    d = Decimal(str(value))
    scaled = d.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {places} decimals")
    return int(scaled)


def quantize_half_up(value: Decimal, places: int) -> Decimal:
    """Round a Decimal half-up to ``places`` decimals (for display of rates and areas)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
