"""Reads for estates."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from wuye.estates.models import Resident
from wuye.estates.services import id_card_fields


def residents_with_id_card(*, company_id: int, id_card: str) -> QuerySet[Resident]:
    """Residents of ``company_id`` holding ``id_card``, found by keyed hash (no decryption).

    Raises ValidationError if ``id_card`` is not a valid number.
    """
    digest = id_card_fields(id_card)["id_card_hash"]
    if not digest:
        raise ValidationError({"id_card": _("身份证号不能为空")})
    return Resident.objects.filter(unit__community__company_id=company_id, id_card_hash=digest)
