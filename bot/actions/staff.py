"""Meter readers and officers: verify an account, record a visit (a form), today's progress.

Every action reads the staff table for the sender the gateway vouched for (bot/actions/turn.py),
on every message, and answers a sender who is not active staff exactly as a consumer: the same
wording from a consumer ("verify 1234567") gets the consumer's lookup, masked and counted by the
enumeration guard. Staff lookups and visits go to the audit log (bot/verification.py).

The visit form asks its yes/no questions with buttons whose payloads are "1" and "2": WhatsApp
shows them as quick-reply buttons and a tap comes back as its payload; SMS shows numbered lines
("1. Haan 2. Nahi"). Either way the form reads back the digit, the word (haan/nahi, हाँ/नहीं,
yes/no) or "0" to cancel.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import connections, store, verification
from bot.accounts import ascii_digits
from bot.actions import topics
from bot.actions.menu import dispatch
from bot.actions.staff_card import VISIT_ACCOUNT, show_card
from bot.actions.turn import NEEDS_ACCOUNT, REQUESTED_SLOT, TopicAction, Turn
from bot.phone import NotAnIndianMobile, mask, parse_indian_mobile

VISIT_FORM = "staff_visit_form"
VISIT_OPEN = "visit_open"
INFORMED = "visit_informed"
MOBILE_OK = "visit_mobile_ok"
NEW_MOBILE = "visit_new_mobile"
CANCELLED = "visit_cancelled"
MOBILE_MASKED = "visit_mobile_masked"
FORM_SLOTS = (INFORMED, MOBILE_OK, NEW_MOBILE, CANCELLED)
#: The form's questions: Rasa asks each as utter_ask_<slot> (numbered options in the domain).
QUESTIONS = {
    INFORMED: "utter_ask_visit_informed",
    MOBILE_OK: "utter_ask_visit_mobile_ok",
    NEW_MOBILE: "utter_ask_visit_new_mobile",
}

#: What a reply to a yes/no question reads as (after digits are made ASCII and case folded).
_YES = frozenset("1 haan han haa ha hn ji yes y sahi हाँ हां हा जी सही".split())
_NO = frozenset("2 nahi nahin nhi nai na no n galat नहीं नही ना गलत".split())
_CANCEL = frozenset("0 cancel radd stop रद्द रद band".split())
#: A value extraction hands validation for a reply it could not read, and for "cancel".
UNREADABLE = "__unreadable__"
CANCEL = "__cancel__"
_WORD = re.compile(r"[\w\u0900-\u097F]+")


def _consumer_answer(turn: Turn, topic: str | None) -> None:
    """What a consumer gets for the same words: the topic's answer, else the menu."""
    if topic is not None:
        dispatch(turn, topic)
        return
    turn.say("utter_fallback")
    turn.say("utter_help")
    turn.set(NEEDS_ACCOUNT, False)


def handle_verify(turn: Turn) -> None:
    """staff_verify_account: the verification card for staff, a new-number lookup for others."""
    if show_card(turn, turn.number_in_message()):
        turn.set(NEEDS_ACCOUNT, False)
        return
    _consumer_answer(turn, topics.NEW_NUMBER)


def handle_start_visit(turn: Turn) -> None:
    """staff_record_visit: open the visit form about the account just verified (or named now)."""
    with connections.session() as session:
        staff = verification.active_staff(session, turn.sender.mobile)
    if staff is None:
        _consumer_answer(turn, None)
        turn.set(VISIT_OPEN, False)
        return
    given = turn.number_in_message()
    if given is not None:
        # A number named with the visit is looked up first (counted and audited like any other).
        show_card(turn, given)
        account = next(
            (e["value"] for e in turn.slot_events(VISIT_ACCOUNT) if e.get("value")), None
        )
    else:
        account = turn.tracker.get_slot(VISIT_ACCOUNT)
    consumer = None
    if account:
        with connections.session() as session:
            consumer = store.consumer_by_account(session, account)
            mobile = consumer.mobile if consumer is not None else None
    turn.set(NEEDS_ACCOUNT, False)
    if consumer is None:
        if given is None:
            turn.say("utter_staff_visit_needs_account")
        turn.set(VISIT_OPEN, False)
        return
    turn.set(VISIT_ACCOUNT, account)
    turn.set(MOBILE_MASKED, mask(mobile) if mobile else "—")
    for slot in FORM_SLOTS:
        turn.set(slot, None)
    turn.set(VISIT_OPEN, True)


def handle_progress(turn: Turn) -> None:
    """staff_progress: a reader's visits today and area coverage; an officer's area report."""
    with connections.session() as session:
        staff = verification.active_staff(session, turn.sender.mobile)
        if staff is None:
            _consumer_answer(turn, None)
            return
        figures = verification.area_figures(session, staff.area)
        if staff.role == "officer":
            turn.say(
                "utter_staff_area_report",
                area=figures.area or "—",
                informed=figures.informed,
                total=figures.total,
                percent=figures.percent,
                confirmed=figures.confirmed,
                pending=figures.pending,
                visits_today=figures.visits_today,
                readers_today=figures.readers_today,
            )
        else:
            today = verification.reader_today(session, staff)
            turn.say(
                "utter_staff_progress",
                visits_today=today.visits,
                informed_today=today.informed,
                area=figures.area or "—",
                area_informed=figures.informed,
                area_total=figures.total,
                area_percent=figures.percent,
            )
        store.audit(
            session,
            verification.actor(staff),
            "staff_report",
            subject=staff.area,
            role=staff.role,
            channel=turn.sender.channel,
        )
    turn.set(NEEDS_ACCOUNT, False)


