"""Office hours: the setting as people write it, and reply times counted in office time only."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import IST
from bot.office_hours import InvalidOfficeHours, OfficeHours

KESCO = OfficeHours.parse("Mon-Sat 10:00-17:00")
HALF_HOUR = dt.timedelta(minutes=30)


def ist(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    """A moment in November 2026 (the 23rd is a Monday, the 29th a Sunday), IST."""
    return dt.datetime(2026, month, day, hour, minute, tzinfo=IST)


def test_parse_reads_days_and_times():
    [span] = KESCO.spans
    assert span.days == frozenset(range(6))  # Monday to Saturday
    assert (span.opens, span.closes) == (600, 1020)


def test_several_spans_and_a_range_over_the_weekend():
    hours = OfficeHours.parse("mon-fri 10:00-17:00, Sat 10:00-14:00, Sun-Mon 08:00-09:00")
    assert [sorted(s.days) for s in hours.spans] == [[0, 1, 2, 3, 4], [5], [0, 6]]
    assert hours.is_open(ist(28, 13))  # Saturday afternoon, before 14:00
    assert not hours.is_open(ist(28, 15))
    assert hours.is_open(ist(29, 8, 30))  # Sunday morning span


@pytest.mark.parametrize(
    "text",
    ["", "Mon-Sat", "Mon-Sat 10-17", "Someday 10:00-17:00", "Mon 17:00-10:00", "Mon 10:00-25:00"],
)
def test_bad_settings_are_refused_with_a_reason(text):
    with pytest.raises(InvalidOfficeHours):
        OfficeHours.parse(text)


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (ist(23, 9, 59), False),
        (ist(23, 10, 0), True),
        (ist(23, 16, 59), True),
        (ist(23, 17, 0), False),
        (ist(29, 12), False),  # Sunday
    ],
)
def test_is_open(moment, open_):
    assert KESCO.is_open(moment) is open_


def test_is_open_takes_any_timezone():
    # 05:00 UTC is 10:30 IST.
    assert KESCO.is_open(dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.timezone.utc))


def test_reply_within_the_same_afternoon():
    assert KESCO.reply_by(ist(23, 14, 0), HALF_HOUR) == ist(23, 14, 30)


def test_reply_counts_only_office_time_across_the_evening():
    # Ten minutes today, twenty tomorrow.
    assert KESCO.reply_by(ist(23, 16, 50), HALF_HOUR) == ist(24, 10, 20)


def test_asked_at_night_the_reply_is_due_after_opening():
    assert KESCO.reply_by(ist(23, 22, 15), HALF_HOUR) == ist(24, 10, 30)


def test_saturday_evening_skips_sunday():
    assert KESCO.reply_by(ist(28, 18), HALF_HOUR) == ist(30, 10, 30)


def test_public_holidays_are_closed_all_day():
    holidays = {dt.date(2026, 11, 24)}
    assert not KESCO.is_open(ist(24, 12), holidays)
    assert KESCO.reply_by(ist(23, 16, 50), HALF_HOUR, holidays) == ist(25, 10, 20)


def test_round_the_clock_hours_run_through_midnight():
    always = OfficeHours.parse("Mon-Sun 00:00-24:00")
    assert always.is_open(ist(29, 3))
    assert always.reply_by(ist(23, 23, 50), HALF_HOUR) == ist(24, 0, 20)


def test_a_closed_office_is_reported_rather_than_looping():
    hours = OfficeHours.parse("Mon 10:00-11:00")
    mondays = {ist(23, 0).date() + dt.timedelta(days=7 * n) for n in range(12)}
    with pytest.raises(InvalidOfficeHours):
        hours.reply_by(ist(23, 9), HALF_HOUR, mondays)
