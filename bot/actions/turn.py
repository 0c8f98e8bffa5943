"""One run of an action: who wrote, what they wrote, and the events and responses it produces."""

from __future__ import annotations

import re
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.accounts import account_number_in, normalise_account_number

#: Channels the gateway talks on; a sender id is "<channel>:<E.164>".
CHANNELS = ("sms", "whatsapp")
ROLES = ("consumer", "staff")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")

# Slots the dialogue rules branch on; every account action sets them, so rules can tell whether
# the account form has to ask for a number next.
NEEDS_ACCOUNT = "needs_account"
PENDING_QUERY = "pending_query"
ACCOUNT_NUMBER = "account_number"
REQUESTED_SLOT = "requested_slot"
#: Entities the NLU reads as numbers that are never account numbers (bot/nlu/facts.py).
NOT_ACCOUNT_NUMBERS = frozenset({"date", "amount", "utr", "mobile", "time"})


def e164_or_none(value: object) -> str | None:
    """``value`` when it is an E.164 number (``+919876543210``), else None."""
    if isinstance(value, str) and _E164.match(value.strip()):
        return value.strip()
    return None


def parse_sender_id(sender_id: str | None) -> tuple[str | None, str | None]:
    """Channel and mobile from a gateway sender id such as ``whatsapp:+919876543210``."""
    if not sender_id:
        return None, None
    channel, sep, rest = sender_id.partition(":")
    if sep and channel.lower() in CHANNELS:
        return channel.lower(), e164_or_none(rest)
    return None, e164_or_none(sender_id)


@dataclass(frozen=True)
class Sender:
    """Who wrote: the sender id, and what the gateway told us about them (role unverified)."""

    sender_id: str
    mobile: str | None
    channel: str | None
    claimed_role: str | None

    @property
    def key(self) -> str:
        """What per-sender limits count by: the mobile when known, else the sender id."""
        return self.mobile or f"id:{self.sender_id}"


def sender_of(tracker: Tracker) -> Sender:
    """The sender of the conversation: sender id first, then message metadata, then slots."""
    channel, mobile = parse_sender_id(tracker.sender_id)
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    mobile = (
        mobile or e164_or_none(metadata.get("mobile")) or e164_or_none(tracker.get_slot("mobile"))
    )
    if channel is None:
        meta_channel = metadata.get("channel")
        channel = meta_channel if meta_channel in CHANNELS else None
    role = metadata.get("role") if metadata.get("role") in ROLES else tracker.get_slot("role")
    return Sender(tracker.sender_id, mobile, channel, role)


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
        """The account number the latest message gives: its entity, else digits in its text."""
        for value in self.tracker.get_latest_entity_values(ACCOUNT_NUMBER):
            number = normalise_account_number(value)
            if number:
                return number
        return account_number_in(self.text_without_facts())

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

    def remembered_number(self) -> str | None:
        """The account number the conversation already holds."""
        return normalise_account_number(self.tracker.get_slot(ACCOUNT_NUMBER))

    def say(self, response: str, **values: Any) -> None:
        """Send a domain response, filling its ``{placeholders}`` from ``values``."""
        self.dispatcher.utter_message(response=response, **values)

    def set(self, slot: str, value: Any) -> None:
        self.events.append(SlotSet(slot, value))

    def slot_events(self, slot: str) -> list[EventType]:
        return [e for e in self.events if e.get("event") == "slot" and e.get("name") == slot]

    def leave_form(self) -> None:
        """Close an active form: the user moved on to something else."""
        if (self.tracker.active_loop or {}).get("name"):
            self.events.append(ActiveLoop(None))
            self.set(REQUESTED_SLOT, None)

    def await_account(self, topic: str) -> None:
        """Ask for an account number next (the dialogue rules run the account form)."""
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


__all__ = ["Sender", "TopicAction", "Turn", "e164_or_none", "parse_sender_id", "sender_of"]
