"""Amounts in words as Indian receipts write them: lakh and crore, in English and in Hindi."""

from __future__ import annotations

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()

# Hindi numbers below a hundred are each their own word.
_HI_0_99 = (
    "शून्य एक दो तीन चार पाँच छह सात आठ नौ दस ग्यारह बारह तेरह चौदह पंद्रह सोलह सत्रह अठारह "
    "उन्नीस बीस इक्कीस बाईस तेईस चौबीस पच्चीस छब्बीस सत्ताईस अट्ठाईस उनतीस तीस इकतीस बत्तीस "
    "तैंतीस चौंतीस पैंतीस छत्तीस सैंतीस अड़तीस उनतालीस चालीस इकतालीस बयालीस तैंतालीस चवालीस "
    "पैंतालीस छियालीस सैंतालीस अड़तालीस उनचास पचास इक्यावन बावन तिरेपन चौवन पचपन छप्पन सत्तावन "
    "अट्ठावन उनसठ साठ इकसठ बासठ तिरेसठ चौंसठ पैंसठ छियासठ सड़सठ अड़सठ उनहत्तर सत्तर इकहत्तर "
    "बहत्तर तिहत्तर चौहत्तर पचहत्तर छिहत्तर सतहत्तर अठहत्तर उन्यासी अस्सी इक्यासी बयासी तिरासी "
    "चौरासी पचासी छियासी सत्तासी अट्ठासी नवासी नब्बे इक्यानवे बानवे तिरानवे चौरानवे पंचानवे "
    "छियानवे सत्तानवे अट्ठानवे निन्यानवे"
).split()

_EN_SCALES = (("crore", 10**7), ("lakh", 10**5), ("thousand", 1000), ("hundred", 100))
_HI_SCALES = (("करोड़", 10**7), ("लाख", 10**5), ("हज़ार", 1000), ("सौ", 100))


def _en_below_100(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    tens, ones = divmod(n, 10)
    return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")


def _words(n: int, scales: tuple[tuple[str, int], ...], below_100: list[str] | None) -> str:
    parts: list[str] = []
    for name, size in scales:
        count, n = divmod(n, size)
        if count:
            parts.append(f"{_words(count, scales, below_100)} {name}")
    if n or not parts:
        parts.append(below_100[n] if below_100 is not None else _en_below_100(n))
    return " ".join(parts)


def number_en(n: int) -> str:
    """``123456`` → ``one lakh twenty-three thousand four hundred fifty-six``."""
    return _words(n, _EN_SCALES, None)


def number_hi(n: int) -> str:
    """``123456`` → ``एक लाख तेईस हज़ार चार सौ छप्पन``."""
    return _words(n, _HI_SCALES, _HI_0_99)


def rupees_en(paise: int) -> str:
    """``Rupees one thousand five hundred and fifty paise only``."""
    rupees, rest = divmod(int(paise), 100)
    text = f"Rupees {number_en(rupees)}"
    if rest:
        text += f" and {number_en(rest)} paise"
    return text + " only"


def rupees_hi(paise: int) -> str:
    """``एक हज़ार पाँच सौ रुपये पचास पैसे मात्र``."""
    rupees, rest = divmod(int(paise), 100)
    text = f"{number_hi(rupees)} रुपये"
    if rest:
        text += f" {number_hi(rest)} पैसे"
    return text + " मात्र"


__all__ = ["number_en", "number_hi", "rupees_en", "rupees_hi"]
