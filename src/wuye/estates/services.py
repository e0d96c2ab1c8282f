"""Writes for estates: companies, unit labels, residents' ID-card numbers.

Every function validates its input first and raises ``django.core.exceptions.ValidationError``
with the offending field named, before anything is written.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from stdnum.cn import ric, uscc

from wuye.core.crypto import lookup_hash
from wuye.estates.models import Company, Resident
from wuye.estates.validators import (
    mask_id_card,
    validate_bank_account,
    validate_id_card,
    validate_phone,
    validate_uscc,
)


def unit_label(*, building_code: str, room_no: str) -> str:
    """Return the label cashiers type and receipts print: ``"<building>-<room>"``.

    ``building_code`` may itself hold a phase or block (``"1-2"``), so ``("1-2", "301")``
    gives ``"1-2-301"``. Surrounding spaces are dropped; an empty part is refused.
    """
    b, r = building_code.strip(), room_no.strip()
    if not b:
        raise ValidationError({"building_code": _("楼栋编号不能为空")})
    if not r:
        raise ValidationError({"room_no": _("房号不能为空")})
    return f"{b}-{r}"


def company_create(
    *,
    name: str,
    uscc_code: str,
    short_name: str = "",
    bank_name: str = "",
    bank_account_name: str = "",
    bank_account_no: str = "",
    phone: str = "",
    address: str = "",
) -> Company:
    """Create a property-management company after validating its identifiers.

    The USCC (统一社会信用代码) is normalised (upper case, no spaces) and must carry a valid
    GB 32100 check character and be unique; a settlement account, if given, must be 8–30
    digits. Raises ValidationError naming each bad field; nothing is written then.
    """
    errors: dict[str, list[str]] = {}
    name = name.strip()
    if not name:
        errors.setdefault("name", []).append(_("公司名称不能为空"))
    code = uscc.compact(uscc_code or "")
    try:
        validate_uscc(code)
    except ValidationError as exc:
        errors.setdefault("uscc", []).extend(exc.messages)
    else:
        if Company.objects.filter(uscc=code).exists():
            errors.setdefault("uscc", []).append(_("统一社会信用代码已存在: %(v)s") % {"v": code})
    account = bank_account_no.replace(" ", "")
    if account:
        try:
            validate_bank_account(account)
        except ValidationError as exc:
            errors.setdefault("bank_account_no", []).extend(exc.messages)
    if phone:
        try:
            validate_phone(phone)
        except ValidationError as exc:
            errors.setdefault("phone", []).extend(exc.messages)
    if errors:
        raise ValidationError(errors)
    return Company.objects.create(
        name=name,
        short_name=short_name.strip(),
        uscc=code,
        bank_name=bank_name.strip(),
        bank_account_name=bank_account_name.strip() or (name if account else ""),
        bank_account_no=account,
        phone=phone.strip(),
        address=address.strip(),
    )


def id_card_fields(id_card: str) -> dict[str, str]:
    """Validate an ID-card number and return the three stored fields for it.

    Returns ``{"id_card", "id_card_masked", "id_card_hash"}``: the compact number (the model
    field encrypts it on save), its mask and its keyed lookup hash. An empty string clears all
    three. Raises ValidationError (field ``id_card``) without echoing the number.
    """
    if not id_card.strip():
        return {"id_card": "", "id_card_masked": "", "id_card_hash": ""}
    number = ric.compact(id_card)
    try:
        validate_id_card(number)
    except ValidationError as exc:
        raise ValidationError({"id_card": exc.messages}) from exc
    return {
        "id_card": number,
        "id_card_masked": mask_id_card(number),
        "id_card_hash": lookup_hash(number),
    }


def resident_set_id_card(*, resident: Resident, id_card: str) -> Resident:
    """Set (or, with ``""``, clear) a resident's ID-card number and save it.

    The number is stored encrypted; the mask is what screens show and the keyed hash finds
    the same person again without decrypting. Raises ValidationError for a bad number and
    leaves the resident unchanged.
    """
    fields = id_card_fields(id_card)
    with transaction.atomic():
        for key, value in fields.items():
            setattr(resident, key, value)
        resident.save(update_fields=list(fields))
    return resident
