"""Reads for receipts: what a user may see, the stored content, and the public verification."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from wuye.accounts.selectors import user_community_filter
from wuye.receipts.content import ReceiptContent
from wuye.receipts.models import Receipt

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"


def receipts_for(user: Any, roles: frozenset[str] | set[str]) -> QuerySet[Receipt]:
    """Return the receipts of the communities where ``user`` holds one of ``roles``."""
    return Receipt.objects.filter(user_community_filter(user, roles=set(roles))).select_related(
        "community", "company"
    )


def receipt_content(receipt: Receipt) -> ReceiptContent:
    """Return the content the receipt was issued with."""
    return ReceiptContent.from_json(receipt.content)


def receipt_for_reference(*, reference: str, kind: str = "payment") -> Receipt | None:
    """Return the receipt of ``kind`` issued for the payment (or refund) ``reference``."""
    return Receipt.objects.filter(kind=kind, reference=reference).first()


def public_base_url() -> str:
    """Return the absolute base URL printed in QR codes (``WUYE_PUBLIC_BASE_URL``)."""
    base = getattr(settings, "WUYE_PUBLIC_BASE_URL", None) or os.environ.get(
        "WUYE_PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL
    )
    return str(base).rstrip("/")


def receipt_verify_url(receipt: Receipt) -> str:
    """Return the absolute URL of the receipt's public verification page."""
    return f"{public_base_url()}/r/{receipt.verify_token}/"


def mask_household_label(label: str) -> str:
    """Return the household label with the room hidden: ``1-2-301`` → ``1-2-3**``."""
    head, sep, room = label.rpartition("-")
    if not sep:
        head, room = "", label
    keep = 1 if len(room) > 2 else 0
    masked = room[:keep] + "*" * max(len(room) - keep, 1)
    return f"{head}{sep}{masked}"


@dataclass(frozen=True)
class ReceiptVerification:
    """What the public verification page may show: no names, a masked household."""

    company_name: str
    company_uscc: str
    community_name: str
    number: str
    kind: str
    kind_label: str
    amount_fen: int
    issued_at: datetime
    household_masked: str
    valid: bool
    state: str
    state_label: str
    voided_at: datetime | None


def receipt_verification(*, token: str) -> ReceiptVerification | None:
    """Return what anyone holding the QR code may learn about the receipt, or None."""
    if not token or len(token) > 40:
        return None
    receipt = (
        Receipt.objects.select_related("company", "community").filter(verify_token=token).first()
    )
    if receipt is None:
        return None
    content = receipt_content(receipt)
    return ReceiptVerification(
        company_name=content.company_name,
        company_uscc=content.company_uscc,
        community_name=content.community_name,
        number=receipt.number,
        kind=receipt.kind,
        kind_label=str(receipt.get_kind_display()),
        amount_fen=receipt.amount_fen,
        issued_at=receipt.issued_at,
        household_masked=mask_household_label(receipt.household_label),
        # A pending void request does not invalidate the receipt until approved.
        valid=receipt.state != Receipt.State.VOID,
        state=receipt.state,
        state_label=str(receipt.get_state_display()),
        voided_at=receipt.void_approved_at,
    )


def receipt_printers() -> dict[str, tuple[str, int]]:
    """Return the network ESC/POS printers by name.

    From the setting ``WUYE_RECEIPT_PRINTERS`` (a dict name → ``"host:port"``) or the
    environment variable of that name (``counter-1=192.168.1.50:9100;counter-2=…``).
    """
    raw: Any = getattr(settings, "WUYE_RECEIPT_PRINTERS", None)
    if raw is None:
        env = os.environ.get("WUYE_RECEIPT_PRINTERS", "")
        raw = dict(item.split("=", 1) for item in env.split(";") if "=" in item)
    printers: dict[str, tuple[str, int]] = {}
    for name, address in dict(raw).items():
        host, _, port = str(address).strip().rpartition(":")
        if not host:
            host, port = port, "9100"
        printers[str(name).strip()] = (host, int(port or 9100))
    return printers