class ActionStaffVerify(TopicAction):
    action_name = "action_staff_verify"
    handle = staticmethod(handle_verify)


class ActionStaffStartVisit(TopicAction):
    action_name = "action_staff_start_visit"
    handle = staticmethod(handle_start_visit)


class ActionStaffProgress(TopicAction):
    action_name = "action_staff_progress"
    handle = staticmethod(handle_progress)


# --------------------------------------------------------------------------- the visit form


def read_yes_no(text: str) -> bool | str:
    """True, False, :data:`CANCEL` or :data:`UNREADABLE` for a reply to a yes/no question."""
    words = _WORD.findall(ascii_digits(text).casefold())
    if not words:
        return UNREADABLE
    first = words[0]
    if first in _CANCEL:
        return CANCEL
    if first in _YES:
        return True
    if first in _NO:
        return False
    return UNREADABLE


class ValidateStaffVisitForm(FormValidationAction):
    """Reads the reader's answers; asks for a new mobile only when the one on record is wrong."""

    def name(self) -> str:
        return "validate_staff_visit_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        if tracker.get_slot(CANCELLED):
            return []
        needed = [INFORMED, MOBILE_OK]
        if tracker.get_slot(MOBILE_OK) is False:
            needed.append(NEW_MOBILE)
        return needed

    @staticmethod
    def _reply(tracker: Tracker, slot: str) -> str | None:
        if tracker.get_slot(REQUESTED_SLOT) != slot:
            return None
        return str((tracker.latest_message or {}).get("text") or "")

    def extract_visit_informed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = self._reply(tracker, INFORMED)
        return {} if text is None else {INFORMED: read_yes_no(text)}

    def extract_visit_mobile_ok(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = self._reply(tracker, MOBILE_OK)
        if text is None:
            return {}
        answer = read_yes_no(text)
        if answer == UNREADABLE and re.search(r"\d{5}", ascii_digits(text)):
            answer = text  # the new number, sent straight away
        return {MOBILE_OK: answer}

    def extract_visit_new_mobile(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        text = self._reply(tracker, NEW_MOBILE)
        if text is None:
            return {}
        return {NEW_MOBILE: CANCEL if read_yes_no(text) == CANCEL else text}

    def validate_visit_informed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCEL:
            return {INFORMED: None, CANCELLED: True}
        if isinstance(value, bool):
            return {INFORMED: value}
        dispatcher.utter_message(response="utter_staff_answer_one_or_two")
        return {INFORMED: None}

    def validate_visit_mobile_ok(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCEL:
            return {MOBILE_OK: None, CANCELLED: True}
        if isinstance(value, bool):
            return {MOBILE_OK: value}
        if isinstance(value, str) and value != UNREADABLE:
            return {MOBILE_OK: False, **self._new_mobile(value, dispatcher)}
        dispatcher.utter_message(response="utter_staff_answer_one_or_two")
        return {MOBILE_OK: None}

    def validate_visit_new_mobile(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if value == CANCEL:
            return {NEW_MOBILE: None, CANCELLED: True}
        return self._new_mobile(str(value or ""), dispatcher)

    @staticmethod
    def _new_mobile(text: str, dispatcher: CollectingDispatcher) -> dict[str, Any]:
        try:
            return {NEW_MOBILE: parse_indian_mobile(text)}
        except NotAnIndianMobile:
            dispatcher.utter_message(response="utter_staff_invalid_mobile")
            return {NEW_MOBILE: None}


class ActionStaffSaveVisit(Action):
    """The form is done: record the visit (staff checked again: they may be deactivated now)."""

    def name(self) -> str:
        return "action_staff_save_visit"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        done = [SlotSet(VISIT_OPEN, False), *(SlotSet(slot, None) for slot in FORM_SLOTS)]
        if tracker.get_slot(CANCELLED):
            turn.say("utter_staff_visit_cancelled")
            return done
        account = tracker.get_slot(VISIT_ACCOUNT)
        informed = tracker.get_slot(INFORMED) is True
        confirmed = tracker.get_slot(MOBILE_OK) is True
        new_mobile = None if confirmed else tracker.get_slot(NEW_MOBILE)
        with connections.session() as session:
            staff = verification.active_staff(session, turn.sender.mobile)
            consumer = store.consumer_by_account(session, account) if account else None
            if staff is None or consumer is None:
                turn.say("utter_staff_visit_not_recorded")
                return done
            if new_mobile is not None and new_mobile == consumer.mobile:
                confirmed, new_mobile = True, None  # the "new" number is the one on record
            visit, change = verification.record_visit(
                session,
                staff,
                consumer,
                informed=informed,
                mobile_confirmed=confirmed,
                new_mobile=new_mobile,
                channel=turn.sender.channel,
            )
            turn.say("utter_staff_visit_saved", new_account_no=account, visit_id=visit.id)
            turn.say("utter_staff_visit_informed" if informed else "utter_staff_visit_not_informed")
            if change is not None:
                turn.say(
                    "utter_staff_visit_mobile_change",
                    new_mobile_masked=mask(change.new_mobile),
                    change_id=change.id,
                )
            elif confirmed:
                turn.say("utter_staff_visit_mobile_confirmed")
        return done


__all__ = [
    "ActionStaffProgress",
    "ActionStaffSaveVisit",
    "ActionStaffStartVisit",
    "ActionStaffVerify",
    "ValidateStaffVisitForm",
    "handle_progress",
    "handle_start_visit",
    "handle_verify",
    "read_yes_no",
]
