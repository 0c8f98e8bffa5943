"""Tickets the bot opens for a person to follow up: one per account and kind while it is fresh."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import store
from bot.actions.turn import Turn
from bot.logfmt import kv
from bot.phone import mask

log = logging.getLogger(__name__)

#: A repeated complaint about the same account within this time gets the same ticket back.
REPEAT_WINDOW = dt.timedelta(hours=12)
#: Power-cut reports from one area within this time share one ticket (issue 10, item 5): the
#: team needs one job per fault, and to know how many people it leaves in the dark.
AREA_WINDOW = dt.timedelta(hours=1)

POWER_CUT = "power_cut"
WRONG_BILL = "wrong_bill"
RECEIPT_MISSING = "receipt_missing"
PAYMENT_NOT_REFLECTED = "payment_not_reflected"


def _words_of(turn: Turn) -> str:
    return turn.question_text() if turn.number_from_form() else turn.text


def ticket_for(
    session: Session,
    turn: Turn,
    kind: str,
    consumer: store.Consumer,
    *,
    description: str | None = None,
) -> store.Ticket:
    """Open a ticket about ``consumer`` (area from the account), or return today's open one.

    ``description`` defaults to the latest message's text, or, when that message only answered
    the account form ("1", "456789"), to the message that asked.
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
        description=(_words_of(turn) if description is None else description)[:2000],
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


@dataclass(frozen=True)
class CutReport:
    """A power-cut report filed: its ticket, whether it joined someone else's, how many reported."""

    ticket: store.Ticket
    joined: bool
    reports: int


def power_cut_ticket(
    session: Session,
    turn: Turn,
    *,
    area: str | None,
    account: str | None,
    hazard: str | None,
    description: str,
) -> CutReport:
    """File a power-cut report: join the area's ticket of the last hour, or open one.

    Without an area, a report about an account gets that account's ticket of the last
    :data:`REPEAT_WINDOW` back. A danger makes the ticket a priority, joined or new. A sender who
    reported a danger without saying where and now names the area completes that ticket.
    """
    now = store.utcnow()
    mobile = turn.sender.mobile
    existing = None
    if area is not None:
        existing = store.open_area_ticket_since(session, POWER_CUT, area, now - AREA_WINDOW)
        if existing is None and mobile is not None:
            existing = store.open_ticket_without_area_since(
                session, POWER_CUT, mobile, now - AREA_WINDOW
            )
            if existing is not None:
                existing.area = area
    elif account is not None:
        existing = store.open_ticket_since(session, POWER_CUT, account, now - REPEAT_WINDOW)
    if existing is not None:
        added = store.add_ticket_report(session, existing, mobile, description, hazard)
        if hazard is not None and not existing.priority:
            existing.priority, existing.hazard = True, hazard
        reports = store.ticket_reporters(session, existing.id)
        log.info(
            kv(
                "power_cut_reported",
                reference=existing.reference,
                area=existing.area,
                hazard=hazard,
                reports=reports,
                joined=added,
                sender=mask(mobile),
            )
        )
        # The same person again gets their ticket back, not "2 people reported it".
        return CutReport(existing, joined=added and existing.mobile != mobile, reports=reports)
    ticket = store.open_ticket(
        session,
        POWER_CUT,
        new_account_no=account,
        mobile=mobile,
        area=area,
        description=description,
    )
    ticket.priority, ticket.hazard = hazard is not None, hazard
    store.add_ticket_report(session, ticket, mobile, description, hazard)
    log.info(
        kv(
            "ticket_opened",
            kind=POWER_CUT,
            reference=ticket.reference,
            sender=mask(mobile),
            area=area,
            hazard=hazard,
        )
    )
    return CutReport(ticket, joined=False, reports=1)


__all__ = [
    "AREA_WINDOW",
    "PAYMENT_NOT_REFLECTED",
    "POWER_CUT",
    "RECEIPT_MISSING",
    "WRONG_BILL",
    "CutReport",
    "power_cut_ticket",
    "ticket_for",
]
