"""The numbered help menu, a bare account number, and messages the NLU could not place.

A reply of "2" or "२" picks a menu entry whatever intent the NLU gave it, so the actions that
catch numbers and fallbacks dispatch menu choices to the topic handlers here.
"""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.accounts import Kind, digit_runs
from bot.actions import topics
from bot.actions.accounts import MIN_ATTEMPT_DIGITS, handle_new_number
from bot.actions.billing import handle_balance, handle_bill, handle_disconnection
from bot.actions.complaints import handle_handoff, handle_power_cut, handle_wrong_bill
from bot.actions.payments import handle_pay, handle_payment_missing, handle_receipt
from bot.actions.topics import menu_choice
from bot.actions.turn import NEEDS_ACCOUNT, PENDING_QUERY, Turn

HANDLERS: dict[str, Callable[[Turn], None]] = {
    topics.NEW_NUMBER: handle_new_number,
    topics.BILL: handle_bill,
    topics.PAY: handle_pay,
    topics.RECEIPT: handle_receipt,
    topics.PAYMENT_MISSING: handle_payment_missing,
    topics.POWER_CUT: handle_power_cut,
    topics.WRONG_BILL: handle_wrong_bill,
    topics.DISCONNECTION: handle_disconnection,
    topics.BALANCE: handle_balance,
    topics.HANDOFF: handle_handoff,
}


def dispatch(turn: Turn, topic: str) -> None:
    """Answer ``topic`` as if its intent had been recognised."""
    HANDLERS[topic](turn)
    if not turn.slot_events(NEEDS_ACCOUNT):
        # The dialogue rules after these actions branch on needs_account: always set it.
        turn.set(NEEDS_ACCOUNT, False)


def _tries_a_number(turn: Turn) -> bool:
    """True when the message holds digits meant as an account number, of the wrong length."""
    return any(
        r.kind is Kind.OTHER and len(r.digits) >= MIN_ATTEMPT_DIGITS for r in turn.readings()
    )


class ActionAnswerWithAccount(Action):
    """An account number given (after the account form, or on its own), or a menu digit."""

    def name(self) -> str:
        return "action_answer_with_account"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        turn.leave_form()
        pending = tracker.get_slot(PENDING_QUERY)
        topic = pending if pending in topics.ACCOUNT_TOPICS else None
        if turn.number_from_form() is not None:
            # The account form took an account from this message ("2", "pehla", "dukaan wala"):
            # it answers the question waiting, not the help menu.
            dispatch(turn, topic or topics.NEW_NUMBER)
            return turn.events
        choice = menu_choice(turn.text)
        if choice is not None:
            dispatch(turn, choice)
            return turn.events
        if turn.number_in_message() is None:
            if topic is None and not _tries_a_number(turn):
                # The NLU took a message about something else for a number given ("maine
                # 20-11-2026 ko 1500 rs bhara"): answer as for a message it could not place.
                turn.say("utter_fallback")
                turn.say("utter_help")
                turn.settled()
                return turn.events
            if digit_runs(turn.text):
                turn.say("utter_invalid_account_number")
                if topic is not None:
                    turn.await_account(topic)
                else:
                    turn.settled()
                return turn.events
        # A bare number with nothing pending is most often an old number to convert.
        dispatch(turn, topic or topics.NEW_NUMBER)
        return turn.events


class ActionFallback(Action):
    """nlu_fallback and out_of_scope: a menu digit is dispatched, anything else gets the menu."""

    def name(self) -> str:
        return "action_fallback"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        choice = menu_choice(turn.text)
        if choice is not None:
            turn.leave_form()
            dispatch(turn, choice)
            return turn.events
        turn.say("utter_out_of_scope" if turn.intent == "out_of_scope" else "utter_fallback")
        turn.say("utter_help")
        turn.set(NEEDS_ACCOUNT, False)
        return turn.events


__all__ = ["HANDLERS", "ActionAnswerWithAccount", "ActionFallback", "dispatch"]
