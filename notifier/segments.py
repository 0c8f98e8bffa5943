"""SMS segments: how many parts a text is billed as, in GSM-7 or UCS-2 (3GPP TS 23.038).

A text in the GSM-7 alphabet fits 160 characters in one SMS, 153 a part once concatenated (the
extension characters such as ``€`` or ``{`` count twice). Anything outside it, Devanagari
included, goes as UCS-2: 70 characters in one SMS, 67 a part once concatenated (a character
outside the Basic Multilingual Plane, such as an emoji, counts twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: GSM 03.38 basic character set.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each takes an escape and the character (two septets).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

#: Characters in one GSM-7 SMS, and per part of a concatenated one.
GSM7_SINGLE = 160
GSM7_PART = 153
#: Characters (UTF-16 code units) in one UCS-2 SMS, and per part of a concatenated one.
UCS2_SINGLE = 70
UCS2_PART = 67


@dataclass(frozen=True)
class Segments:
    """A text's encoding, its length in that encoding's units, and how many SMS it takes."""

    encoding: str  # GSM-7 or UCS-2
    units: int
    count: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 alphabet (basic or extension)."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def segments(text: str) -> Segments:
    """How ``text`` is sent as SMS: encoding, units and number of segments."""
    if is_gsm7(text):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, part, encoding = GSM7_SINGLE, GSM7_PART, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    count = 1 if units <= single else math.ceil(units / part)
    return Segments(encoding, units, count)


__all__ = ["Segments", "is_gsm7", "segments"]
