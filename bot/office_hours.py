"""Office hours (IST): when people answer the agent inbox, and by when one can promise a reply.

``BIJLI_OFFICE_HOURS`` reads as people write it: ``Mon-Sat 10:00-17:00``, or several spans
separated by commas, ``Mon-Fri 10:00-17:00, Sat 10:00-14:00``. Public holidays (the ``holidays``
table, ``bijli holiday add``) are closed all day. A promised reply time counts only office time:
asked at 16:50 with a 30-minute promise, the answer is due at 10:20 on the next open day.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from bot.clock import IST

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead a promise may look for open time (a long closure still gets an answer).
HORIZON_DAYS = 60

_SPAN = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:\s*-\s*(?P<last>[a-z]{3}))?\s+"
    r"(?P<opens>\d{1,2}:\d{2})\s*-\s*(?P<closes>\d{1,2}:\d{2})\s*$",
    re.IGNORECASE,
)


class InvalidOfficeHours(ValueError):
    """BIJLI_OFFICE_HOURS is not in the ``Mon-Sat 10:00-17:00`` form; the message says why."""


@dataclass(frozen=True)
class Span:
    """Open from ``opens`` to ``closes`` (minutes after midnight, 1440 = 24:00) on ``days``."""

    days: frozenset[int]
    opens: int
    closes: int


def _minutes(text: str, whole: str) -> int:
    hours, _, minutes = text.partition(":")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise InvalidOfficeHours(f"{text!r} is not a time of day in {whole!r}")
    return value


def _day(name: str, whole: str) -> int:
    try:
        return DAY_NAMES.index(name.lower())
    except ValueError:
        raise InvalidOfficeHours(
            f"{name!r} is not a day in {whole!r}; use Mon Tue Wed Thu Fri Sat Sun"
        ) from None


@dataclass(frozen=True)
class OfficeHours:
    """The weekly opening spans."""

    spans: tuple[Span, ...]

    @classmethod
    def parse(cls, text: str) -> OfficeHours:
        """Read ``Mon-Sat 10:00-17:00[, Sun 10:00-13:00 …]``."""
        spans = []
        for part in text.split(","):
            match = _SPAN.match(part)
            if not match:
                raise InvalidOfficeHours(
                    f"{part.strip()!r} in {text!r} is not like 'Mon-Sat 10:00-17:00'"
                )
            first = _day(match["first"], text)
            last = _day(match["last"], text) if match["last"] else first
            days = frozenset((first + n) % 7 for n in range((last - first) % 7 + 1))
            opens, closes = _minutes(match["opens"], text), _minutes(match["closes"], text)
            if opens >= closes:
                raise InvalidOfficeHours(f"{part.strip()!r} closes before it opens")
            spans.append(Span(days, opens, closes))
        return cls(tuple(spans))

    def intervals(
        self, start: dt.date, holidays: Collection[dt.date] = (), days: int = HORIZON_DAYS
    ) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open intervals (aware IST) from ``start`` on, in order, touching ones merged."""
        current: tuple[dt.datetime, dt.datetime] | None = None
        for offset in range(days):
            day = start + dt.timedelta(days=offset)
            if day in holidays:
                continue
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=IST)
            todays = sorted(
                (
                    midnight + dt.timedelta(minutes=span.opens),
                    midnight + dt.timedelta(minutes=span.closes),
                )
                for span in self.spans
                if day.weekday() in span.days
            )
            for opens, closes in todays:
                if current is not None and opens <= current[1]:
                    current = (current[0], max(current[1], closes))
                    continue
                if current is not None:
                    yield current
                current = (opens, closes)
        if current is not None:
            yield current

    def is_open(self, now: dt.datetime, holidays: Collection[dt.date] = ()) -> bool:
        """True when ``now`` (aware) falls in office hours."""
        local = now.astimezone(IST)
        for opens, closes in self.intervals(local.date(), holidays, days=1):
            if opens <= local < closes:
                return True
        return False

    def reply_by(
        self, now: dt.datetime, within: dt.timedelta, holidays: Collection[dt.date] = ()
    ) -> dt.datetime:
        """The moment (aware IST) when ``within`` of office time has passed since ``now``."""
        local = now.astimezone(IST)
        left = within
        for opens, closes in self.intervals(local.date(), holidays):
            if closes <= local:
                continue
            start = max(opens, local)
            if closes - start >= left:
                return start + left
            left -= closes - start
        raise InvalidOfficeHours(f"the office is never open in the next {HORIZON_DAYS} days")


__all__ = ["DAY_NAMES", "InvalidOfficeHours", "OfficeHours", "Span"]
