"""Values as a consumer reads them: rupees with Indian grouping, IST dates, masked names.

Only digits, symbols and dates come out of here; every word a user reads lives in the domain.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from bot.store import to_ist


def format_rupees(paise: int) -> str:
    """₹ amount with Indian digit grouping: 12345678 paise → ``₹1,23,456.78``."""
    sign = "-" if paise < 0 else ""
    rupees, rest = divmod(abs(int(paise)), 100)
    digits = str(rupees)
    if len(digits) > 3:
        head, tail = digits[:-3], digits[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        if head:
            groups.insert(0, head)
        digits = ",".join(groups) + "," + tail
    return f"{sign}₹{digits}.{rest:02d}"


def format_date(day: dt.date) -> str:
    """A date as on UPPCL bills: ``05-11-2026``."""
    return f"{day:%d-%m-%Y}"


def format_moment(moment: dt.datetime) -> str:
    """A naive-UTC (or aware) moment as IST wall-clock time: ``05-11-2026 14:30``."""
    local = to_ist(moment) if moment.tzinfo is None else moment.astimezone(to_ist(moment).tzinfo)
    return f"{local:%d-%m-%Y %H:%M}"


def format_bill_month(month: str) -> str:
    """``2026-10`` → ``10/2026``."""
    year, _, mon = month.partition("-")
    return f"{mon}/{year}" if mon else month


def _first_grapheme(word: str) -> str:
    """The first letter of a word with its combining marks (Devanagari matras, nukta)."""
    out = word[0]
    for char in word[1:]:
        if unicodedata.category(char) in {"Mn", "Mc"}:
            out += char
        else:
            break
    return out


def mask_name(name: str) -> str:
    """A name with only each word's first letter shown: ``Ramesh Kumar`` → ``R*** K***``."""
    words = [w for w in name.split() if w]
    return " ".join(f"{_first_grapheme(w)}***" for w in words) or "***"


__all__ = ["format_bill_month", "format_date", "format_moment", "format_rupees", "mask_name"]
