"""Power cuts, wrong bills and asking for a person: tickets with a reference, and the handoff."""

from __future__ import annotations

import logging

from bot import connections, store
from bot.actions.resolve import actor, resolve, settle_unresolved
from bot.actions.tickets import POWER_CUT, WRONG_BILL, ticket_for
from bot.actions.topics import POWER_CUT as POWER_CUT_TOPIC
from bot.actions.topics import WRONG_BILL as WRONG_BILL_TOPIC
from bot.actions.turn import ACCOUNT_NUMBER, TopicAction, Turn
from bot.logfmt import kv

log = logging.getLogger(__name__)

#: Slot that marks a conversation for a person to take over.
HANDOFF = "handoff"


def handle_power_cut(turn: Turn) -> None:
    """Open a power-cut ticket for the account's area and give its reference."""
    _complaint(turn, POWER_CUT_TOPIC, POWER_CUT, "utter_power_cut_ticket")


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
    """Give the 1912 helpline and office hours, and mark the conversation for a person."""
    with connections.session() as session:
        store.audit(
            session,
            actor(turn.sender),
            "handoff_requested",
            subject=turn.tracker.get_slot(ACCOUNT_NUMBER),
            sender_id=turn.sender.sender_id if turn.sender.mobile is None else None,
            channel=turn.sender.channel,
        )
    log.info(kv("handoff_requested", sender=actor(turn.sender), channel=turn.sender.channel))
    turn.set(HANDOFF, True)
    turn.say("utter_handoff")


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
