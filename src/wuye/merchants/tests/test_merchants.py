"""Merchant set-up: validation, effective-dated fee rates, the fee rule, who collects what."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from wuye.merchants.models import CardType, Channel, FeeRate, Merchant
from wuye.merchants.selectors import (
    AmbiguousMerchant,
    NoFeeRate,
    NoMerchant,
    documents_expiring,
    fee_amount,
    fee_for,
    fee_rate_for,
    merchant_for,
)
from wuye.merchants.services import document_add, fee_rate_set, merchant_create
from wuye.testing.factories import make_community, make_company, make_fee_item


def _merchant(company=None, channel=Channel.ACQUIRER, merchant_no="898310048990001", **kw):
    company = company or make_company()
    kw.setdefault("name", company.name)
    kw.setdefault("bank_name", "招商银行上海分行")
    kw.setdefault("bank_account_name", company.name)
    kw.setdefault("bank_account_no", "121900000001")
    return merchant_create(company=company, channel=channel, merchant_no=merchant_no, **kw)


@pytest.mark.django_db
def test_merchant_create_names_each_bad_field_and_writes_nothing():
    company = make_company()

    with pytest.raises(ValidationError) as info:
        merchant_create(
            company=company,
            channel="bitcoin",
            name="x",
            merchant_no=" ",
            bank_name="",
            bank_account_name="甲",
            bank_account_no="12AB",
        )

    assert set(info.value.message_dict) == {
        "channel",
        "merchant_no",
        "bank_name",
        "bank_account_no",
    }
    assert Merchant.objects.count() == 0


@pytest.mark.django_db
def test_merchant_create_refuses_a_community_of_another_company():
    other = make_community()

    with pytest.raises(ValidationError) as info:
        _merchant(communities=[other])

    assert "communities" in info.value.message_dict


@pytest.mark.django_db
def test_fee_rate_set_refuses_rates_out_of_bounds_and_a_cap_below_the_minimum():
    merchant = _merchant()

    with pytest.raises(ValidationError) as info:
        fee_rate_set(
            merchant=merchant,
            card_type=CardType.DEBIT,
            rate_ppm=100_001,
            effective_from=date(2026, 1, 1),
            cap_fen=100,
            min_fen=200,
        )

    assert set(info.value.message_dict) == {"rate_ppm", "cap_fen"}
    assert FeeRate.objects.count() == 0


@pytest.mark.django_db
def test_debit_fee_is_half_a_percent_capped_at_twenty_yuan():
    merchant = _merchant()
    fee_rate_set(
        merchant=merchant,
        card_type=CardType.DEBIT,
        rate_ppm=5000,
        cap_fen=2000,
        effective_from=date(2026, 1, 1),
    )
    day = date(2026, 3, 1)

    small = fee_for(merchant=merchant, card_type=CardType.DEBIT, amount_fen=12345, on_date=day)
    large = fee_for(merchant=merchant, card_type=CardType.DEBIT, amount_fen=1_000_000, on_date=day)

    assert small == 62  # 61.725 fen rounds half-up to 62
    assert large == 2000  # 5000 fen before the cap


@pytest.mark.django_db
def test_the_minimum_applies_before_the_cap_and_never_above_the_amount():
    merchant = _merchant()
    fee_rate_set(
        merchant=merchant,
        card_type=CardType.CREDIT,
        rate_ppm=6000,
        min_fen=50,
        cap_fen=3000,
        effective_from=date(2026, 1, 1),
    )
    day = date(2026, 3, 1)

    assert fee_for(merchant=merchant, card_type=CardType.CREDIT, amount_fen=1000, on_date=day) == 50
    assert fee_for(merchant=merchant, card_type=CardType.CREDIT, amount_fen=30, on_date=day) == 30


@pytest.mark.django_db
def test_a_rate_change_applies_from_its_date_and_not_before():
    merchant = _merchant()
    fee_rate_set(
        merchant=merchant,
        card_type=CardType.QR_CREDIT,
        rate_ppm=6000,
        effective_from=date(2026, 1, 1),
    )
    fee_rate_set(
        merchant=merchant,
        card_type=CardType.QR_CREDIT,
        rate_ppm=3800,
        effective_from=date(2026, 7, 1),
    )

    def fee(on):
        return fee_for(
            merchant=merchant, card_type=CardType.QR_CREDIT, amount_fen=100_000, on_date=on
        )

    assert fee(date(2026, 6, 30)) == 600
    assert fee(date(2026, 7, 1)) == 380
    with pytest.raises(NoFeeRate):
        fee(date(2025, 12, 31))


@pytest.mark.django_db
def test_a_rate_for_any_card_is_the_fallback_for_types_without_their_own():
    merchant = _merchant(channel=Channel.WECHAT, merchant_no="1900000109")
    fee_rate_set(
        merchant=merchant, card_type=CardType.ANY, rate_ppm=6000, effective_from=date(2026, 1, 1)
    )
    fee_rate_set(
        merchant=merchant,
        card_type=CardType.QR_BALANCE,
        rate_ppm=3800,
        effective_from=date(2026, 1, 1),
    )
    day = date(2026, 2, 1)

    assert (
        fee_rate_for(merchant=merchant, card_type=CardType.QR_CREDIT, on_date=day).rate_ppm == 6000
    )
    assert (
        fee_rate_for(merchant=merchant, card_type=CardType.QR_BALANCE, on_date=day).rate_ppm == 3800
    )


@given(
    amount_fen=st.integers(min_value=0, max_value=10**12),
    rate_ppm=st.integers(min_value=0, max_value=100_000),
    cap_fen=st.none() | st.integers(min_value=0, max_value=10**7),
    min_fen=st.none() | st.integers(min_value=0, max_value=10**4),
)
def test_a_fee_is_never_negative_nor_above_the_cap_nor_above_the_amount(
    amount_fen, rate_ppm, cap_fen, min_fen
):
    if cap_fen is not None and min_fen is not None and cap_fen < min_fen:
        cap_fen, min_fen = min_fen, cap_fen

    fee = fee_amount(amount_fen=amount_fen, rate_ppm=rate_ppm, cap_fen=cap_fen, min_fen=min_fen)

    assert 0 <= fee <= amount_fen
    if cap_fen is not None:
        assert fee <= cap_fen
    exact = Fraction(amount_fen * rate_ppm, 1_000_000)
    if (cap_fen is None or exact <= cap_fen) and (min_fen is None or exact >= min_fen):
        assert abs(fee - exact) <= Fraction(1, 2)


def test_a_negative_amount_is_refused():
    with pytest.raises(ValueError):
        fee_amount(amount_fen=-1, rate_ppm=5000)


@pytest.mark.django_db
def test_merchant_for_prefers_the_merchant_that_names_the_fee_item():
    company = make_company()
    community = make_community(company)
    parking = make_fee_item(company, name="停车费", kind="parking")
    property_fee = make_fee_item(company)
    general = _merchant(company, channel=Channel.ALIPAY, merchant_no="2088000000000001")
    parking_only = _merchant(
        company, channel=Channel.ALIPAY, merchant_no="2088000000000002", fee_items=[parking]
    )

    assert (
        merchant_for(community=community, fee_item=parking, channel=Channel.ALIPAY) == parking_only
    )
    assert (
        merchant_for(community=community, fee_item=property_fee, channel=Channel.ALIPAY) == general
    )


@pytest.mark.django_db
def test_merchant_for_refuses_when_none_or_two_equally_fit():
    company = make_company()
    community = make_community(company)
    fee_item = make_fee_item(company)

    with pytest.raises(NoMerchant):
        merchant_for(community=community, fee_item=fee_item, channel=Channel.WECHAT)

    _merchant(company, channel=Channel.WECHAT, merchant_no="1900000001")
    _merchant(company, channel=Channel.WECHAT, merchant_no="1900000002")
    with pytest.raises(AmbiguousMerchant):
        merchant_for(community=community, fee_item=fee_item, channel=Channel.WECHAT)


@pytest.mark.django_db
def test_merchant_for_ignores_other_communities_and_inactive_merchants():
    company = make_company()
    here, there = make_community(company), make_community(company)
    fee_item = make_fee_item(company)
    _merchant(company, merchant_no="898310048990002", communities=[there])
    stopped = _merchant(company, merchant_no="898310048990003")
    stopped.active = False
    stopped.save()

    with pytest.raises(NoMerchant):
        merchant_for(community=here, fee_item=fee_item, channel=Channel.ACQUIRER)


@pytest.mark.django_db
def test_documents_expiring_lists_soon_and_past_expiries_but_not_permanent_ones():
    company = make_company()
    today = date(2026, 11, 22)
    soon = document_add(
        company=company,
        kind="acquiring_agreement",
        title="收单协议",
        expires_on=today + timedelta(days=20),
    )
    expired = document_add(
        company=company,
        kind="tax_registration",
        title="税务登记",
        expires_on=today - timedelta(days=1),
    )
    document_add(company=company, kind="business_licence", title="营业执照", expires_on=None)
    document_add(
        company=company,
        kind="service_contract",
        title="物业服务合同",
        expires_on=today + timedelta(days=400),
    )
    document_add(
        company=make_company(),
        kind="service_contract",
        title="别家合同",
        expires_on=today + timedelta(days=3),
    )

    found = list(documents_expiring(company=company, within_days=30, today=today))

    assert found == [expired, soon]


@pytest.mark.django_db
def test_document_add_refuses_an_expiry_before_the_issue_date():
    with pytest.raises(ValidationError) as info:
        document_add(
            company=make_company(),
            kind="business_licence",
            title="营业执照",
            issued_on=date(2026, 1, 2),
            expires_on=date(2026, 1, 1),
        )

    assert "expires_on" in info.value.message_dict


@pytest.mark.django_db
def test_the_model_itself_refuses_a_bad_settlement_account_and_a_negative_cap():
    merchant = _merchant()
    merchant.bank_account_no = "6222-0210"
    rate = FeeRate(
        merchant=merchant,
        card_type=CardType.DEBIT,
        rate_ppm=5000,
        cap_fen=-1,
        effective_from=date(2026, 1, 1),
    )

    with pytest.raises(ValidationError) as merchant_error:
        merchant.full_clean()
    with pytest.raises(ValidationError) as rate_error:
        rate.full_clean()

    assert "bank_account_no" in merchant_error.value.message_dict
    assert "cap_fen" in rate_error.value.message_dict
