"""When pushes may go: quiet hours (wrapping midnight), Sundays and holidays for warnings."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import IST
from notifier import windows

QUIET = windows.parse_quiet_hours("21:00-09:00")
MONDAY = dt.date(2026, 11, 9)
WARNING, NEW = "disconnection-warning", "new-account-number"


def ist(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=IST)


def test_quiet_hours_wrap_midnight():
    assert QUIET.contains(dt.time(21, 0)) and QUIET.contains(dt.time(3, 0))
    assert QUIET.contains(dt.time(8, 59)) and not QUIET.contains(dt.time(9, 0))
    assert not QUIET.contains(dt.time(20, 59))
    assert not windows.parse_quiet_hours("off").contains(dt.time(3, 0))


@pytest.mark.parametrize("bad", ["9-21", "25:00-09:00", "21:00", "nine to five"])
def test_bad_quiet_hours_are_refused(bad: str):
    with pytest.raises(windows.InvalidQuietHours):
        windows.parse_quiet_hours(bad)


def test_next_send_time_waits_for_the_morning():
    assert windows.next_send_time(ist(MONDAY, 22), kind=NEW, quiet=QUIET) == ist(
        MONDAY + dt.timedelta(days=1), 9
    )
    assert windows.next_send_time(ist(MONDAY, 3), kind=NEW, quiet=QUIET) == ist(MONDAY, 9)
    assert windows.next_send_time(ist(MONDAY, 12), kind=NEW, quiet=QUIET) == ist(MONDAY, 12)


def test_warnings_skip_sundays_and_holidays_other_kinds_do_not():
    saturday_night = ist(MONDAY + dt.timedelta(days=5), 22)
    tuesday = MONDAY + dt.timedelta(days=8)
    holidays = {MONDAY + dt.timedelta(days=7)}  # the next Monday
    assert windows.next_send_time(
        saturday_night, kind=WARNING, quiet=QUIET, holidays=holidays
    ) == ist(tuesday, 9)
    assert windows.next_send_time(saturday_night, kind=NEW, quiet=QUIET, holidays=holidays) == ist(
        MONDAY + dt.timedelta(days=6), 9
    )
    sunday_noon = ist(MONDAY + dt.timedelta(days=6), 12)
    assert windows.blocker(sunday_noon, kind=WARNING, quiet=QUIET) == "sunday"
    assert windows.blocker(sunday_noon, kind=NEW, quiet=QUIET) is None
    assert (
        windows.blocker(
            ist(tuesday - dt.timedelta(days=1), 12), kind=WARNING, quiet=QUIET, holidays=holidays
        )
        == "holiday"
    )


def _calendar(holidays=frozenset()):  # type: ignore[no-untyped-def]
    from notifier import jobs

    return jobs.Calendar(
        kind=WARNING,
        quiet=QUIET,
        holidays=frozenset(holidays),
        moratoriums={},
        notice_hours_default=24,
    )


def test_the_announced_cut_is_a_whole_hour_after_the_notice_inside_the_cut_window():
    cal = _calendar()
    # Monday 15:20 + 24 h = Tuesday 15:20 → 16:00, when KESCO no longer cuts prepaid → Wed 11:00.
    assert cal.cut_from(ist(MONDAY, 15, 20), "KESCO", "smart_prepaid", {}) == ist(
        MONDAY + dt.timedelta(days=2), 11
    )
    # Postpaid (UPPCL: 08:00-18:00): Tuesday 16:00.
    assert cal.cut_from(ist(MONDAY, 15, 20), "KESCO", "postpaid", {}) == ist(
        MONDAY + dt.timedelta(days=1), 16
    )
    # Saturday noon + 24 h is a Sunday; Monday is a holiday: Tuesday 11:00.
    saturday = MONDAY + dt.timedelta(days=5)
    holiday_cal = _calendar({MONDAY + dt.timedelta(days=7)})
    assert holiday_cal.cut_from(ist(saturday, 12), "KESCO", "smart_prepaid", {}) == ist(
        MONDAY + dt.timedelta(days=8), 11
    )
    # A campaign's own notice wins over the default.
    assert cal.cut_from(ist(MONDAY, 9, 0), "KESCO", "smart_prepaid", {"notice_hours": 0}) == ist(
        MONDAY, 11
    )
