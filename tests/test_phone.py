"""What an Indian mobile is (one rule for importer, gateway and bot), addresses and masks."""

from __future__ import annotations

import pytest

from bot.importers.values import BadValue, normalise_mobile
from bot.phone import (
    NotAnIndianMobile,
    mask,
    normalise_e164,
    normalise_indian_mobile,
    parse_address,
    parse_indian_mobile,
    twilio_address,
)


@pytest.mark.parametrize(
    "text",
    [
        "9876543210",
        "09876543210",
        "+91 98765 43210",
        "919876543210",
        "+91-98765-43210",
        "whatsapp:+919876543210",
        " 98765 43210 ",
    ],
)
def test_indian_mobile_forms_normalise_to_e164(text):
    assert normalise_indian_mobile(text) == "+919876543210"


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "abc",
        "98765",
        "1234567890",
        "+14155550100",
        "05122345678",
        "+91 5123 456789",
        "98765432101234",
    ],
)
def test_non_mobiles_are_refused(text):
    assert normalise_indian_mobile(text) is None


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        # Where the two copies disagreed before they became one: the gateway's pattern took any
        # ten digits starting 6-9, so a Patna landline (0612) passed as a mobile at the webhook
        # while the importer refused it in consumers.csv.
        ("+91 612 345 6789", None),
        ("06123456789", None),
        # Written forms both accept.
        ("0091 98765 43210", "+919876543210"),
        ("(+91) 98765 43210", "+919876543210"),
        ("+91 0 98765 43210", "+919876543210"),
        ("9000000101", "+919000000101"),
        # Landlines, foreign numbers and Excel's mangling: neither accepts them.
        ("0512 234 5678", None),
        ("+14155238886", None),
        ("9.87654E+09", None),
    ],
)
def test_importer_gateway_and_bot_agree(written, e164):
    assert normalise_indian_mobile(written) == e164
    assert parse_address(written).e164 == e164
    if e164 is None:
        with pytest.raises(NotAnIndianMobile):
            parse_indian_mobile(written)
        with pytest.raises(BadValue):
            normalise_mobile(written)
    else:
        assert parse_indian_mobile(written) == e164
        assert normalise_mobile(written) == e164


def test_the_importer_says_why_a_mobile_is_refused():
    with pytest.raises(BadValue, match="'0512 234 5678' is a landline number, not a mobile"):
        normalise_mobile("0512 234 5678")
    with pytest.raises(BadValue, match="turned into a number by Excel"):
        normalise_mobile("9.87654E+09")
    with pytest.raises(BadValue, match=r"not an Indian \(\+91\) number"):
        normalise_mobile("+14155238886")


def test_parse_address_splits_channel():
    wa = parse_address("whatsapp:+919876543210")
    assert (wa.channel, wa.e164, wa.is_indian_mobile) == ("whatsapp", "+919876543210", True)
    sms = parse_address("+14155550100")
    assert (sms.channel, sms.e164, sms.raw) == ("sms", None, "+14155550100")


def test_twilio_address():
    assert twilio_address("whatsapp", "+919876543210") == "whatsapp:+919876543210"
    assert twilio_address("sms", "+919876543210") == "+919876543210"


def test_mask_keeps_country_code_and_last_four():
    assert mask("+919876543210") == "+91******3210"
    assert mask("whatsapp:+919876543210") == "whatsapp:+91******3210"
    assert mask(None) == "-"
    assert "98765" not in mask("+919876543210")


def test_normalise_e164_any_country():
    assert normalise_e164("+1 415 555 2671") == "+14155552671"
    assert normalise_e164("4155552671") is None
