"""How actions read the latest message: account numbers in context, and where a session starts."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.accounts import ValidateAccountForm
from bot.actions.guard import LookupGuard
from bot.actions.menu import ActionAnswerWithAccount
from bot.actions.payments import ActionPaymentNotReflected
from bot.actions.slots import ValidateSlotMappings
from bot.actions.turn import Turn, reading_context, starts_a_session
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
    # Unasked, it may as well be a mobile: the bot says it did not understand and shows the menu.
    _, messages = run(
        ActionAnswerWithAccount(),
        tracker("mera number 9123456789 hai", intent="inform_account_number"),
    )
    assert responses(messages) == ["utter_fallback", "utter_help"]


@pytest.mark.parametrize(("text", "entity"), NOT_ACCOUNTS)
def test_a_message_the_nlu_took_for_a_number_given_gets_the_menu(
    store_env, redis_conn, text: str, entity: str | None
) -> None:
    """The real NLU files "maine 20-11-2026 ko 1500 rs bhara" under inform_account_number."""
    add_consumer(store_env, "1234567890", old="456789", mobile=MOBILE)
    entities = {"account_number": entity} if entity else None
    trk = tracker(text, intent="inform_account_number", entities=entities, **whatsapp(MOBILE))
    events, messages = run(ActionAnswerWithAccount(), trk)
    assert responses(messages) == ["utter_fallback", "utter_help"]
    assert slots_set(events)["needs_account"] is False
    assert lookups(redis_conn, MOBILE) == 0


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


# --------------------------------------------------------------------------- sessions

#: A stranger asked for a bill; the account form asked for the number and got no answer.
WAITING = {"pending_query": "bill", "needs_account": True, "requested_slot": "account_number"}
FIRST_SESSION: list[dict[str, Any]] = [
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "bill kitna hai"},
    {"event": "action", "name": "action_bill_amount"},
    *({"event": "slot", "name": name, "value": value} for name, value in WAITING.items()),
    {"event": "action", "name": "account_form"},
    {"event": "active_loop", "name": "account_form"},
    {"event": "action", "name": "action_listen"},
]


def second_session(text: str) -> list[dict[str, Any]]:
    """The events Rasa's action_session_start adds after the session expired, then ``text``."""
    carried = [{"event": "slot", "name": name, "value": v} for name, v in WAITING.items()]
    return [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
        *carried,
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text},
    ]


def test_a_session_starts_with_its_first_message() -> None:
    first = [*FIRST_SESSION[:4]]
    assert starts_a_session(tracker("bill kitna hai", events=first))
    assert not starts_a_session(tracker("456789", events=[*FIRST_SESSION, {"event": "user"}]))
    assert starts_a_session(tracker("456789", events=[*FIRST_SESSION, *second_session("456789")]))
    assert not starts_a_session(tracker("456789"))  # no session events at all: nothing to clear
    # The account form activating in the same turn runs the slot validation again: too late.
    answered = [*FIRST_SESSION[:5], {"event": "slot", "name": "pending_query", "value": "bill"}]
    assert not starts_a_session(tracker("bill kitna hai", events=answered))


def answer_after(
    events: list[dict[str, Any]], slots: dict[str, Any], active_loop: str | None
) -> tuple[dict[str, Any], list[str]]:
    """Run action_validate_slot_mappings, then action_answer_with_account, as Rasa does."""
    kw: dict[str, Any] = {"intent": "inform_account_number", "events": events}
    validated, _ = run(ValidateSlotMappings(), tracker("456789", slots=slots, **kw))
    slots = {**slots, **slots_set(validated)}
    loop = active_loop if slots.get("requested_slot") else None
    trk = tracker("456789", slots=slots, active_loop=loop, **kw)
    _, messages = run(ActionAnswerWithAccount(), trk)
    return slots_set(validated), responses(messages)


def test_a_question_left_in_an_expired_session_does_not_catch_the_next_message(
    store_env,
) -> None:
    add_consumer(store_env, "1234567890", old="456789", mobile=None)
    # Within the session the number answers the bill question that waits for it.
    _, replies = answer_after([*FIRST_SESSION, {"event": "user"}], WAITING, "account_form")
    assert replies == ["utter_registered_mobile_only"]
    # After the session expired, the same number is a question of its own: its new number.
    cleared, replies = answer_after([*FIRST_SESSION, *second_session("456789")], WAITING, None)
    assert cleared["pending_query"] is None and cleared["needs_account"] is None
    assert cleared["requested_slot"] is None
    assert replies == ["utter_new_number_lookup"]


def test_what_the_earlier_session_asked_does_not_widen_the_reading() -> None:
    events = [*FIRST_SESSION, *second_session("mera number 9123456789 hai")]
    trk = tracker("mera number 9123456789 hai", slots=WAITING, events=events)
    assert not reading_context(trk).asked


def test_awaiting_an_account_empties_only_a_held_number() -> None:
    """A number held (or set earlier in the same turn) is emptied; an empty one is left alone,
    so that the account form sees no value given since the message."""
    held = Turn(CollectingDispatcher(), tracker(slots={"account_number": "1234567890"}))
    held.await_account("bill")
    assert slots_set(held.events) == {
        "account_number": None,
        "pending_query": "bill",
        "needs_account": True,
    }

    empty = Turn(CollectingDispatcher(), tracker())
    empty.await_account("bill")
    assert slots_set(empty.events) == {"pending_query": "bill", "needs_account": True}

    set_this_turn = Turn(CollectingDispatcher(), tracker())
    set_this_turn.set("account_number", "1234567890")
    set_this_turn.await_account("bill")
    assert set_this_turn.events[-3:] == [
        SlotSet("account_number", None),
        SlotSet("pending_query", "bill"),
        SlotSet("needs_account", True),
    ]
