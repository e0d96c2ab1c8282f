"""Option parsing the reconcile subcommands share."""

from __future__ import annotations

from datetime import date, datetime

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from wuye.estates.models import Company


def parse_day(text: str, option: str = "--date") -> date:
    """Parse ``YYYYMMDD`` (or ``YYYY-MM-DD``); raise CommandError naming ``option``."""
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except (TypeError, ValueError):
            continue
    raise CommandError(f"{option}: expected YYYYMMDD, got {text!r}")


def company_pick(value: str | None) -> Company:
    """Return the company named by id or 统一社会信用代码, or the only one; raise CommandError."""
    if value:
        company = Company.objects.filter(uscc=value.strip().upper()).first()
        if company is None and value.strip().isdigit():
            company = Company.objects.filter(pk=int(value)).first()
        if company is None:
            raise CommandError(f"--company: no company {value!r}")
        return company
    companies = list(Company.objects.order_by("pk")[:2])
    if len(companies) != 1:
        raise CommandError(
            "--company: required (there are %s companies)" % ("no" if not companies else "several")
        )
    return companies[0]


def user_pick(username: str | None) -> object | None:
    """Return the user named ``username`` (None for none); raise CommandError if unknown."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"--user: no user {username!r}")
    return user
