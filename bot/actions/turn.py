"""One run of an action: who wrote, what they wrote, and the events and responses it produces."""

from __future__ import annotations

import logging
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import connections, signing
from bot.accounts import Context, Kind, Reading, normalise_account_number, read_numbers
from bot.actions.topics import ACCOUNT_TOPICS, TOPIC_BY_INTENT
from bot.logfmt import kv

log = logging.getLogger(__name__)

# Slots the dialogue rules branch on; every account action sets them, so rules can tell whether
# the account form has to ask for a number next.
NEEDS_ACCOUNT = "needs_account"
ACCOUNT_FORM = "account_form"
PENDING_QUERY = "pending_query"
ACCOUNT_NUMBER = "account_number"
REQUESTED_SLOT = "requested_slot"
#: Where the dialogue stands: a question waiting for an account number. Rasa carries every slot
#: into a new session (session_config in bot/intents/session.yml); these must not outlive theirs.
DIALOGUE_SLOTS = (PENDING_QUERY, NEEDS_ACCOUNT, REQUESTED_SLOT)
#: Entities the NLU reads as numbers that are never account numbers (bot/nlu/facts.py).
NOT_ACCOUNT_NUMBERS = frozenset({"date", "amount", "utr", "mobile", "time"})


@dataclass(frozen=True)
class Sender:
    """Who wrote: the sender id, and whom Rasa's gateway channel vouched for (else nobody known).

    ``claimed_role`` is the gateway's reading of its staff table; actions that show staff more
    check the staff table again (bot/actions/resolve.py).
    """

    sender_id: str
    mobile: str | None
    channel: str | None
    claimed_role: str | None

    @property
    def key(self) -> str:
        """What per-sender limits count by: the vouched mobile, else one shared anonymous key.

        Not the sender id: whoever can make up sender ids could otherwise make up fresh limits.
        """
        return self.mobile or "anonymous"


def sender_of(tracker: Tracker) -> Sender:
    """The sender as the gateway channel vouched for them on the latest message, else anonymous.

    Only the channel's signed vouch counts (bot/signing.py): a sender id, a ``mobile`` or ``role``
    in metadata, or a slot may have been written by anyone who reached Rasa or this server.
    """
    latest = tracker.latest_message or {}
    metadata = latest.get("metadata")
    vouched = signing.vouched_sender(
        connections.settings().gateway_signing_secret,
        tracker.sender_id,
        latest.get("message_id"),
        metadata,
    )
    if vouched is None:
        if isinstance(metadata, dict) and signing.VOUCH_KEY in metadata:
            log.warning(kv("sender_vouch_refused", conversation_events=len(tracker.events)))
        return Sender(tracker.sender_id, None, None, None)
    return Sender(tracker.sender_id, vouched.mobile, vouched.channel, vouched.role)


def starts_a_session(tracker: Tracker) -> bool:
    """True when the latest message is the first of its Rasa session and nothing answered it yet.

    "Nothing answered it yet": a form activated in the same turn runs action_extract_slots, and
    so action_validate_slot_mappings, again (rasa.core.actions.forms.FormAction.activate).
    """
    seen_user = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "action" and not seen_user:
            return False
        if kind == "user":
            if seen_user:
                return False
            seen_user = True
        elif kind == "session_started":
            return seen_user
    return False


def waiting_for_account(tracker: Tracker) -> bool:
    """True when the bot's last question in this session was for an account number."""
    if starts_a_session(tracker):
        return False  # a question left from an earlier session is not waiting any more
    asking = bool((tracker.active_loop or {}).get("name"))
    return (asking and tracker.get_slot(REQUESTED_SLOT) == ACCOUNT_NUMBER) or (
        tracker.get_slot(PENDING_QUERY) in ACCOUNT_TOPICS
    )


def reading_context(tracker: Tracker) -> Context:
    """What the conversation tells bot.accounts about the numbers in the latest message."""
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return Context(
        asked=waiting_for_account(tracker),
        about_account=TOPIC_BY_INTENT.get(intent or "") in ACCOUNT_TOPICS,
        mobile=sender_of(tracker).mobile,
    )


def question_asked(tracker: Tracker) -> str | None:
    """The user's message that made the account form ask (its latest activation), as written."""
    activated = False
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == ACCOUNT_FORM:
            activated = True
        elif activated and event.get("event") == "user":
            return " ".join(str(event.get("text") or "").split()) or None
    return None


