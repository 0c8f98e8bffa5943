"""Which account a question is about, and whether the sender may see its details.

Order: a number in the latest message (or the account just chosen from the account form's list);
else the sender's mobile when it is registered to exactly one account; else, for a dues or
balance question, every account on the mobile when there are up to three; else the number the
conversation already holds (unless it is one of several on the mobile: they choose each time);
else ask (the account form, with the mobile's accounts as a list).
Details go only to the account's registered mobile or to verified staff (the staff table, never
the gateway's metadata alone). Lookups of other people's accounts pass the enumeration guard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from sqlalchemy.orm import Session

from bot import connections, store
from bot.actions.choices import ANSWER_ALL_UP_TO, read_choice
from bot.actions.choices import Kind as ChoiceKind
from bot.actions.formatting import mask_name
from bot.actions.guard import LookupGuard
from bot.actions.staff_card import staff_lookup_allowed
from bot.actions.topics import BALANCE, BILL
from bot.actions.turn import PENDING_QUERY, Sender, Turn
from bot.logfmt import kv
from bot.phone import mask

log = logging.getLogger(__name__)


#: Questions answered for each of a mobile's few accounts at once (Outcome.ALL).
ANSWERED_FOR_ALL = (BILL, BALANCE)


class Outcome(str, Enum):
    FOUND = "found"
    ASK = "ask"  # nothing to go on: ask for a number
    CHOOSE = "choose"  # the mobile has several accounts: ask which
    ALL = "all"  # the mobile has a few accounts and the question fits them all: answer each
    NOT_FOUND = "not_found"
    REFUSED = "refused"  # over the day's lookup limit


@dataclass
class Resolution:
    """The outcome of resolving an account for one question."""

    outcome: Outcome
    consumer: store.Consumer | None = None
    number: str | None = None
    own: bool = False
    staff: bool = False
    registered: list[store.Consumer] = field(default_factory=list)

    @property
    def authorized(self) -> bool:
        """True when the sender may see the account's bill, balance and payments."""
        return self.own or self.staff


def verified_staff(session: Session, sender: Sender) -> bool:
    """True when the sender's mobile belongs to an active staff member."""
    return sender.mobile is not None and store.staff_by_mobile(session, sender.mobile) is not None


def registered_accounts(session: Session, sender: Sender) -> list[store.Consumer]:
    """Accounts registered to the sender's mobile."""
    return store.consumers_by_mobile(session, sender.mobile) if sender.mobile else []


def actor(sender: Sender) -> str:
    """How the audit log names a sender: the masked mobile."""
    return mask(sender.mobile) if sender.mobile else "anonymous"


def look_up(
    session: Session,
    sender: Sender,
    number: str,
    *,
    registered: list[store.Consumer],
    staff: bool,
) -> Resolution:
    """Find the account ``number``, counting it against the sender's daily limit if foreign."""
    cfg = connections.settings()
    consumer = store.consumer_by_account(session, number, discom=cfg.default_discom)
    own = consumer is not None and any(
        c.new_account_no == consumer.new_account_no for c in registered
    )
    if staff and not own and not staff_lookup_allowed(session, sender, number):
        return Resolution(Outcome.REFUSED, number=number, staff=staff, registered=registered)
    if not own and not staff:
        guard = LookupGuard(connections.redis(), cfg.lookup_limit_per_day)
        # The new number identifies an account however it was asked for (old or new number).
        if not guard.allow(sender.key, consumer.new_account_no if consumer else number):
            store.audit(
                session,
                actor(sender),
                "lookup_refused",
                subject=number,
                limit=cfg.lookup_limit_per_day,
                channel=sender.channel,
            )
            log.info(kv("lookup_refused", sender=actor(sender), limit=cfg.lookup_limit_per_day))
            return Resolution(Outcome.REFUSED, number=number, staff=staff, registered=registered)
    if consumer is None:
        return Resolution(Outcome.NOT_FOUND, number=number, staff=staff, registered=registered)
    return Resolution(
        Outcome.FOUND, consumer=consumer, number=number, own=own, staff=staff, registered=registered
    )


def resolve(session: Session, turn: Turn, *, answer_all: bool = False) -> Resolution:
    """Resolve the account the latest question is about.

    ``answer_all``: the question can be answered for each of the sender's own accounts at once
    (dues, balances), so a mobile with up to ANSWER_ALL_UP_TO accounts is not asked to choose.
    """
    sender = turn.sender
    registered = registered_accounts(session, sender)
    staff = verified_staff(session, sender)
    given = turn.number_in_message() or turn.number_from_form()
    if given:
        return look_up(session, sender, given, registered=registered, staff=staff)
    if len(registered) == 1:
        return Resolution(
            Outcome.FOUND, consumer=registered[0], own=True, staff=staff, registered=registered
        )
    if answer_all and 1 < len(registered) <= ANSWER_ALL_UP_TO:
        # "dukaan ka bill" names one; right after the lines of each ("pehle wale ka"), so
        # does an ordinal. Anything else is about them all.
        just_listed = turn.tracker.get_slot(PENDING_QUERY) in ANSWERED_FOR_ALL
        choice = read_choice(turn.text, registered, positions_count=just_listed)
        if choice.kind is ChoiceKind.CHOSEN and choice.consumer is not None:
            return Resolution(
                Outcome.FOUND,
                consumer=choice.consumer,
                own=True,
                staff=staff,
                registered=registered,
            )
        return Resolution(Outcome.ALL, own=True, staff=staff, registered=registered)
    remembered = turn.remembered_number()
    own = {c.new_account_no for c in registered} | {c.old_account_no for c in registered}
    # A mobile with several accounts says which one each time: the one chosen for the last
    # question is not silently taken for a new one (a complaint about the wrong connection).
    if remembered and not (len(registered) > 1 and remembered in own):
        return look_up(session, sender, remembered, registered=registered, staff=staff)
    if registered:
        return Resolution(Outcome.CHOOSE, staff=staff, registered=registered)
    return Resolution(Outcome.ASK, staff=staff)


def account_lines(consumers: list[store.Consumer]) -> str:
    """One line per account: ``old → new (R*** K***)``; digits and names only, no words."""
    return "\n".join(
        f"{c.old_account_no or '—'} → {c.new_account_no} ({mask_name(c.name)})" for c in consumers
    )


def settle_unresolved(turn: Turn, topic: str, res: Resolution) -> bool:
    """Answer every outcome but FOUND; True when it did (there is no account to talk about)."""
    if res.outcome is Outcome.CHOOSE:
        # The account form's question lists the accounts (accounts.ActionAskAccountNumber).
        turn.await_account(topic)
    elif res.outcome is Outcome.ASK:
        turn.await_account(topic)
    elif res.outcome is Outcome.NOT_FOUND:
        turn.say("utter_account_not_found", account_number=res.number)
        turn.forget_account()
        # A corrected number sent next answers the same question.
        turn.settled(pending=topic)
    elif res.outcome is Outcome.REFUSED:
        cfg = connections.settings()
        if res.staff:
            turn.say("utter_staff_lookup_cap", limit=cfg.staff_lookup_limit_per_day)
        else:
            turn.say("utter_lookup_limit_reached", limit=cfg.lookup_limit_per_day)
        turn.forget_account()
        turn.settled()
    else:
        return False
    return True


__all__ = [
    "Outcome",
    "Resolution",
    "account_lines",
    "actor",
    "look_up",
    "registered_accounts",
    "resolve",
    "settle_unresolved",
    "verified_staff",
]
