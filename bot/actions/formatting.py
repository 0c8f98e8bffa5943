"""Values as a consumer reads them: IST dates, bill months, masked names (rupees: bot.money).

Only digits, symbols and dates come out of here; every word a user reads lives in the domain.
"""

from __future__ import annotations

import datetime as dt

from bot.clock import to_ist
from bot.names import mask_name


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


__all__ = ["format_bill_month", "format_date", "format_moment", "mask_name"]
