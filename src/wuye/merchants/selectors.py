"""Reads for merchant set-up: which rate applies, what a payment costs, who collects it.

Fee rule (:func:`fee_for`), applied in this order:

1. ``amount_fen × rate_ppm / 1,000,000`` rounded to the fen half-up (四舍五入), once;
2. raised to the contract's per-transaction minimum, if it has one;
3. lowered to the per-transaction cap, if it has one;
4. never more than the amount itself (a 1-fen payment never costs 2 fen), never negative.

The rate in force on a day is the one with the latest ``effective_from`` on or before it, for
the card type; a rate for card type ``any`` is the fallback when the type has none of its own.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from wuye.billing.models import FeeItem
from wuye.core.money import Rounding, div_round
from wuye.estates.models import Community, Company
from wuye.merchants.models import CardType, FeeRate, Merchant, MerchantDocument

PPM = 1_000_000


class NoFeeRate(LookupError):
    """The merchant has no contracted rate for that card type on that date."""


class NoMerchant(LookupError):
    """No active merchant collects that fee item in that community on that channel."""


class AmbiguousMerchant(LookupError):
    """More than one merchant is equally set up to collect that fee item there."""


def fee_rate_for(*, merchant: Merchant, card_type: str, on_date: date) -> FeeRate | None:
    """Return the rate in force for ``card_type`` on ``on_date``, or None if there is none.

    A rate for the exact card type wins over one for ``any``, whatever their dates.
    """
    for kind in (card_type, CardType.ANY.value):
        rate = (
            FeeRate.objects.filter(merchant=merchant, card_type=kind, effective_from__lte=on_date)
            .order_by("-effective_from")
            .first()
        )
        if rate is not None:
            return rate
        if card_type == CardType.ANY.value:
            break
    return None


def fee_amount(
    *, amount_fen: int, rate_ppm: int, cap_fen: int | None = None, min_fen: int | None = None
) -> int:
    """Apply the fee rule (module docstring) to one transaction; pure arithmetic.

    Raises ValueError for a negative amount or rate.
    """
    if amount_fen < 0:
        raise ValueError(f"amount_fen must not be negative: {amount_fen}")
    if rate_ppm < 0:
        raise ValueError(f"rate_ppm must not be negative: {rate_ppm}")
    fee = div_round(amount_fen * rate_ppm, PPM, Rounding.HALF_UP)
    if min_fen is not None:
        fee = max(fee, min_fen)
    if cap_fen is not None:
        fee = min(fee, cap_fen)
    return max(0, min(fee, amount_fen))


def fee_for(*, merchant: Merchant, card_type: str, amount_fen: int, on_date: date) -> int:
    """Return the contracted fee in fen for a payment of ``amount_fen`` on ``on_date``.

    Raises NoFeeRate if no rate is in force for that card type (or ``any``) on that date, and
    ValueError for a negative amount.
    """
    rate = fee_rate_for(merchant=merchant, card_type=card_type, on_date=on_date)
    if rate is None:
        raise NoFeeRate(
            _("商户 %(mid)s 在 %(day)s 没有 %(card)s 的签约费率")
            % {"mid": merchant.merchant_no, "day": on_date, "card": card_type}
        )
    return fee_amount(
        amount_fen=amount_fen, rate_ppm=rate.rate_ppm, cap_fen=rate.cap_fen, min_fen=rate.min_fen
    )


def merchant_for(*, community: Community, fee_item: FeeItem, channel: str) -> Merchant:
    """Return the merchant that collects ``fee_item`` in ``community`` on ``channel``.

    Candidates are the company's active merchants on that channel that list the community (or
    list no community: all of them) and list the fee item (or none: all). The most specific
    wins: naming the fee item beats collecting everything, then naming the community beats
    covering all. Raises NoMerchant if none fits and AmbiguousMerchant if two tie.
    """
    candidates = (
        Merchant.objects.filter(company_id=community.company_id, channel=channel, active=True)
        .filter(Q(communities=community) | Q(communities__isnull=True))
        .filter(Q(fee_items=fee_item) | Q(fee_items__isnull=True))
        .distinct()
        .prefetch_related("communities", "fee_items")
    )

    def specificity(m: Merchant) -> tuple[int, int]:
        names_item = any(f.pk == fee_item.pk for f in m.fee_items.all())
        names_community = any(c.pk == community.pk for c in m.communities.all())
        return (int(names_item), int(names_community))

    ranked = sorted(candidates, key=specificity, reverse=True)
    if not ranked:
        raise NoMerchant(
            _("小区「%(c)s」没有在渠道 %(ch)s 收取「%(f)s」的商户")
            % {"c": community, "ch": channel, "f": fee_item}
        )
    if len(ranked) > 1 and specificity(ranked[0]) == specificity(ranked[1]):
        numbers = ", ".join(
            m.merchant_no for m in ranked if specificity(m) == specificity(ranked[0])
        )
        raise AmbiguousMerchant(
            _("小区「%(c)s」渠道 %(ch)s 收取「%(f)s」的商户不唯一: %(n)s")
            % {"c": community, "ch": channel, "f": fee_item, "n": numbers}
        )
    return ranked[0]


def documents_expiring(
    *, company: Company, within_days: int, today: date
) -> QuerySet[MerchantDocument]:
    """Documents of ``company`` that expire within ``within_days`` of ``today``, or already have.

    Soonest first. Documents with no expiry date (长期有效) never appear.
    """
    return MerchantDocument.objects.filter(
        company=company, expires_on__isnull=False, expires_on__lte=today + timedelta(within_days)
    ).order_by("expires_on", "id")
