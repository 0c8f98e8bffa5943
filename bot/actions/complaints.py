"""Power cuts, wrong bills and asking for a person: tickets with a reference, the agent inbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import areas as areas_mod
from bot import connections, handoffs, signing, store
from bot.actions.formatting import format_moment
from bot.actions.resolve import Outcome, Resolution, actor, resolve, settle_unresolved
from bot.actions.tickets import WRONG_BILL, power_cut_ticket, ticket_for
from bot.actions.topics import POWER_CUT as POWER_CUT_TOPIC
from bot.actions.topics import WRONG_BILL as WRONG_BILL_TOPIC
from bot.actions.turn import ACCOUNT_NUMBER, TopicAction, Turn
from bot.clock import to_ist, utcnow
from bot.logfmt import kv

log = logging.getLogger(__name__)

#: Slot that marks a conversation for a person to take over.
HANDOFF = "handoff"
#: Entities a power-cut report reads: the danger (bot/nlu/hazard.py), the area (bot/nlu/facts.py).
HAZARD = "hazard"
AREA = "area"
#: Redis lock under which one place's power-cut reports are filed, one at a time.
REPORT_LOCK = "bijli:power_cut:report:{place}"


@dataclass
class Place:
    """Where a power cut is, as far as the message and the sender tell."""

    area: str | None = None
    #: The account's new number, when the place came from an account.
    account: str | None = None
    #: What told: pin, named (an area or landmark in the message), account.
    source: str | None = None
    #: A location pin that is in no known area.
    pin_outside: bool = False
    #: The account lookup, when it was tried and found nothing to go on.
    unresolved: Resolution | None = None


def location_pin(turn: Turn) -> tuple[float, float] | None:
    """The WhatsApp location pin the gateway channel vouched for on the latest message."""
    latest = turn.tracker.latest_message or {}
    return signing.vouched_location(
        connections.settings().gateway_signing_secret,
        turn.tracker.sender_id,
        latest.get("message_id"),
        latest.get("metadata"),
    )


def known_areas(session: Session) -> list[str]:
    """Areas a cut can be reported in: those of the consumer data and of the areas table."""
    names = store.consumer_areas(session)
    return names + [a.name for a in areas_mod.areas() if a.name not in names]


def find_place(session: Session, turn: Turn) -> Place:
    """The cut's area: a location pin, else an area or landmark named, else the account's."""
    place = Place()
    pin = location_pin(turn)
    if pin is not None:
        nearest = areas_mod.nearest_area(*pin)
        if nearest is not None:
            return Place(area=nearest.name, source="pin")
        place.pin_outside = True
    names = known_areas(session)
    for value in turn.tracker.get_latest_entity_values(AREA):
        named = areas_mod.known_area(str(value), names)
        if named is not None:
            return Place(area=named, source="named")
    # An area of the consumer data the NLU's lookup table does not list (yet).
    named = areas_mod.area_in_text(turn.text, store.consumer_areas(session))
    if named is not None:
        return Place(area=named, source="named")
    res = resolve(session, turn)
    if res.outcome is Outcome.FOUND and res.consumer is not None:
        account = res.consumer.new_account_no
        return Place(area=res.consumer.area or None, account=account, source="account")
    if res.outcome is Outcome.CHOOSE and len({c.area for c in res.registered}) == 1:
        # Several accounts, one area: no need to ask which.
        return Place(area=res.registered[0].area or None, source="account")
    place.unresolved = None if res.outcome is Outcome.ASK else res
    return place


def _description(turn: Turn, pin: tuple[float, float] | None) -> str:
    # The consumer's own words (a pin alone reaches Rasa as "/report_power_cut") and the pin.
    words = "" if turn.text.startswith("/") else turn.text
    if pin is not None:
        words = f"{words} [location pin {pin[0]:.5f},{pin[1]:.5f}]".strip()
    return words[:2000]


def handle_power_cut(turn: Turn) -> None:
    """Safety advice first for a danger; then a ticket for the area, joined or new, or ask where.

    No account is needed: a pin, an area or a landmark will do (issue 10, item 5).
    """
    hazards = [str(v) for v in turn.tracker.get_latest_entity_values(HAZARD)]
    hazard = hazards[0] if hazards else None
    if hazard is not None:
        # Before anything that could fail or ask: the person may be standing next to it.
        turn.say("utter_safety_first")
    with connections.session() as session:
        place = find_place(session, turn)
        if place.area is None and place.account is None and hazard is None:
            if place.pin_outside:
                turn.say("utter_location_not_served")
                turn.settled(pending=POWER_CUT_TOPIC)
            elif place.unresolved is not None:
                settle_unresolved(turn, POWER_CUT_TOPIC, place.unresolved)
            else:
                turn.say("utter_power_cut_where")
                turn.settled(pending=POWER_CUT_TOPIC)
            return
    description = _description(turn, location_pin(turn))
    # One report at a time per area (or account), so that two neighbours writing in the same
    # second join one ticket rather than open two; committed before the lock is released.
    key = REPORT_LOCK.format(place=place.area or place.account or f"sender:{turn.sender.key}")
    with connections.redis().lock(key, timeout=10, blocking_timeout=5):
        with connections.session() as session:
            report = power_cut_ticket(
                session,
                turn,
                area=place.area,
                account=place.account,
                hazard=hazard,
                description=description,
            )
            reference, priority = report.ticket.reference, bool(report.ticket.priority)
    log.info(kv("power_cut_place", source=place.source, area=place.area, hazard=hazard))
    if place.area is None and place.account is None:
        # A danger, and nowhere to send the team yet: the ticket is open; ask where.
        turn.say("utter_power_cut_priority_where", reference=reference)
        turn.settled(pending=POWER_CUT_TOPIC)
        return
    where = place.area or place.account or ""
    if report.joined:
        turn.say("utter_power_cut_joined", reference=reference, area=where, reports=report.reports)
    elif priority:
        turn.say("utter_power_cut_priority", reference=reference, area=where)
    else:
        turn.say("utter_power_cut_ticket", reference=reference, area=where)
    turn.settled(place.account)


def handle_wrong_bill(turn: Turn) -> None:
    """Open a wrong-bill ticket and give its reference."""
    _complaint(turn, WRONG_BILL_TOPIC, WRONG_BILL, "utter_wrong_bill_ticket")


def _complaint(turn: Turn, topic: str, kind: str, response: str) -> None:
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, topic, res):
            return
        consumer = res.consumer
        assert consumer is not None
        ticket = ticket_for(session, turn, kind, consumer)
        turn.say(response, reference=ticket.reference, new_account_no=consumer.new_account_no)
        turn.settled(consumer.new_account_no)


def handle_handoff(turn: Turn) -> None:
    """Put the conversation in the agent inbox and say who answers by when (or give 1912)."""
    cfg = connections.settings()
    sender, now = turn.sender, utcnow()
    turn.set(HANDOFF, True)
    with connections.session() as session:
        store.audit(
            session,
            actor(sender),
            "handoff_requested",
            subject=turn.tracker.get_slot(ACCOUNT_NUMBER),
            sender_id=sender.sender_id if sender.mobile is None else None,
            channel=sender.channel,
        )
        registered = store.consumers_by_mobile(session, sender.mobile) if sender.mobile else []
        discom = registered[0].discom if registered else cfg.default_discom
        if sender.mobile is None or sender.channel is None:
            # No chat a person could answer in (rasa test, a REST call by hand): the helpline.
            log.info(kv("handoff_without_chat", sender=actor(sender)))
            turn.say("utter_handoff", discom=discom)
            return
        account = turn.remembered_number() or (
            registered[0].new_account_no if len(registered) == 1 else None
        )
        handoff, created = handoffs.open_handoff(
            session,
            cfg,
            channel=sender.channel,
            mobile=sender.mobile,
            discom=discom,
            language=turn.tracker.get_slot("language") or "hi",
            reason=turn.text,
            new_account_no=account,
            now=now,
        )
        handoff_id, due = handoff.id, handoffs.deadline(handoff, cfg)
        promised = to_ist(handoff.promised_by)
        # "Today" only while the office is open and the promise falls before it closes.
        today = handoffs.promise(session, cfg, now).office_open and (
            promised.date() == to_ist(now).date()
        )
    # After the commit, so the job finds the row; a retried turn schedules the same job id.
    handoffs.schedule_expiry(connections.redis(cfg), handoff_id, due)
    log.info(kv("handoff_requested", sender=actor(sender), handoff_id=handoff_id, new=created))
    if today:
        turn.say("utter_handoff_today", discom=discom, reply_by=f"{promised:%H:%M}")
    else:
        turn.say("utter_handoff_later", discom=discom, reply_by=format_moment(promised))


class ActionReportPowerCut(TopicAction):
    """report_power_cut."""

    action_name = "action_report_power_cut"
    handle = staticmethod(handle_power_cut)


class ActionComplainWrongBill(TopicAction):
    """complain_wrong_bill."""

    action_name = "action_complain_wrong_bill"
    handle = staticmethod(handle_wrong_bill)


class ActionHumanHandoff(TopicAction):
    """human_handoff."""

    action_name = "action_human_handoff"
    handle = staticmethod(handle_handoff)


__all__ = [
    "HANDOFF",
    "ActionComplainWrongBill",
    "ActionHumanHandoff",
    "ActionReportPowerCut",
    "handle_handoff",
    "handle_power_cut",
    "handle_wrong_bill",
]
