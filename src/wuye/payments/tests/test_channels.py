import pytest

from wuye.channels.base import Channel, ChannelResult, PaymentRequest, mask_pan
from wuye.channels.registry import (
    ChannelMisconfigured,
    UnknownChannel,
    channel_get,
    channels_all,
)
from wuye.ledger.models import AccountKind


def _request(**kw):
    base = dict(
        order_id=1,
        amount_fen=1_000,
        idempotency_key="k",
        community_id=1,
        unit_id=1,
        cashier_id=None,
    )
    base.update(kw)
    return PaymentRequest(**base)


def test_settings_register_cash_and_prepaid_with_their_accounts():
    # Cash and prepaid come first; the card and QR channels join from wuye/conf/<part>.py.
    assert list(channels_all())[:2] == ["cash", "prepaid"]
    assert channel_get("cash").clearing_account == AccountKind.CASH
    assert channel_get("prepaid").clearing_account == AccountKind.PREPAID
    assert isinstance(channel_get("cash"), Channel)


def test_an_unknown_code_or_a_wrong_path_is_reported(settings):
    with pytest.raises(UnknownChannel):
        channel_get("no-such-channel")
    settings.WUYE_CHANNELS = ["wuye.ledger.models.AccountKind"]
    with pytest.raises(ChannelMisconfigured):
        channel_get("cash")
    settings.WUYE_CHANNELS = ["wuye.channels.cash.adapter.CashChannel"] * 2
    with pytest.raises(ChannelMisconfigured):
        channel_get("cash")


def test_cash_gives_change_and_declines_too_little():
    cash = channel_get("cash")
    ok = cash.pay(_request(extra={"tendered_fen": 5_000}))
    short = cash.pay(_request(extra={"tendered_fen": 999}))
    assert (ok.result, ok.details["change_fen"]) == (ChannelResult.PROCESSED, 4_000)
    assert short.result == ChannelResult.DECLINED


def test_prepaid_declines_when_the_balance_is_short():
    prepaid = channel_get("prepaid")
    assert prepaid.pay(_request(extra={"available_fen": 999})).result == ChannelResult.DECLINED
    assert prepaid.pay(_request(extra={"available_fen": 1_000})).result == ChannelResult.PROCESSED


@pytest.mark.parametrize(
    ("pan", "masked"),
    [("6228480402564890018", "622848*********0018"), ("4111111111111111", "411111******1111")],
)
def test_a_card_number_is_masked_to_first_six_and_last_four(pan, masked):
    assert mask_pan(pan) == masked


def test_something_that_is_not_a_card_number_is_refused():
    with pytest.raises(ValueError):
        mask_pan("4111-abc")
