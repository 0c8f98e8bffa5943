"""The enumeration guard: a daily limit on looking up accounts not registered to the sender."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot import store
from bot.actions.accounts import ActionNewAccountNumber
from bot.actions.guard import LookupGuard, day_key
from bot.clock import IST
from tests.actions.helpers import (
    MOBILE,
    STAFF_MOBILE,
    STRANGER,
    add_consumer,
    add_staff,
    responses,
    run,
    tracker,
    whatsapp,
)

pytestmark = pytest.mark.usefixtures("store_env")
OLD_NUMBERS = ["456781", "456782", "456783", "456784"]


@pytest.fixture()
def accounts(store_env):  # type: ignore[no-untyped-def]
    for i, old in enumerate(OLD_NUMBERS):
        add_consumer(store_env, f"12345678{i:02d}", old=old, mobile=MOBILE)
    return store_env


def look_up(number: str, mobile: str, role: str = "consumer") -> list[str]:
    kw = whatsapp(mobile, role=role)
    _, messages = run(
        ActionNewAccountNumber(),
        tracker(
            f"purana {number}",
            intent="ask_new_account_number",
            entities={"account_number": number},
            **kw,
        ),
    )
    return responses(messages)


def test_a_stranger_may_look_up_three_accounts_a_day(accounts, redis_conn) -> None:
    for old in OLD_NUMBERS[:3]:
        assert look_up(old, STRANGER) == ["utter_new_number_lookup"]
    # Asking again about one already seen today is free.
    assert look_up(OLD_NUMBERS[0], STRANGER) == ["utter_new_number_lookup"]
    assert look_up(OLD_NUMBERS[3], STRANGER) == ["utter_lookup_limit_reached"]
    with store.session_scope(accounts) as session:
        [row] = session.query(store.AuditLog).all()
        assert (row.action, row.subject, row.actor) == ("lookup_refused", "456784", "+91******1111")
        assert json.loads(row.detail)["limit"] == 3
    # The count lives in Redis under the sender and the IST day, and expires.
    [key] = redis_conn.keys("bijli:lookups:*")
    assert key.decode().startswith(f"bijli:lookups:{STRANGER}:")
    assert 0 < redis_conn.ttl(key) <= 2 * 86400


def test_unknown_numbers_count_too(store_env) -> None:
    for number in ("999991", "999992", "999993"):
        assert look_up(number, STRANGER) == ["utter_account_not_found"]
    assert look_up("999994", STRANGER) == ["utter_lookup_limit_reached"]


def test_own_accounts_and_verified_staff_are_not_limited(accounts) -> None:
    add_staff(accounts)
    for old in OLD_NUMBERS:
        assert look_up(old, MOBILE) == ["utter_new_number_lookup"]
        # Staff have a cap of their own (BIJLI_STAFF_LOOKUP_LIMIT_PER_DAY; test_staff.py).
        assert look_up(old, STAFF_MOBILE, role="staff")[0] == "utter_staff_account_details"


def test_old_and_new_number_of_one_account_count_once(accounts) -> None:
    assert look_up(OLD_NUMBERS[0], STRANGER) == ["utter_new_number_lookup"]
    assert look_up("1234567800", STRANGER) == ["utter_already_new_number"]
    for old in OLD_NUMBERS[1:3]:
        assert look_up(old, STRANGER) == ["utter_new_number_lookup"]


def test_the_count_starts_afresh_each_ist_day(redis_conn) -> None:
    guard = LookupGuard(redis_conn, limit=1)
    # Tomorrow 23:30 IST and half an hour after the following midnight (keys expire in the future).
    tomorrow = dt.datetime.now(IST).date() + dt.timedelta(days=1)
    late = dt.datetime.combine(tomorrow, dt.time(23, 30), tzinfo=IST)
    after_midnight = late + dt.timedelta(hours=1)
    assert guard.allow("s", "A", late.astimezone(dt.timezone.utc))
    assert not guard.allow("s", "B", late)
    assert guard.allow("s", "B", after_midnight)
    assert day_key("s", late) == f"bijli:lookups:s:{tomorrow:%Y%m%d}"
    assert day_key("s", after_midnight.astimezone(dt.timezone.utc)) == (
        f"bijli:lookups:s:{tomorrow + dt.timedelta(days=1):%Y%m%d}"
    )
