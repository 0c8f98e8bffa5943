"""Phone numbers: Indian mobile normalisation, Twilio addresses and masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

#: Twilio prefixes the WhatsApp channel to addresses: ``whatsapp:+9198...``.
WHATSAPP_PREFIX = "whatsapp:"

#: An Indian mobile number's national part: ten digits starting 6–9 (TRAI numbering plan).
_INDIAN_MOBILE = re.compile(r"^[6-9]\d{9}$")


def normalise_indian_mobile(text: str | None) -> str | None:
    """E.164 form (``+919876543210``) of an Indian mobile in any common form, else None."""
    if not text:
        return None
    cleaned = text.strip()
    if cleaned.lower().startswith(WHATSAPP_PREFIX):
        cleaned = cleaned[len(WHATSAPP_PREFIX) :]
    # "919876543210" (country code without the plus) is common in spreadsheets.
    digits = re.sub(r"\D", "", cleaned)
    if not cleaned.startswith("+") and len(digits) == 12 and digits.startswith("91"):
        cleaned = "+" + digits
    try:
        number = phonenumbers.parse(cleaned, "IN")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code != 91:
        return None
    national = str(number.national_number)
    if not _INDIAN_MOBILE.match(national):
        return None
    return f"+91{national}"


def normalise_e164(text: str | None) -> str | None:
    """E.164 form of any valid international number (``+`` required), else None."""
    if not text:
        return None
    try:
        number = phonenumbers.parse(text.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True)
class Address:
    """A Twilio ``From``/``To`` address split into channel and number."""

    channel: str  # "sms" or "whatsapp"
    raw: str  # the number part as Twilio sent it, without the channel prefix
    e164: str | None  # an Indian mobile in E.164, or None when it is not one

    @property
    def is_indian_mobile(self) -> bool:
        return self.e164 is not None


def parse_address(value: str | None) -> Address:
    """Split a Twilio address (``whatsapp:+91…`` or ``+91…``) into channel and E.164 number."""
    value = (value or "").strip()
    channel = "sms"
    if value.lower().startswith(WHATSAPP_PREFIX):
        channel = "whatsapp"
        value = value[len(WHATSAPP_PREFIX) :]
    return Address(channel=channel, raw=value, e164=normalise_indian_mobile(value))


def twilio_address(channel: str, e164: str) -> str:
    """The ``To`` value Twilio expects for a number on a channel."""
    return f"{WHATSAPP_PREFIX}{e164}" if channel == "whatsapp" else e164


def mask(number: str | None) -> str:
    """A number safe for logs: country code and last four digits (``+91******3210``)."""
    if not number:
        return "-"
    value = number.strip()
    prefix = ""
    if value.lower().startswith(WHATSAPP_PREFIX):
        prefix, value = WHATSAPP_PREFIX, value[len(WHATSAPP_PREFIX) :]
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return prefix + "*" * len(digits)
    head = "+91" if value.startswith("+91") else ("+" if value.startswith("+") else "")
    shown_head = len(re.sub(r"\D", "", head))
    hidden = len(digits) - 4 - shown_head
    return f"{prefix}{head}{'*' * max(hidden, 0)}{digits[-4:]}"


__all__ = [
    "Address",
    "WHATSAPP_PREFIX",
    "mask",
    "normalise_e164",
    "normalise_indian_mobile",
    "parse_address",
    "twilio_address",
]
