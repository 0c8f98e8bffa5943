"""When a campaign may push: quiet hours for every kind, and no disconnection warning on a Sunday
or a listed public holiday. A job that finds the window shut waits for it (it is scheduled for
the moment it opens); nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.clock import IST
from notifier.messages import DISCONNECTION_WARNING
from notifier.rules import as_ist

#: Furthest ahead (days) :func:`next_send_time` looks (a long run of holidays cannot exceed it).
HORIZON_DAYS = 60


class InvalidQuietHours(ValueError):
    """BIJLI_QUIET_HOURS is not ``HH:MM-HH:MM``."""


@dataclass(frozen=True)
class QuietHours:
    """Hours of the day (IST, start inclusive, end exclusive) with no pushes; may wrap midnight."""

    start: dt.time
    end: dt.time

    def contains(self, moment: dt.time) -> bool:
        """True when a wall-clock time lies in the quiet hours."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


def parse_quiet_hours(text: str) -> QuietHours:
    """``21:00-09:00`` as :class:`QuietHours` (``off`` or an empty value: none)."""
    value = (text or "").strip().lower()
    if value in ("", "off", "none"):
        return QuietHours(dt.time(0), dt.time(0))
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})", value)
    if not match:
        raise InvalidQuietHours(f"quiet hours must look like 21:00-09:00, not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise InvalidQuietHours(f"quiet hours must look like 21:00-09:00, not {text!r}")
    return QuietHours(dt.time(h1, m1), dt.time(h2, m2))


def _day_allowed(kind: str, day: dt.date, holidays: Collection[dt.date]) -> bool:
    if kind != DISCONNECTION_WARNING:
        return True
    return day.weekday() != 6 and day not in holidays


def next_send_time(
    moment: dt.datetime,
    *,
    kind: str,
    quiet: QuietHours,
    holidays: Collection[dt.date] = (),
) -> dt.datetime:
    """The earliest moment at or after ``moment`` (aware IST) when ``kind`` may be pushed."""
    local = as_ist(moment)
    candidate = local
    for _ in range(HORIZON_DAYS * 2 + 2):
        if not _day_allowed(kind, candidate.date(), holidays):
            next_day = candidate.date() + dt.timedelta(days=1)
            candidate = dt.datetime.combine(next_day, dt.time(0), tzinfo=IST)
            continue
        if not quiet.contains(candidate.time()):
            return candidate
        # Inside the quiet hours: they end today (after midnight) or tomorrow.
        ends_today = dt.datetime.combine(candidate.date(), quiet.end, tzinfo=IST)
        candidate = ends_today if ends_today > candidate else ends_today + dt.timedelta(days=1)
    raise RuntimeError(f"no permitted moment to push within {HORIZON_DAYS} days")


def blocker(
    moment: dt.datetime, *, kind: str, quiet: QuietHours, holidays: Collection[dt.date] = ()
) -> str | None:
    """Why ``kind`` may not be pushed at ``moment`` (quiet_hours, sunday, holiday), or None."""
    local = as_ist(moment)
    if kind == DISCONNECTION_WARNING:
        if local.weekday() == 6:
            return "sunday"
        if local.date() in holidays:
            return "holiday"
    if quiet.contains(local.time()):
        return "quiet_hours"
    return None


__all__ = ["InvalidQuietHours", "QuietHours", "blocker", "next_send_time", "parse_quiet_hours"]
