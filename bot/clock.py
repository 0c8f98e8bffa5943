"""Time as the project keeps it (naive UTC in the database) and as people read it (IST)."""

from __future__ import annotations

import datetime as dt

#: Indian Standard Time: UTC+05:30 all year, no daylight saving.
IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")


def utcnow() -> dt.datetime:
    """Current time as naive UTC, the form every timestamp column holds."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def to_ist(moment: dt.datetime) -> dt.datetime:
    """A naive-UTC (or aware) moment as aware Indian Standard Time."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(IST)


__all__ = ["IST", "to_ist", "utcnow"]
