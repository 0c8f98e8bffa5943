"""Menu digits, bare account numbers and messages the NLU could not place."""

from __future__ import annotations

import pytest

from bot.actions.menu import HANDLERS, ActionAnswerWithAccount, ActionFallback
from bot.actions.topics import MENU, menu_choice
from tests.actions.helpers import (
    MOBILE,
    add_bill,
    add_consumer,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

pytestmark = pytest.mark.usefixtures("store_env")


def answer(text: str, **kw):  # type: ignore[no-untyped-def]
    return run(ActionAnswerWithAccount(), tracker(text, intent="inform_account_number", **kw))


def test_every_menu_entry_has_a_handler() -> None:
    assert set(MENU) <= set(HANDLERS)


@pytest.mark.parametrize("digit", ["2", "२"])
def test_menu_digit_answers_that_entry(store_env, digit: str) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 123450)
    events, messages = answer(digit, entities={"account_number": digit}, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_bill_details"]
    assert slots_set(events)["needs_account"] is False


def test_menu_digit_for_an_account_question_from_an_unknown_sender_asks_for_the_number() -> None:
    # (5, a power cut, needs no account: it asks where; see tests/actions/test_complaints.py.)
    events, messages = answer("2", sender_id="default")
    assert messages == []
    assert slots_set(events) == {
        "pending_query": "bill",
        "needs_account": True,
    }


@pytest.mark.parametrize(("digit", "response"), [("9", "utter_handoff")])
def test_menu_entries_without_an_account(digit: str, response: str) -> None:
    events, messages = answer(digit, sender_id="default")
    assert responses(messages) == [response]
    assert slots_set(events)["needs_account"] is False


def test_menu_digit_3_pays_and_asks_an_unknown_sender_for_the_account(store_env) -> None:
    events, messages = answer("3", sender_id="default")
    assert messages == []
    assert slots_set(events) == {
        "pending_query": "pay",
        "needs_account": True,
    }


def test_a_number_answers_the_pending_question(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", mobile=None)
    events, messages = answer(
        "456789",
        entities={"account_number": "456789"},
        slots={"pending_query": "power_cut", "account_number": "456789"},
        active_loop="account_form",
    )
    assert responses(messages) == ["utter_power_cut_ticket"]
    slots = slots_set(events)
    assert slots["pending_query"] is None and slots["needs_account"] is False
    assert {"event": "active_loop", "name": None} in [
        {k: e.get(k) for k in ("event", "name")} for e in events
    ]


def test_a_bare_number_with_nothing_pending_is_converted(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    _, messages = answer("456789", entities={"account_number": "456789"})
    assert responses(messages) == ["utter_new_number_lookup"]


def test_a_wrong_length_number_is_refused_and_asked_again() -> None:
    events, messages = answer(
        "12345", entities={"account_number": "12345"}, slots={"pending_query": "bill"}
    )
    assert responses(messages) == ["utter_invalid_account_number"]
    assert slots_set(events)["needs_account"] is True
    events, messages = answer("12345")
    assert responses(messages) == ["utter_invalid_account_number"]
    assert slots_set(events)["needs_account"] is False


def test_fallback_shows_the_menu() -> None:
    events, messages = run(ActionFallback(), tracker("asdf qwerty", intent="nlu_fallback"))
    assert responses(messages) == ["utter_fallback", "utter_help"]
    assert slots_set(events) == {"needs_account": False}
    _, messages = run(ActionFallback(), tracker("who won the match", intent="out_of_scope"))
    assert responses(messages) == ["utter_out_of_scope", "utter_help"]


def test_fallback_dispatches_a_devanagari_menu_digit(store_env) -> None:
    add_consumer(store_env, "1234567890")
    _, messages = run(ActionFallback(), tracker("१", intent="nlu_fallback", **whatsapp(MOBILE)))
    assert responses(messages) == ["utter_new_account_number"]


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("1", "new_number"),
        ("2", "bill"),
        ("२", "bill"),
        (" 5. ", "power_cut"),
        ("option 9", "handoff"),
        ("८", "balance"),
        ("0", None),
        ("10", None),
        ("22", None),
        ("2 bill", None),
        ("456789", None),
    ],
)
def test_menu_choice(text: str, choice: str | None) -> None:
    assert menu_choice(text) == choice
