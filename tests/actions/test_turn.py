"""How actions read the latest message: account numbers in the conversation's context."""

from __future__ import annotations

from typing import Any

import pytest

from bot.actions.accounts import ValidateAccountForm
from bot.actions.guard import LookupGuard
from bot.actions.menu import ActionAnswerWithAccount
from bot.actions.payments import ActionPaymentNotReflected
from bot.actions.slots import ValidateSlotMappings
from bot.actions.turn import reading_context
from bot.store import Ticket, session_scope
from tests.actions.helpers import (
    MOBILE,
    STRANGER,
    add_consumer,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

pytestmark = pytest.mark.usefixtures("store_env")

#: The messages issue 9 reported, with the entity Rasa's regex extractor tags in each, if any.
NOT_ACCOUNTS = [
    ("maine 20-11-2026 ko 1500 rs bhara", None),
    ("paid 150000 par bill me nahi dikha", "150000"),
    ("mobile 9876543210 pe paisa kata, bill me nahi aaya", "9876543210"),
]


def lookups(redis_conn: Any, mobile: str) -> int:
    """Foreign accounts the sender has looked up today (the daily cap's count)."""
    return LookupGuard(redis_conn, limit=3).used(mobile)


def paid_but_missing(text: str, entity: str | None, mobile: str) -> tuple[list[Any], list[Any]]:
    entities = {"account_number": entity} if entity else None
    trk = tracker(text, intent="payment_not_reflected", entities=entities, **whatsapp(mobile))
    return run(ActionPaymentNotReflected(), trk)


@pytest.mark.parametrize(("text", "entity"), NOT_ACCOUNTS)
def test_a_registered_consumer_is_answered_for_their_own_account(
    store_env, redis_conn, text: str, entity: str | None
) -> None:
    add_consumer(store_env, "1234567890", old="456789", mobile=MOBILE)
    events, messages = paid_but_missing(text, entity, MOBILE)
    # Not "account 20112026 not found": the ticket is opened on the sender's account.
    assert responses(messages) == ["utter_payment_ticket"]
    assert slots_set(events)["account_number"] == "1234567890"
    with session_scope(store_env) as session:
        [ticket] = session.query(Ticket).all()
        assert ticket.new_account_no == "1234567890"
    assert lookups(redis_conn, MOBILE) == 0


@pytest.mark.parametrize(("text", "entity"), NOT_ACCOUNTS)
def test_a_stranger_is_asked_for_the_account_and_spends_no_lookup(
    store_env, redis_conn, text: str, entity: str | None
) -> None:
    add_consumer(store_env, "1234567890", old="456789", mobile=MOBILE)
    events, messages = paid_but_missing(text, entity, STRANGER)
    assert messages == []
    assert slots_set(events)["needs_account"] is True
    assert lookups(redis_conn, STRANGER) == 0


def test_a_number_written_as_an_account_is_still_looked_up(store_env, redis_conn) -> None:
    """The control: the same question with an account number spends one lookup."""
    add_consumer(store_env, "1234567890", old="456789", mobile=MOBILE)
    _, messages = paid_but_missing("maine khata 456789 ka 1500 rs bhara", "456789", STRANGER)
    assert responses(messages) == ["utter_payment_ticket"]
    assert lookups(redis_conn, STRANGER) == 1


def test_the_context_comes_from_the_conversation() -> None:
    plain = reading_context(tracker("bill kitna hai", intent="ask_bill_amount", **whatsapp(MOBILE)))
    assert (plain.asked, plain.about_account, plain.mobile) == (False, True, MOBILE)
    form = tracker(
        "456789",
        intent="inform_account_number",
        slots={"requested_slot": "account_number"},
        active_loop="account_form",
    )
    assert reading_context(form).asked and not reading_context(form).about_account
    not_found = tracker("456789", slots={"pending_query": "new_number"})
    assert reading_context(not_found).asked
    assert not reading_context(tracker("namaste", intent="greet")).asked


def test_a_mobile_is_an_account_number_only_when_one_was_asked_for(store_env) -> None:
    add_consumer(store_env, "9123456789", mobile=None)
    waiting = {"pending_query": "new_number"}
    _, messages = run(
        ActionAnswerWithAccount(),
        tracker("mera number 9123456789 hai", intent="inform_account_number", slots=waiting),
    )
    assert responses(messages) == ["utter_already_new_number"]
    _, messages = run(
        ActionAnswerWithAccount(),
        tracker("mera number 9123456789 hai", intent="inform_account_number"),
    )
    assert responses(messages) == ["utter_invalid_account_number"]


@pytest.mark.parametrize("text", ["mobile 9876543210", "paid 150000", "20-11-2026"])
def test_the_account_form_refuses_what_is_not_an_account_number(text: str) -> None:
    form = {"requested_slot": "account_number", "account_number": None}
    trk = tracker(
        text,
        intent="inform_account_number",
        slots=form,
        active_loop="account_form",
        events=[{"event": "slot", "name": "account_number", "value": None}],
    )
    events, messages = run(ValidateAccountForm(), trk)
    assert slots_set(events) == {"account_number": None}
    assert responses(messages) == ["utter_invalid_account_number"]


def test_a_mobile_tagged_by_the_nlu_does_not_replace_the_account_held() -> None:
    events = [
        {"event": "slot", "name": "account_number", "value": "1234567890"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "mobile 9876543210"},
        {"event": "slot", "name": "account_number", "value": "9876543210"},
    ]
    trk = tracker(
        "mobile 9876543210",
        intent="inform_account_number",
        entities={"account_number": "9876543210"},
        slots={"account_number": "9876543210"},
        events=events,
    )
    validated, _ = run(ValidateSlotMappings(), trk)
    assert slots_set(validated)["account_number"] == "1234567890"
