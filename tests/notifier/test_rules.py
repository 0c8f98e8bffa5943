"""Disconnection rules: cut hours, Sundays, holidays and moratoriums, in IST."""

from __future__ import annotations

import datetime as dt

import pytest

from notifier import rules
from notifier.rules import IST, Blocker, Period

# 2026-11-09 is a Monday; 2026-11-15 a Sunday.
MONDAY = dt.date(2026, 11, 9)


def ist(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=IST)


def utc_naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def blocker(moment: dt.datetime, meter: str = "smart_prepaid", discom: str = "KESCO", **kw):  # type: ignore[no-untyped-def]
    return rules.cut_blocker(moment, discom=discom, meter_type=meter, **kw)


def test_kesco_cuts_prepaid_only_between_eleven_and_four() -> None:
    assert blocker(ist(MONDAY, 10, 59)) is Blocker.OUTSIDE_HOURS
    assert blocker(ist(MONDAY, 11, 0)) is None
    assert blocker(ist(MONDAY, 15, 59)) is None
    assert blocker(ist(MONDAY, 16, 0)) is Blocker.OUTSIDE_HOURS


def test_uppcl_never_cuts_between_six_pm_and_eight_am() -> None:
    assert blocker(ist(MONDAY, 7, 59), discom="PVVNL") is Blocker.OUTSIDE_HOURS
    assert blocker(ist(MONDAY, 8, 0), discom="PVVNL") is None
    assert blocker(ist(MONDAY, 17, 59), meter="postpaid") is None
    assert blocker(ist(MONDAY, 18, 0), meter="postpaid") is Blocker.OUTSIDE_HOURS
    assert blocker(ist(MONDAY, 23, 0), discom="MVVNL") is Blocker.OUTSIDE_HOURS


def test_naive_times_are_utc_and_judged_in_ist() -> None:
    # 06:00 UTC is 11:30 IST: inside KESCO's prepaid window.
    assert rules.may_cut(dt.datetime(2026, 11, 9, 6, 0), discom="KESCO", meter_type="smart_prepaid")
    # 10:00 UTC is 15:30 IST on a Monday; 11:00 UTC is 16:30 IST.
    assert not rules.may_cut(
        dt.datetime(2026, 11, 9, 11, 0), discom="KESCO", meter_type="smart_prepaid"
    )


def test_no_cuts_on_sundays_or_public_holidays() -> None:
    sunday = MONDAY + dt.timedelta(days=6)
    assert blocker(ist(sunday, 12)) is Blocker.SUNDAY
    assert blocker(ist(MONDAY, 12), holidays={MONDAY}) is Blocker.HOLIDAY
    assert blocker(ist(MONDAY, 12), holidays={MONDAY + dt.timedelta(days=1)}) is None


def test_a_moratorium_blocks_every_cut_while_it_lasts() -> None:
    period = Period(utc_naive(ist(MONDAY, 0)), utc_naive(ist(MONDAY, 14)), "billing upgrade")
    assert blocker(ist(MONDAY, 12), moratoriums=[period]) is Blocker.MORATORIUM
    assert blocker(ist(MONDAY, 14), moratoriums=[period]) is None
    assert rules.active_moratorium(ist(MONDAY, 13), [period]) == period
    assert rules.active_moratorium(ist(MONDAY, 14), [period]) is None


def test_next_cut_time_waits_for_the_window() -> None:
    assert rules.next_cut_time(ist(MONDAY, 9), discom="KESCO", meter_type="smart_prepaid") == ist(
        MONDAY, 11
    )
    assert rules.next_cut_time(
        ist(MONDAY, 12, 30), discom="KESCO", meter_type="smart_prepaid"
    ) == ist(MONDAY, 12, 30)
    # After 16:00 on Saturday the next chance is Monday 11:00 (Sunday is skipped).
    saturday = MONDAY + dt.timedelta(days=5)
    assert rules.next_cut_time(
        ist(saturday, 16, 5), discom="KESCO", meter_type="smart_prepaid"
    ) == ist(MONDAY + dt.timedelta(days=7), 11)


def test_next_cut_time_skips_holidays_and_moratoriums() -> None:
    tuesday = MONDAY + dt.timedelta(days=1)
    period = Period(ist(tuesday, 0), ist(tuesday, 13, 15))
    found = rules.next_cut_time(
        ist(MONDAY, 17),
        discom="KESCO",
        meter_type="postpaid",
        holidays={MONDAY},
        moratoriums=[period],
    )
    assert found == ist(tuesday, 13, 15)
    # Chained moratoriums are stepped through one after the other.
    later = Period(ist(tuesday, 13, 15), ist(tuesday + dt.timedelta(days=1), 9))
    found = rules.next_cut_time(
        ist(MONDAY, 17), discom="KESCO", meter_type="smart_prepaid", moratoriums=[later, period]
    )
    assert found == ist(tuesday + dt.timedelta(days=1), 11)


def test_next_cut_time_gives_up_beyond_the_horizon() -> None:
    period = Period(ist(MONDAY, 0), ist(MONDAY + dt.timedelta(days=400), 0))
    assert (
        rules.next_cut_time(
            ist(MONDAY, 12),
            discom="KESCO",
            meter_type="postpaid",
            moratoriums=[period],
            horizon_days=30,
        )
        is None
    )


@pytest.mark.parametrize(
    ("discom", "meter", "hours"),
    [
        ("KESCO", "smart_prepaid", "11:00–16:00"),
        ("kesco", "smart_prepaid", "11:00–16:00"),
        ("KESCO", "postpaid", "08:00–18:00"),
        ("PUVVNL", "smart_prepaid", "08:00–18:00"),
    ],
)
def test_cut_window_by_discom_and_meter(discom: str, meter: str, hours: str) -> None:
    assert rules.hours_text(rules.cut_window(discom, meter)) == hours
