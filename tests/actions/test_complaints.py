"""Power cuts, wrong bills and asking for a person."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from bot import store
from bot.actions import complaints
from bot.actions.complaints import ActionComplainWrongBill, ActionHumanHandoff, ActionReportPowerCut
from bot.clock import IST, to_ist
from bot.queues import NOTIFICATIONS
from tests.actions.helpers import MOBILE, add_consumer, responses, run, slots_set, tracker, whatsapp

pytestmark = pytest.mark.usefixtures("store_env")


def test_power_cut_ticket_takes_the_area_from_the_account(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Kidwai Nagar")
    events, messages = run(
        ActionReportPowerCut(),
        tracker("subah se bijli nahi hai", intent="report_power_cut", **whatsapp(MOBILE)),
    )
    assert responses(messages) == ["utter_power_cut_ticket"]
    with store.session_scope(store_env) as session:
        [ticket] = session.query(store.Ticket).all()
        assert (ticket.kind, ticket.area, ticket.new_account_no) == (
            "power_cut",
            "Kidwai Nagar",
            "1234567890",
        )
        assert ticket.description == "subah se bijli nahi hai"
        assert ticket.reference == messages[0]["reference"]
    assert slots_set(events)["needs_account"] is False


def test_wrong_bill_ticket_after_the_account_form(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", mobile=None)
    events, messages = run(
        ActionComplainWrongBill(),
        tracker("bill galat aaya hai", intent="complain_wrong_bill", sender_id="default"),
    )
    assert messages == [] and slots_set(events)["needs_account"] is True
    events, messages = run(
        ActionComplainWrongBill(),
        tracker(
            "456789",
            intent="inform_account_number",
            entities={"account_number": "456789"},
            sender_id="default",
        ),
    )
    assert responses(messages) == ["utter_wrong_bill_ticket"]


def _at(monkeypatch, day: int, hour: int, minute: int = 0) -> None:
    """Make the action's clock read an IST moment of November 2026 (the 23rd is a Monday)."""
    moment = dt.datetime(2026, 11, day, hour, minute, tzinfo=IST).astimezone(dt.timezone.utc)
    monkeypatch.setattr(complaints, "utcnow", lambda: moment.replace(tzinfo=None))


def _ask_for_a_person(language: str = "hinglish", mobile: str = MOBILE):
    return run(
        ActionHumanHandoff(),
        tracker(
            "kisi insaan se baat karao",
            intent="human_handoff",
            slots={"language": language},
            **whatsapp(mobile),
        ),
    )


def test_asking_for_a_person_in_office_hours_puts_the_chat_in_the_inbox(
    store_env, redis_conn, monkeypatch
) -> None:
    _at(monkeypatch, 23, 11, 0)
    events, messages = _ask_for_a_person("en")
    assert responses(messages) == ["utter_handoff_today"]
    assert (messages[0]["reply_by"], messages[0]["discom"]) == ("11:30", "KESCO")
    assert slots_set(events)["handoff"] is True
    with store.session_scope(store_env) as session:
        [handoff] = session.query(store.Handoff).all()
        assert (handoff.channel, handoff.mobile, handoff.state) == ("whatsapp", MOBILE, "waiting")
        assert (handoff.language, handoff.reason) == ("en", "kisi insaan se baat karao")
        actions = [row.action for row in session.query(store.AuditLog).order_by(store.AuditLog.id)]
        assert actions == ["handoff_requested", "handoff_opened"]
        requested = session.query(store.AuditLog).first()
        assert requested.actor == "+91******3210"
        assert json.loads(requested.detail)["channel"] == "whatsapp"
    # A worker closes it if nobody takes it by the promise plus the idle time (30 + 30 minutes).
    registry = ScheduledJobRegistry(queue=Queue(NOTIFICATIONS, connection=redis_conn))
    [job_id] = registry.get_job_ids()
    assert Job.fetch(job_id, connection=redis_conn).args == (handoff.id,)
    assert to_ist(registry.get_scheduled_time(job_id)).strftime("%d %H:%M") == "23 12:00"


@pytest.mark.parametrize(
    ("day", "hour", "minute", "reply_by"),
    [
        (23, 16, 50, "24-11-2026 10:20"),  # open, but a person cannot answer before closing
        (23, 21, 0, "24-11-2026 10:30"),  # evening
        (29, 12, 0, "30-11-2026 10:30"),  # Sunday
    ],
)
def test_outside_office_hours_the_reply_says_when_a_person_will_answer(
    store_env, redis_conn, monkeypatch, day, hour, minute, reply_by
) -> None:
    _at(monkeypatch, day, hour, minute)
    _, messages = _ask_for_a_person()
    assert responses(messages) == ["utter_handoff_later"]
    assert messages[0]["reply_by"] == reply_by


def test_asking_again_finds_the_same_conversation(store_env, redis_conn, monkeypatch) -> None:
    _at(monkeypatch, 23, 11, 0)
    _ask_for_a_person()
    _at(monkeypatch, 23, 11, 10)
    _, messages = _ask_for_a_person()
    assert messages[0]["reply_by"] == "11:30", "the promise already given"
    with store.session_scope(store_env) as session:
        assert store.count_rows(session, store.Handoff) == 1


def test_a_registered_consumer_s_discom_and_account_go_with_the_handoff(
    store_env, redis_conn, monkeypatch
) -> None:
    add_consumer(store_env, "1234567890", discom="PVVNL")
    _at(monkeypatch, 23, 11, 0)
    _, messages = _ask_for_a_person()
    assert messages[0]["discom"] == "PVVNL"
    with store.session_scope(store_env) as session:
        [handoff] = session.query(store.Handoff).all()
        assert (handoff.discom, handoff.new_account_no) == ("PVVNL", "1234567890")


def test_without_a_chat_to_answer_in_only_the_helpline_is_offered(store_env) -> None:
    events, messages = run(
        ActionHumanHandoff(),
        tracker("kisi insaan se baat karao", intent="human_handoff", sender_id="default"),
    )
    assert responses(messages) == ["utter_handoff"]
    assert slots_set(events)["handoff"] is True
    with store.session_scope(store_env) as session:
        assert store.count_rows(session, store.Handoff) == 0