class Turn:
    """Collects the events and responses of one action run; handlers write to it."""

    def __init__(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        self.dispatcher = dispatcher
        self.tracker = tracker
        self.events: list[EventType] = []

    @cached_property
    def sender(self) -> Sender:
        return sender_of(self.tracker)

    @property
    def text(self) -> str:
        return str((self.tracker.latest_message or {}).get("text") or "")

    @property
    def intent(self) -> str | None:
        intent = (self.tracker.latest_message or {}).get("intent") or {}
        return intent.get("name")

    def number_in_message(self) -> str | None:
        """The account number the latest message gives, read as a person would (bot.accounts).

        The NLU's account_number entity is not consulted: its regex tags any 6-8 or 10 digit
        run (data/nlu/regex.yml), dates and mobiles included.
        """
        found = [r.digits for r in self.readings() if r.kind is Kind.ACCOUNT]
        return found[0] if found else None

    def readings(self) -> list[Reading]:
        """Every number in the latest message and what it reads as."""
        return read_numbers(self.text_without_facts(), reading_context(self.tracker))

    def text_without_facts(self) -> str:
        """The latest text with the dates, amounts, UTRs, mobiles and times the NLU found blanked.

        "maine 20-11-2026 ko 1500 rs bhara" holds no account number, though "20-11-2026" has the
        digits of one.
        """
        text = self.text
        for entity in (self.tracker.latest_message or {}).get("entities") or []:
            start, end = entity.get("start"), entity.get("end")
            if entity.get("entity") in NOT_ACCOUNT_NUMBERS and isinstance(start, int):
                if isinstance(end, int) and 0 <= start < end <= len(text):
                    text = text[:start] + " " * (end - start) + text[end:]
        return text

    def question_text(self) -> str:
        """The message that made the account form ask (else the latest message)."""
        return question_asked(self.tracker) or self.text

    def remembered_number(self) -> str | None:
        """The account number the conversation already holds."""
        return normalise_account_number(self.tracker.get_slot(ACCOUNT_NUMBER))

    def number_from_form(self) -> str | None:
        """The account the account form took from this very message ("pehla", "dukaan wala").

        Only right after the form ran: the form's validation already read the message (an
        option number, an ordinal, a word of the account's name or category, or a number).
        """
        if self.tracker.latest_action_name != ACCOUNT_FORM:
            return None
        return self.remembered_number()

    def say(self, response: str, **values: Any) -> None:
        """Send a domain response, filling its ``{placeholders}`` from ``values``."""
        self.dispatcher.utter_message(response=response, **values)

    def set(self, slot: str, value: Any) -> None:
        self.events.append(SlotSet(slot, value))

    def current(self, slot: str) -> Any:
        """The slot's value with this turn's events so far applied."""
        events = self.slot_events(slot)
        return events[-1].get("value") if events else self.tracker.get_slot(slot)

    def slot_events(self, slot: str) -> list[EventType]:
        return [e for e in self.events if e.get("event") == "slot" and e.get("name") == slot]

    def leave_form(self) -> None:
        """Close an active form and drop its question: the user moved on to something else."""
        if (self.tracker.active_loop or {}).get("name"):
            self.events.append(ActiveLoop(None))
            self.set(REQUESTED_SLOT, None)
            # A handler that asks again sets these anew after this.
            self.set(PENDING_QUERY, None)
            self.set(NEEDS_ACCOUNT, False)

    def await_account(self, topic: str) -> None:
        """Ask for an account number next (the dialogue rules run the account form).

        An account number already empty is not emptied again: the form would take that event
        for a value given since the message and ask the action server to validate it once more
        (bot/rasa_runtime/speedups.py, validate_forms_once_at_activation).
        """
        if self.current(ACCOUNT_NUMBER) is not None:
            self.set(ACCOUNT_NUMBER, None)
        self.set(PENDING_QUERY, topic)
        self.set(NEEDS_ACCOUNT, True)

    def settled(self, account: str | None = None, *, pending: str | None = None) -> None:
        """The question is answered (or cannot be); remember the account it was about.

        ``pending`` keeps a topic open, so that a bare account number sent next answers it.
        """
        if account is not None:
            self.set(ACCOUNT_NUMBER, account)
        self.set(PENDING_QUERY, pending)
        self.set(NEEDS_ACCOUNT, False)

    def forget_account(self) -> None:
        self.set(ACCOUNT_NUMBER, None)


class TopicAction(Action, metaclass=ABCMeta):
    """A custom action that answers one topic: a subclass names the action and its handler.

    The handler runs on a Turn, after any half-filled account form is left. rasa_sdk registers
    only the concrete subclasses (it skips abstract classes).
    """

    #: The action's name in the domain.
    action_name: ClassVar[str]

    @staticmethod
    @abstractmethod
    def handle(turn: Turn) -> None:
        """Answer the topic (a subclass binds its handler: ``handle = staticmethod(...)``)."""

    def name(self) -> str:
        return self.action_name

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        turn = Turn(dispatcher, tracker)
        turn.leave_form()
        self.handle(turn)
        return turn.events


__all__ = [
    "ACCOUNT_FORM",
    "DIALOGUE_SLOTS",
    "Sender",
    "TopicAction",
    "Turn",
    "question_asked",
    "reading_context",
    "sender_of",
    "starts_a_session",
    "waiting_for_account",
]
