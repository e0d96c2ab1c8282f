"""Validators for Chinese identifiers, backed by python-stdnum where it has them."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError as StdnumError

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
BANK_ACCOUNT_RE = re.compile(r"^\d{8,30}$")


def validate_uscc(value: str) -> None:
    """统一社会信用代码: 18 characters with a GB 32100-2015 check character."""
    try:
        uscc.validate(value)
    except StdnumError as exc:
        raise ValidationError(_("统一社会信用代码无效: %(v)s"), params={"v": value}) from exc


def validate_phone(value: str) -> None:
    """A mainland mobile number (11 digits) or a landline with area code."""
    compact = value.replace(" ", "")
    if not (MOBILE_RE.match(compact) or LANDLINE_RE.match(compact)):
        raise ValidationError(_("电话号码无效: %(v)s"), params={"v": value})


def validate_id_card(value: str) -> None:
    """居民身份证号: 18 characters, valid birth date and ISO 7064 check character."""
    try:
        ric.validate(value)
    except StdnumError as exc:
        # Never echo the full number: error messages end up in logs and import reports.
        shown = mask_id_card(value) if len(ric.compact(value)) == 18 else "…"
        raise ValidationError(_("身份证号无效: %(v)s"), params={"v": shown}) from exc


def validate_bank_account(value: str) -> None:
    """A settlement account number: 8 to 30 digits (spaces allowed between groups)."""
    if not BANK_ACCOUNT_RE.match(value.replace(" ", "")):
        raise ValidationError(_("结算账号应为8至30位数字: %(v)s"), params={"v": value})


def mask_id_card(value: str) -> str:
    """Keep the first 6 and last 4 characters: ``110101********1234``."""
    v = ric.compact(value)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_phone(value: str) -> str:
    """Keep the first 3 and last 4 digits of a mobile number: ``138****5678``."""
    v = value.replace(" ", "")
    return v[:3] + "****" + v[-4:] if len(v) == 11 else v
