"""Values as a consumer reads them: IST dates, bill months, masked names (rupees: bot.money).

Only digits, symbols and dates come out of here; every word a user reads lives in the domain.
"""

from __future__ import annotations

import datetime as dt
import unicodedata

from bot.clock import to_ist


def format_date(day: dt.date) -> str:
    """A date as on UPPCL bills: ``05-11-2026``."""
    return f"{day:%d-%m-%Y}"


def format_moment(moment: dt.datetime) -> str:
    """A naive-UTC (or aware) moment as IST wall-clock time: ``05-11-2026 14:30``."""
    local = to_ist(moment)
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


__all__ = ["format_bill_month", "format_date", "format_moment", "mask_name"]
