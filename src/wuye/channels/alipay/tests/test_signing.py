"""RSA2 signing as Alipay does it: the parameter string, the response text, notifications."""

from __future__ import annotations

import json

import pytest

from wuye.channels.alipay.keys import (
    AlipayKeyError,
    private_key_load,
    private_pem,
    public_key_load,
    public_pem,
)
from wuye.channels.alipay.notify import funding_of
from wuye.channels.alipay.signing import (
    ResponseFormatError,
    response_build,
    response_signed_text,
    rsa2_sign,
    rsa2_verify,
    sign_content,
)
from wuye.sims.alipay.testing import sim_keys


def test_the_signed_string_is_sorted_non_empty_pairs_without_sign() -> None:
    params = {
        "method": "alipay.trade.query",
        "app_id": "2021",
        "sign": "x",
        "empty": "",
        "biz_content": '{"a":1}',
        "charset": "utf-8",
    }
    assert sign_content(params) == (
        'app_id=2021&biz_content={"a":1}&charset=utf-8&method=alipay.trade.query'
    )


def test_a_signature_verifies_and_a_changed_byte_does_not() -> None:
    app, _alipay = sim_keys()
    sig = rsa2_sign("a=1&b=物业", app)
    assert rsa2_verify("a=1&b=物业", sig, app.public_key())
    assert not rsa2_verify("a=1&b=物业费", sig, app.public_key())
    assert not rsa2_verify("a=1&b=物业", "not base64!", app.public_key())


def test_the_response_is_verified_over_its_text_as_sent() -> None:
    _app, alipay = sim_keys()
    body = response_build(
        "alipay.trade.pay", {"code": "10000", "msg": "Success", "total_amount": "12.30"}, alipay
    )
    text, sign = response_signed_text(body, "alipay.trade.pay")
    assert json.loads(text)["total_amount"] == "12.30"
    assert rsa2_verify(text, sign, alipay.public_key())
    # Re-spaced JSON is different bytes: the cut-out text, not a re-serialisation, is checked.
    assert not rsa2_verify(json.dumps(json.loads(text)), sign, alipay.public_key())


def test_an_answer_without_the_method_node_is_refused_clearly() -> None:
    with pytest.raises(ResponseFormatError, match="alipay_trade_query_response"):
        response_signed_text('{"other": {}}', "alipay.trade.query")


def test_keys_load_from_pem_and_from_alipays_bare_base64() -> None:
    app, _ = sim_keys()
    pem = private_pem(app)
    bare = "".join(pem.splitlines()[1:-1])
    assert private_key_load(bare).private_numbers() == app.private_numbers()
    pub = public_pem(app.public_key())
    assert public_key_load("".join(pub.splitlines()[1:-1])).public_numbers() == (
        app.public_key().public_numbers()
    )
    with pytest.raises(AlipayKeyError):
        private_key_load("not a key")


def test_the_largest_funding_part_names_the_source() -> None:
    assert funding_of(
        [
            {"fund_channel": "PCREDIT", "amount": "90.00"},
            {"fund_channel": "COUPON", "amount": "10.00"},
        ]
    ) == ("PCREDIT", "花呗/PCREDIT")
    assert funding_of('[{"fundChannel":"BANKCARD","amount":"1.00"}]') == (
        "BANKCARD",
        "银行卡/BANKCARD",
    )
    assert funding_of("") == ("", "")
