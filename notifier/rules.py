"""Disconnection rules: when a connection may be cut for dues. Pure functions, reasoned in IST.

As reported for UPPCL: no cuts between 18:00 and 08:00, on Sundays or on public holidays, and
none during a moratorium (declared while payment channels are down, because nobody can pay).
KESCO's system cuts smart-prepaid meters only between 11:00 and 16:00.

Times come in as the store keeps them (naive UTC) or timezone-aware; answers are aware IST.
The chat bot uses these to tell a consumer when a cut can happen; the notifier reuses them to
decide when a disconnection drive may act.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import Enum

from bot.clock import IST

#: The discom whose prepaid cut window is narrower than UPPCL's.
KESCO = "KESCO"
#: Meter type whose cuts are done remotely by the billing system.
SMART_PREPAID = "smart_prepaid"
#: Furthest ahead (days) that :func:`next_cut_time` looks for a permitted moment.
DEFAULT_HORIZON_DAYS = 120


@dataclass(frozen=True)
class CutWindow:
    """Hours of the day (IST, start inclusive, end exclusive) in which a cut may happen."""

    start: dt.time
    end: dt.time

    def contains(self, moment: dt.time) -> bool:
        """True when a wall-clock time lies inside the window."""
        return self.start <= moment < self.end


#: UPPCL: no cuts between 18:00 and 08:00 IST.
UPPCL_CUT_WINDOW = CutWindow(dt.time(8, 0), dt.time(18, 0))
#: KESCO's system cuts smart-prepaid meters only between 11:00 and 16:00 IST.
KESCO_PREPAID_CUT_WINDOW = CutWindow(dt.time(11, 0), dt.time(16, 0))


@dataclass(frozen=True)
class Period:
    """A moratorium: no cut for dues from ``starts_at`` until ``ends_at`` (naive UTC or aware)."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    reason: str = ""

    def covers(self, moment: dt.datetime) -> bool:
        """True when ``moment`` falls inside the period."""
        return as_ist(self.starts_at) <= as_ist(moment) < as_ist(self.ends_at)


class Blocker(str, Enum):
    """Why no cut may happen at a given moment."""

    MORATORIUM = "moratorium"
    SUNDAY = "sunday"
    HOLIDAY = "holiday"
    OUTSIDE_HOURS = "outside_hours"


def as_ist(moment: dt.datetime) -> dt.datetime:
    """``moment`` in IST; a naive value is taken as UTC (the store's convention)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(IST)


def as_utc_naive(moment: dt.datetime) -> dt.datetime:
    """``moment`` as naive UTC, the form the store's columns hold."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def cut_window(discom: str, meter_type: str) -> CutWindow:
    """The daily window in which this discom may cut this kind of meter."""
    if discom.upper() == KESCO and meter_type == SMART_PREPAID:
        return KESCO_PREPAID_CUT_WINDOW
    return UPPCL_CUT_WINDOW


def active_moratorium(moment: dt.datetime, moratoriums: Iterable[Period]) -> Period | None:
    """The moratorium covering ``moment`` that ends last, if any."""
    covering = [p for p in moratoriums if p.covers(moment)]
    return max(covering, key=lambda p: as_ist(p.ends_at)) if covering else None


def cut_blocker(
    moment: dt.datetime,
    *,
    discom: str,
    meter_type: str,
    holidays: Collection[dt.date] = (),
    moratoriums: Iterable[Period] = (),
) -> Blocker | None:
    """The first rule that forbids a cut at ``moment``, or None when a cut is permitted."""
    local = as_ist(moment)
    if active_moratorium(local, moratoriums) is not None:
        return Blocker.MORATORIUM
    if local.weekday() == 6:
        return Blocker.SUNDAY
    if local.date() in holidays:
        return Blocker.HOLIDAY
    if not cut_window(discom, meter_type).contains(local.time()):
        return Blocker.OUTSIDE_HOURS
    return None


def may_cut(
    moment: dt.datetime,
    *,
    discom: str,
    meter_type: str,
    holidays: Collection[dt.date] = (),
    moratoriums: Iterable[Period] = (),
) -> bool:
    """True when a connection may be cut for dues at ``moment``."""
    return (
        cut_blocker(
            moment,
            discom=discom,
            meter_type=meter_type,
            holidays=holidays,
            moratoriums=moratoriums,
        )
        is None
    )


def next_cut_time(
    moment: dt.datetime,
    *,
    discom: str,
    meter_type: str,
    holidays: Collection[dt.date] = (),
    moratoriums: Iterable[Period] = (),
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> dt.datetime | None:
    """The earliest moment at or after ``moment`` when a cut is permitted (aware IST).

    None when no such moment exists within ``horizon_days`` (e.g. a long moratorium).
    """
    periods = list(moratoriums)
    window = cut_window(discom, meter_type)
    start = as_ist(moment)
    for offset in range(horizon_days + 1):
        day = start.date() + dt.timedelta(days=offset)
        if day.weekday() == 6 or day in holidays:
            continue
        opens = dt.datetime.combine(day, window.start, tzinfo=IST)
        closes = dt.datetime.combine(day, window.end, tzinfo=IST)
        candidate = max(start, opens)
        # Step past every moratorium that covers the candidate; periods may overlap or chain.
        while candidate < closes:
            blocking = active_moratorium(candidate, periods)
            if blocking is None:
                return candidate
            candidate = as_ist(blocking.ends_at)
    return None


def hours_text(window: CutWindow) -> str:
    """The window as people write it: ``11:00–16:00``."""
    return f"{window.start:%H:%M}–{window.end:%H:%M}"


__all__ = [
    "Blocker",
    "CutWindow",
    "IST",
    "KESCO_PREPAID_CUT_WINDOW",
    "Period",
    "UPPCL_CUT_WINDOW",
    "active_moratorium",
    "as_ist",
    "as_utc_naive",
    "cut_blocker",
    "cut_window",
    "hours_text",
    "may_cut",
    "next_cut_time",
]
