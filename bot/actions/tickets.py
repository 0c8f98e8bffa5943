"""Tickets the bot opens for a person to follow up: one per account and kind while it is fresh."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.orm import Session

from bot import store
from bot.actions.turn import Turn
from bot.logfmt import kv
from bot.phone import mask

log = logging.getLogger(__name__)

#: A repeated complaint about the same account within this time gets the same ticket back.
REPEAT_WINDOW = dt.timedelta(hours=12)

POWER_CUT = "power_cut"
WRONG_BILL = "wrong_bill"
RECEIPT_MISSING = "receipt_missing"
PAYMENT_NOT_REFLECTED = "payment_not_reflected"


def ticket_for(
    session: Session,
    turn: Turn,
    kind: str,
    consumer: store.Consumer,
    *,
    description: str | None = None,
) -> store.Ticket:
    """Open a ticket about ``consumer`` (area from the account), or return today's open one.

    ``description`` defaults to the latest message's text.
    """
    since = store.utcnow() - REPEAT_WINDOW
    existing = store.open_ticket_since(session, kind, consumer.new_account_no, since)
    if existing is not None:
        return existing
    ticket = store.open_ticket(
        session,
        kind,
        new_account_no=consumer.new_account_no,
        mobile=turn.sender.mobile,
        area=consumer.area,
        # The consumer's own words, for the person who picks the ticket up.
        description=(turn.text if description is None else description)[:2000],
    )
    log.info(
        kv(
            "ticket_opened",
            kind=kind,
            reference=ticket.reference,
            sender=mask(turn.sender.mobile),
            area=consumer.area,
        )
    )
    return ticket


__all__ = ["PAYMENT_NOT_REFLECTED", "POWER_CUT", "RECEIPT_MISSING", "WRONG_BILL", "ticket_for"]
