"""Fixtures for reconciliation tests: a company with card, WeChat and Alipay merchants."""

from __future__ import annotations

from datetime import date

import pytest

from wuye.merchants.models import Channel, Merchant
from wuye.merchants.services import fee_rate_set, merchant_create
from wuye.testing.factories import make_company

CARD_MID = "898310048990001"
WECHAT_MCH = "1900000109"
ALIPAY_PID = "2088102180000156"
ACCOUNT = "31000000000000009"


def _merchant(company, channel, merchant_no) -> Merchant:
    return merchant_create(
        company=company,
        channel=channel,
        name=company.name,
        merchant_no=merchant_no,
        bank_name="招商银行上海分行",
        bank_account_name=company.name,
        bank_account_no=ACCOUNT,
    )


def merchants_setup(company) -> None:
    """Give ``company`` the card, WeChat and Alipay merchants with their contracted rates."""
    card = _merchant(company, Channel.ACQUIRER, CARD_MID)
    wx = _merchant(company, Channel.WECHAT, WECHAT_MCH)
    ali = _merchant(company, Channel.ALIPAY, ALIPAY_PID)
    since = date(2026, 1, 1)
    fee_rate_set(
        merchant=card, card_type="debit", rate_ppm=5000, cap_fen=2000, effective_from=since
    )
    fee_rate_set(merchant=card, card_type="credit", rate_ppm=6000, effective_from=since)
    for m in (wx, ali):
        fee_rate_set(merchant=m, card_type="qr_balance", rate_ppm=3800, effective_from=since)
        fee_rate_set(merchant=m, card_type="qr_credit", rate_ppm=6000, effective_from=since)


@pytest.fixture
def company(db):
    company = make_company()
    merchants_setup(company)
    return company
