"""New account numbers: the old-to-new lookup, and the form that asks for an account number.

KESCO's move to UPPCL's billing gave every account a 10-digit number. A sender whose mobile is
registered gets their new number at once; anyone else gives the old number and gets the new one
with the name masked, as UPPCL's own lookup shows it.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import connections
from bot.accounts import account_numbers_in, digit_runs, normalise_account_number
from bot.actions.formatting import mask_name
from bot.actions.resolve import (
    Outcome,
    Resolution,
    account_lines,
    look_up,
    registered_accounts,
    settle_unresolved,
    verified_staff,
)
from bot.actions.topics import ACCOUNT_TOPICS, NEW_NUMBER, TOPIC_BY_INTENT, menu_choice
from bot.actions.turn import (
    ACCOUNT_NUMBER,
    PENDING_QUERY,
    REQUESTED_SLOT,
    TopicAction,
    Turn,
    reading_context,
)
from bot.store import Consumer

ACCOUNT_FORM = "account_form"
#: Digit runs shorter than this are menu choices or noise, not attempts at an account number.
MIN_ATTEMPT_DIGITS = 3


def handle_new_number(turn: Turn) -> None:
    """Answer "what is my new account number?"."""
    with connections.session() as session:
        sender = turn.sender
        registered = registered_accounts(session, sender)
        staff = verified_staff(session, sender)
        given = turn.number_in_message()
        remembered = turn.remembered_number()
        if given:
            res = look_up(session, sender, given, registered=registered, staff=staff)
        elif len(registered) == 1:
            res = Resolution(Outcome.FOUND, consumer=registered[0], own=True, staff=staff)
        elif registered:
            turn.say("utter_new_account_numbers", accounts=account_lines(registered))
            turn.settled()
            return
        elif remembered:
            res = look_up(session, sender, remembered, registered=registered, staff=staff)
        else:
            turn.await_account(NEW_NUMBER)
            return
        if settle_unresolved(turn, NEW_NUMBER, res):
            return
        assert res.consumer is not None
        _say_new_number(turn, res, res.consumer, asked_with=given)
        turn.settled(res.consumer.new_account_no)


def _say_new_number(
    turn: Turn, res: Resolution, consumer: Consumer, asked_with: str | None
) -> None:
    values = {
        "new_account_no": consumer.new_account_no,
        "old_account_no": consumer.old_account_no or "—",
        "masked_name": mask_name(consumer.name),
    }
    if res.staff and not res.own:
        # Meter readers verify accounts in the field: they see the name and where it is.
        turn.say(
            "utter_staff_account_details",
            name=consumer.name,
            area=consumer.area or "—",
            meter_type=consumer.meter_type,
            category=consumer.category,
            **values,
        )
    elif asked_with is not None and len(asked_with) == 10:
        turn.say("utter_already_new_number", **values)
    elif asked_with is not None:
        turn.say("utter_new_number_lookup", **values)
    else:
        turn.say("utter_new_account_number", **values)


class ActionNewAccountNumber(TopicAction):
    """ask_new_account_number."""

    action_name = "action_new_account_number"
    handle = staticmethod(handle_new_number)


class ActionAskAccountNumber(Action):
    """The account form's question: the old number for a lookup, any number otherwise."""

    def name(self) -> str:
        return "action_ask_account_number"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if tracker.get_slot(PENDING_QUERY) == NEW_NUMBER:
            dispatcher.utter_message(response="utter_ask_old_account_number")
        else:
            dispatcher.utter_message(response="utter_ask_account_number")
        return []


class ValidateAccountForm(FormValidationAction):
    """Takes an account number from the reply, even when NLU saw no entity (e.g. "४५६७८९")."""

    def name(self) -> str:
        return "validate_account_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        if tracker.get_slot(REQUESTED_SLOT) == ACCOUNT_NUMBER and menu_choice(text):
            # "2" answers the help menu, not the form: reject, and the dialogue dispatches it.
            return [ActionExecutionRejected(ACCOUNT_FORM)]
        return await super().run(dispatcher, tracker, domain)

    async def extract_account_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if tracker.get_slot(REQUESTED_SLOT) != ACCOUNT_NUMBER:
            return {}
        if normalise_account_number(tracker.get_slot(ACCOUNT_NUMBER)):
            return {}  # the NLU's entity, which action_validate_slot_mappings let through
        text = (tracker.latest_message or {}).get("text") or ""
        attempts = [run for run in digit_runs(text) if len(run) >= MIN_ATTEMPT_DIGITS]
        if not attempts:
            # Nothing like a number: the form rejects and the dialogue handles the message.
            return {}
        # Else the first attempt, which validation refuses saying what an account number is.
        given = account_numbers_in(text, reading_context(tracker))
        return {ACCOUNT_NUMBER: (given or attempts)[0]}

    def validate_account_number(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if value is None:
            return {ACCOUNT_NUMBER: None}  # nothing given yet (the form is just starting)
        number = normalise_account_number(value)
        text = (tracker.latest_message or {}).get("text") or ""
        if number is None or number not in account_numbers_in(text, reading_context(tracker)):
            # Too short, or written as a mobile, a date, an amount ("paid 150000").
            dispatcher.utter_message(response="utter_invalid_account_number")
            return {ACCOUNT_NUMBER: None}
        slots: dict[str, Any] = {ACCOUNT_NUMBER: number}
        # "456789 ka bill" in answer to the new-number question asks about the bill now.
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        topic = TOPIC_BY_INTENT.get(intent or "")
        if topic in ACCOUNT_TOPICS and topic != tracker.get_slot(PENDING_QUERY):
            slots[PENDING_QUERY] = topic
        return slots


__all__ = [
    "ACCOUNT_FORM",
    "ActionAskAccountNumber",
    "ActionNewAccountNumber",
    "ValidateAccountForm",
    "handle_new_number",
]
