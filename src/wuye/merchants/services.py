"""Writes for merchant set-up: merchants per channel, contracted fee rates, documents.

Each function validates first and raises ``django.core.exceptions.ValidationError`` naming the
bad field; nothing is written then.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from wuye.billing.models import FeeItem
from wuye.estates.models import Community, Company
from wuye.estates.validators import validate_bank_account
from wuye.merchants.models import CardType, Channel, FeeRate, Merchant, MerchantDocument

# The model's check constraint refuses more than 10%; no contract in this trade comes close.
MAX_RATE_PPM = 100_000


def merchant_create(
    *,
    company: Company,
    channel: str,
    name: str,
    merchant_no: str,
    bank_name: str,
    bank_account_name: str,
    bank_account_no: str,
    institution: str = "",
    app_id: str = "",
    settlement_days: int = 1,
    signed_on: date | None = None,
    communities: Iterable[Community] = (),
    fee_items: Iterable[FeeItem] = (),
) -> Merchant:
    """Record a merchant a company signed with a payment institution.

    ``communities`` are where it collects (none: every community of the company) and
    ``fee_items`` what it collects (none: every fee item). Raises ValidationError for an
    unknown channel, an empty or duplicate merchant number, a settlement account that is not
    8–30 digits, or communities / fee items of another company.
    """
    errors: dict[str, list[str]] = {}
    if channel not in Channel.values:
        errors.setdefault("channel", []).append(_("未知渠道: %(v)s") % {"v": channel})
    merchant_no = merchant_no.strip()
    if not merchant_no:
        errors.setdefault("merchant_no", []).append(_("商户号不能为空"))
    elif Merchant.objects.filter(channel=channel, merchant_no=merchant_no).exists():
        errors.setdefault("merchant_no", []).append(_("商户号已存在: %(v)s") % {"v": merchant_no})
    account = bank_account_no.replace(" ", "")
    try:
        validate_bank_account(account)
    except ValidationError as exc:
        errors.setdefault("bank_account_no", []).extend(exc.messages)
    if not bank_name.strip():
        errors.setdefault("bank_name", []).append(_("结算开户行不能为空"))
    if not bank_account_name.strip():
        errors.setdefault("bank_account_name", []).append(_("结算账户名不能为空"))
    communities = list(communities)
    fee_items = list(fee_items)
    if any(c.company_id != company.pk for c in communities):
        errors.setdefault("communities", []).append(_("收款小区必须属于本公司"))
    if any(f.company_id != company.pk for f in fee_items):
        errors.setdefault("fee_items", []).append(_("收款费项必须属于本公司"))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        merchant = Merchant.objects.create(
            company=company,
            channel=channel,
            name=name.strip() or company.name,
            institution=institution.strip(),
            merchant_no=merchant_no,
            app_id=app_id.strip(),
            bank_name=bank_name.strip(),
            bank_account_name=bank_account_name.strip(),
            bank_account_no=account,
            settlement_days=settlement_days,
            signed_on=signed_on,
        )
        if communities:
            merchant.communities.set(communities)
        if fee_items:
            merchant.fee_items.set(fee_items)
    return merchant


def fee_rate_set(
    *,
    merchant: Merchant,
    card_type: str,
    rate_ppm: int,
    effective_from: date,
    cap_fen: int | None = None,
    min_fen: int | None = None,
) -> FeeRate:
    """Record a contracted fee rate for a card type from ``effective_from`` on.

    ``rate_ppm`` is parts per million (0.6% = 6000), 0 to 100,000. ``cap_fen`` and ``min_fen``
    are optional, non-negative, and the cap may not be below the minimum. Setting a rate for
    a date that already has one for that card type replaces it (a typo fix before it applies);
    history before that date is untouched. Raises ValidationError naming the bad field.
    """
    errors: dict[str, list[str]] = {}
    if card_type not in CardType.values:
        errors.setdefault("card_type", []).append(_("未知卡类型: %(v)s") % {"v": card_type})
    if isinstance(rate_ppm, bool) or not isinstance(rate_ppm, int):
        errors.setdefault("rate_ppm", []).append(_("费率必须是整数(百万分之)"))
    elif not 0 <= rate_ppm <= MAX_RATE_PPM:
        errors.setdefault("rate_ppm", []).append(
            _("费率应在0至%(max)s(10%%)之间: %(v)s") % {"max": MAX_RATE_PPM, "v": rate_ppm}
        )
    for field, value in (("cap_fen", cap_fen), ("min_fen", min_fen)):
        if value is not None and (not isinstance(value, int) or value < 0):
            errors.setdefault(field, []).append(_("金额必须是非负整数(分): %(v)s") % {"v": value})
    if (
        cap_fen is not None
        and min_fen is not None
        and "cap_fen" not in errors
        and "min_fen" not in errors
        and cap_fen < min_fen
    ):
        errors.setdefault("cap_fen", []).append(
            _("封顶(%(cap)s分)不能低于最低(%(min)s分)") % {"cap": cap_fen, "min": min_fen}
        )
    if errors:
        raise ValidationError(errors)
    rate, _created = FeeRate.objects.update_or_create(
        merchant=merchant,
        card_type=card_type,
        effective_from=effective_from,
        defaults={"rate_ppm": rate_ppm, "cap_fen": cap_fen, "min_fen": min_fen},
    )
    return rate


def document_add(
    *,
    company: Company,
    kind: str,
    title: str,
    number: str = "",
    issued_on: date | None = None,
    expires_on: date | None = None,
    merchant: Merchant | None = None,
    community: Community | None = None,
) -> MerchantDocument:
    """File a contract or qualification document with its expiry date (None: no expiry).

    Raises ValidationError for an unknown kind, an empty title, an expiry before the issue
    date, or a merchant or community of another company.
    """
    errors: dict[str, list[str]] = {}
    if kind not in MerchantDocument.Kind.values:
        errors.setdefault("kind", []).append(_("未知类型: %(v)s") % {"v": kind})
    if not title.strip():
        errors.setdefault("title", []).append(_("名称不能为空"))
    if issued_on and expires_on and expires_on < issued_on:
        errors.setdefault("expires_on", []).append(
            _("到期日期(%(expires)s)早于签发日期(%(issued)s)")
            % {"expires": expires_on, "issued": issued_on}
        )
    if merchant is not None and merchant.company_id != company.pk:
        errors.setdefault("merchant", []).append(_("商户不属于本公司"))
    if community is not None and community.company_id != company.pk:
        errors.setdefault("community", []).append(_("小区不属于本公司"))
    if errors:
        raise ValidationError(errors)
    return MerchantDocument.objects.create(
        company=company,
        merchant=merchant,
        community=community,
        kind=kind,
        title=title.strip(),
        number=number.strip(),
        issued_on=issued_on,
        expires_on=expires_on,
    )
