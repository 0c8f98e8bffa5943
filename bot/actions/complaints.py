"""Power cuts, wrong bills and asking for a person: tickets with a reference, the agent inbox."""

from __future__ import annotations

import logging

from bot import connections, handoffs, store
from bot.actions.formatting import format_moment
from bot.actions.resolve import actor, resolve, settle_unresolved
from bot.actions.tickets import POWER_CUT, WRONG_BILL, ticket_for
from bot.actions.topics import POWER_CUT as POWER_CUT_TOPIC
from bot.actions.topics import WRONG_BILL as WRONG_BILL_TOPIC
from bot.actions.turn import ACCOUNT_NUMBER, TopicAction, Turn
from bot.clock import to_ist, utcnow
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
