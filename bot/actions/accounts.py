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
from bot.actions.choices import Kind as ChoiceKind
from bot.actions.choices import option_lines, read_choice
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
from bot.actions.staff_card import show_card
from bot.actions.topics import ACCOUNT_TOPICS, NEW_NUMBER, TOPIC_BY_INTENT, menu_choice
from bot.actions.turn import (
    ACCOUNT_FORM,
    ACCOUNT_NUMBER,
    PENDING_QUERY,
    REQUESTED_SLOT,
    TopicAction,
    Turn,
    question_asked,
    reading_context,
    sender_of,
)
from bot.store import Consumer

#: Digit runs shorter than this are menu choices or noise, not attempts at an account number.
MIN_ATTEMPT_DIGITS = 3
#: What the form's extraction hands its validation for a choice that fits no account or several.
NO_SUCH_CHOICE = "no-such-choice"
#: Intents of messages that are about something else even when they hold a name or category
#: word ("is ram@ybl real?") or digits: only "1", "pehla" or a real account number answers the
#: form then.
NOT_A_CHOICE = frozenset(
    {"verify_payment_link", "change_language", "human_handoff", "goodbye", "deny", "out_of_scope"}
)


def handle_new_number(turn: Turn) -> None:
    """Answer "what is my new account number?"."""
    if show_card(turn, turn.number_in_message()):
        return  # an active staff member verifying an account in the field
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
    if asked_with is not None and len(asked_with) == 10:
        turn.say("utter_already_new_number", **values)
    elif asked_with is not None:
        turn.say("utter_new_number_lookup", **values)
    else:
        turn.say("utter_new_account_number", **values)


class ActionNewAccountNumber(TopicAction):
    """ask_new_account_number."""

    action_name = "action_new_account_number"
    handle = staticmethod(handle_new_number)


def account_options(tracker: Tracker) -> list[Consumer]:
    """The accounts the account form lists for the sender to choose from (none: ask a number).

    A mobile with several accounts chooses among them for every question but its new numbers,
    which it gets all at once (handle_new_number).
    """
    if tracker.get_slot(PENDING_QUERY) == NEW_NUMBER:
        return []
    sender = sender_of(tracker)
    if sender.mobile is None:
        return []
    with connections.session() as session:
        registered = registered_accounts(session, sender)
    return registered if len(registered) > 1 else []


class ActionAskAccountNumber(Action):
    """The account form's question: the numbered list of the mobile's accounts when it has
    several, else the old number for a lookup, any number otherwise."""

    def name(self) -> str:
        return "action_ask_account_number"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        options = account_options(tracker)
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        # After a language change the question is offered once more, saying what it was for
        # ("Aap pehle pooch rahe the: ..."), in the new language.
        asked = question_asked(tracker) if intent == "change_language" else None
        again = {"question": quote(asked)} if asked else {}
        if options:
            dispatcher.utter_message(
                response="utter_choose_account_again" if again else "utter_choose_account",
                accounts=option_lines(options, tracker.get_slot("language")),
                **again,
            )
        elif tracker.get_slot(PENDING_QUERY) == NEW_NUMBER:
            dispatcher.utter_message(
                response="utter_ask_old_account_again" if again else "utter_ask_old_account_number",
                **again,
            )
        else:
            dispatcher.utter_message(
                response="utter_ask_account_again" if again else "utter_ask_account_number",
                **again,
            )
        return []


#: A quoted question longer than this is cut (with "…").
MAX_QUOTE = 60


def quote(text: str) -> str:
    """``text`` short enough to quote back in a reply."""
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1].rstrip() + "…"


class ActionLeaveAccountForm(Action):
    """Leave the account form and drop its question: the user answered with something else.

    The rules run it after small talk, the menu, a fraud check, an out-of-scope message or a
    goodbye while the form waits, so that nothing asks for an account number after them.
    """

    def name(self) -> str:
        return "action_leave_account_form"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        turn.leave_form()
        turn.settled()
        return turn.events


def _intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


class ValidateAccountForm(FormValidationAction):
    """Takes an account number from the reply, even when NLU saw no entity (e.g. "४५६७८९")."""

    def name(self) -> str:
        return "validate_account_form"

    def domain_slots(self, domain: DomainDict) -> list[str]:
        """The form's slots, as bot/intents/accounts.yml lists them: Rasa sends this action no
        domain (``send_domain: false`` there), and rasa_sdk reads nothing else from it."""
        return [ACCOUNT_NUMBER]

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        text = (tracker.latest_message or {}).get("text") or ""
        asking = tracker.get_slot(REQUESTED_SLOT) == ACCOUNT_NUMBER
        if _intent(tracker) == "verify_payment_link":
            # Fraud first: a forwarded scam's "call 9876500000" is no answer to the form.
            return [ActionExecutionRejected(ACCOUNT_FORM)]
        if asking and menu_choice(text) and not account_options(tracker):
            # "2" answers the help menu, not the form: reject, and the dialogue dispatches it.
            # (Below a list of accounts, "2" picks the second account.)
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
        options = account_options(tracker) if not attempts else []
        intent = _intent(tracker)
        if options:
            choice = read_choice(text, options, words_count=intent not in NOT_A_CHOICE)
            if choice.kind is ChoiceKind.CHOSEN:
                assert choice.consumer is not None
                return {ACCOUNT_NUMBER: choice.consumer.new_account_no}
            if choice.kind is not ChoiceKind.NONE:
                return {ACCOUNT_NUMBER: NO_SUCH_CHOICE}
        if not attempts:
            # Nothing like a number: the form rejects and the dialogue handles the message.
            return {}
        given = account_numbers_in(text, reading_context(tracker))
        if not given and intent in NOT_A_CHOICE:
            # About something else ("English please, 9.30 baje"): the dialogue answers it.
            return {}
        # Else the first attempt, which validation refuses saying what an account number is.
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
        if value == NO_SUCH_CHOICE:
            # "3" or "teesra" below two accounts, "ghar wala" when both are homes: the form
            # shows the list again.
            dispatcher.utter_message(response="utter_invalid_account_choice")
            return {ACCOUNT_NUMBER: None}
        number = normalise_account_number(value)
        text = (tracker.latest_message or {}).get("text") or ""
        chosen = number is not None and any(
            c.new_account_no == number for c in account_options(tracker)
        )
        if not chosen and (
            number is None or number not in account_numbers_in(text, reading_context(tracker))
        ):
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
    "ActionLeaveAccountForm",
    "ActionNewAccountNumber",
    "ValidateAccountForm",
    "account_options",
    "handle_new_number",
]
