"""Phone numbers: what an Indian mobile is, Twilio addresses, and masking for logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType

#: Twilio prefixes the WhatsApp channel to addresses: ``whatsapp:+9198...``.
WHATSAPP_PREFIX = "whatsapp:"

_PHONE_NOISE = re.compile(r"[\s\-().]")
#: The forms Indians write a mobile in: 10 digits, after +91, 0091, 91 or a trunk 0.
_INDIAN_FORMS = re.compile(r"(?:\+91|0091|91|0)?(\d{10})")
#: What Excel makes of a long number in a General column: 9.87654E+09.
EXCEL_NUMBER = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")
# phonenumbers cannot tell some Indian series apart from landlines; those may be mobiles.
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class NotAnIndianMobile(ValueError):
    """Not an Indian mobile number; the message says why, in an operator's words."""


def parse_indian_mobile(raw: str) -> str:
    """E.164 (``+919876543210``) of an Indian mobile, or :class:`NotAnIndianMobile` saying why.

    The one definition the importer, the gateway and the bot share: any common written form
    (``9876543210``, ``09876543210``, ``919876543210``, ``+91 98765-43210``, ``0091…``) of a number
    that India's numbering plan, as libphonenumber knows it, gives to mobiles.
    """
    compact = _PHONE_NOISE.sub("", raw)
    match = _INDIAN_FORMS.fullmatch(compact)
    if match:
        # The common forms skip phonenumbers.parse, which costs more than the rest of a CSV row.
        number = PhoneNumber(country_code=91, national_number=int(match.group(1)))
    else:
        if EXCEL_NUMBER.fullmatch(raw.strip()):
            raise NotAnIndianMobile("was turned into a number by Excel; format the column as Text")
        try:
            number = phonenumbers.parse(raw, "IN")
        except phonenumbers.NumberParseException:
            raise NotAnIndianMobile("is not a valid Indian mobile number") from None
        if number.country_code != 91:
            raise NotAnIndianMobile("is not an Indian (+91) number")
    kind = phonenumbers.number_type(number)
    if kind in _MOBILE_TYPES:
        return f"+91{number.national_number}"
    if kind == PhoneNumberType.FIXED_LINE:
        raise NotAnIndianMobile("is a landline number, not a mobile")
    raise NotAnIndianMobile("is not a valid Indian mobile number")


def normalise_indian_mobile(text: str | None) -> str | None:
    """E.164 form of an Indian mobile in any common form (``whatsapp:`` allowed), else None."""
    if not text:
        return None
    cleaned = text.strip()
    if cleaned.lower().startswith(WHATSAPP_PREFIX):
        cleaned = cleaned[len(WHATSAPP_PREFIX) :]
    try:
        return parse_indian_mobile(cleaned)
    except NotAnIndianMobile:
        return None


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
    "NotAnIndianMobile",
    "normalise_indian_mobile",
    "parse_indian_mobile",
    "parse_address",
    "twilio_address",
]
