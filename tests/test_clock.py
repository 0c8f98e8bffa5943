"""IST, one zone for the store, the bot and the notifier (bot/clock.py)."""

from __future__ import annotations

import datetime as dt

from bot import clock
from bot.actions import guard
from bot.importers import values
from notifier import rules


def test_one_ist_everywhere():
    """Before the move, store.py and notifier/rules.py each defined their own IST."""
    assert rules.IST is clock.IST
    assert guard.IST is clock.IST
    assert values.IST is clock.IST
    assert clock.IST.utcoffset(None) == dt.timedelta(hours=5, minutes=30)


def test_naive_utc_and_aware_moments_convert_alike():
    naive = dt.datetime(2026, 3, 31, 20, 0)
    aware = naive.replace(tzinfo=dt.timezone.utc)
    assert clock.to_ist(naive) == clock.to_ist(aware)
    assert (clock.to_ist(naive).date(), clock.to_ist(naive).hour) == (dt.date(2026, 4, 1), 1)
    assert clock.utcnow().tzinfo is None
