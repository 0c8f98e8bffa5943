"""Phone number helpers."""

from __future__ import annotations

import pytest

from bot.phone import mask, normalise_e164, normalise_indian_mobile, parse_address, twilio_address


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
