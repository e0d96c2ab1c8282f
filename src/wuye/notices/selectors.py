"""Reads of the notices app: what one page of a notice shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from wuye.billing.selectors import open_bills
from wuye.estates.models import Resident
from wuye.notices.models import Notice


@dataclass(frozen=True)
class NoticeLine:
    fee_item: str
    period: str
    due_date: date
    outstanding_fen: int
    late_fee_fen: int

    @property
    def total_fen(self) -> int:
        return self.outstanding_fen + self.late_fee_fen


@dataclass(frozen=True)
class NoticePage:
    """Everything printed on one household's notice."""

    notice_id: int
    company: str
    community: str
    household: str
    resident: str
    as_of: date
    lines: tuple[NoticeLine, ...]
    outstanding_fen: int
    late_fee_fen: int
    total_fen: int
    pay_url: str


def notice_lines(notice: Notice) -> list[NoticeLine]:
    """Return the notice's bills as they stood on its date, oldest due first."""
    wanted = set(notice.bill_ids)
    return [
        NoticeLine(
            fee_item=x.fee_item_name,
            period=f"{x.period_start:%Y-%m}",
            due_date=x.due_date,
            outstanding_fen=x.outstanding_fen,
            late_fee_fen=x.late_fee_fen,
        )
        for x in open_bills(unit_id=notice.unit_id, as_of=notice.as_of)
        if x.bill_id in wanted
    ]


def notice_page(notice: Notice, *, pay_url: str) -> NoticePage:
    """Return the page of ``notice`` (company, household, bills, totals, pay URL)."""
    unit = notice.unit
    resident = Resident.objects.filter(unit_id=unit.pk).order_by("-is_primary", "pk").first()
    return NoticePage(
        notice_id=notice.pk,
        company=notice.community.company.name,
        community=notice.community.name,
        household=unit.label,
        resident=resident.name if resident else "",
        as_of=notice.as_of,
        lines=tuple(notice_lines(notice)),
        outstanding_fen=notice.outstanding_fen,
        late_fee_fen=notice.late_fee_fen,
        total_fen=notice.total_fen,
        pay_url=pay_url,
    )
