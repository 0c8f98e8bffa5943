"""Slots filled from every user message: reply register, channel, mobile and claimed role.

Rasa runs ``action_validate_slot_mappings`` after each user message, before it predicts what
to do, so responses already render in the register of the message they answer. Channel, mobile
and role come only from the sender Rasa's gateway channel vouched for (``sender_of``); without
a vouch (``rasa test``) the sender is simply unregistered. The slots only mirror that: no action
reads a sender from them. The same action
keeps an account number only where the text gives one (bot/accounts.py), and clears on a new
session's first message the question the previous session left waiting (turn.DIALOGUE_SLOTS).
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker, ValidationAction
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.accounts import account_numbers_in, normalise_account_number
from bot.actions.language import detect_register, parse_language_choice
from bot.actions.turn import (
    ACCOUNT_NUMBER,
    DIALOGUE_SLOTS,
    reading_context,
    sender_of,
    starts_a_session,
)

LANGUAGE = "language"
LANGUAGE_CHOICE = "language_choice"
CHANNEL = "channel"
ROLE = "role"
MOBILE = "mobile"


def slot_values(tracker: Tracker) -> dict[str, Any]:
    """The values the latest message gives these slots (unchanged ones included)."""
    message = tracker.latest_message or {}
    text = message.get("text") or ""
    intent = (message.get("intent") or {}).get("name")
    sender = sender_of(tracker)
    values: dict[str, Any] = {}
    if sender.channel:
        values[CHANNEL] = sender.channel
    if sender.mobile:
        values[MOBILE] = sender.mobile
    if sender.claimed_role:
        values[ROLE] = sender.claimed_role
    choice = parse_language_choice(text) if intent == "change_language" else None
    if choice:
        values[LANGUAGE_CHOICE] = choice
    # An explicit choice outlasts the register of later messages.
    chosen = choice or tracker.get_slot(LANGUAGE_CHOICE)
    values[LANGUAGE] = chosen or detect_register(text, tracker.get_slot(LANGUAGE))
    if ACCOUNT_NUMBER in tracker.slots_to_validate():
        # The NLU tags menu digits ("2"), dates and mobiles as account numbers too: a candidate
        # the text does not give as an account number must not erase the one already held.
        number = normalise_account_number(tracker.get_slot(ACCOUNT_NUMBER))
        if number not in account_numbers_in(text, reading_context(tracker)):
            number = None
        values[ACCOUNT_NUMBER] = number or value_before_candidates(tracker, ACCOUNT_NUMBER)
    if starts_a_session(tracker):
        # Rasa's action_session_start carried every slot over; a question the last session
        # left waiting must not catch this message (the channel, language and account stay).
        values.update(dict.fromkeys(DIALOGUE_SLOTS))
    return values


def value_before_candidates(tracker: Tracker, slot: str) -> Any:
    """The slot's value before the extracted candidates at the end of the tracker's events."""
    events = list(tracker.events)
    index = len(events)
    while index > 0 and events[index - 1].get("event") == "slot":
        index -= 1
    for event in reversed(events[:index]):
        if event.get("event") == "slot" and event.get("name") == slot:
            return event.get("value")
    return None


class ValidateSlotMappings(ValidationAction):
    """action_validate_slot_mappings: sets only the slots whose value changes."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        candidates = tracker.slots_to_validate()
        return [
            SlotSet(name, value)
            for name, value in slot_values(tracker).items()
            # An extracted candidate is re-set even when unchanged, or Rasa keeps the raw one.
            if name in candidates or tracker.get_slot(name) != value
        ]


class ActionChangeLanguage(Action):
    """change_language: confirm the register chosen, or ask which one when none was named."""

    def name(self) -> str:
        return "action_change_language"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        choice = parse_language_choice((tracker.latest_message or {}).get("text"))
        if choice is None:
            dispatcher.utter_message(response="utter_ask_language")
            return []
        dispatcher.utter_message(response="utter_language_changed")
        return [SlotSet(LANGUAGE_CHOICE, choice), SlotSet(LANGUAGE, choice)]


__all__ = ["ActionChangeLanguage", "ValidateSlotMappings", "slot_values"]
