"""Power cuts, wrong bills and asking for a person."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from bot import connections, signing, store
from bot.actions import complaints, tickets
from bot.actions.complaints import ActionComplainWrongBill, ActionHumanHandoff, ActionReportPowerCut
from bot.clock import IST, to_ist
from bot.queues import NOTIFICATIONS
from tests.actions.helpers import (
    MOBILE,
    STRANGER,
    add_consumer,
    domain,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

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


# --------------------------------------------------------------------------- power cuts by area

OBSERVATION_5 = "subah se light nahi hai Kidwai Nagar me, transformer se chingari nikal rahi thi"
NEIGHBOUR = "+919822222222"


def _cut(
    text: str,
    mobile: str = STRANGER,
    *,
    entities: dict[str, str] | None = None,
    pin: tuple[float, float] | None = None,
    slots: dict | None = None,
):
    args = whatsapp(mobile)
    if pin is not None:
        secret = connections.settings().gateway_signing_secret
        args["metadata"][signing.LOCATION_KEY] = signing.vouch_location(
            secret, args["sender_id"], args["message_id"], *pin
        )
    return run(
        ActionReportPowerCut(),
        tracker(text, intent="report_power_cut", entities=entities, slots=slots, **args),
    )


def _tickets(engine) -> list[tuple]:
    with store.session_scope(engine) as session:
        return [
            (t.area, t.priority, t.hazard, t.mobile, store.ticket_reporters(session, t.id))
            for t in session.query(store.Ticket).order_by(store.Ticket.id)
        ]


def test_observation_5_sparks_from_an_unknown_number_get_safety_first_and_a_priority_ticket(
    store_env,
) -> None:
    events, messages = _cut(OBSERVATION_5, entities={"area": "Kidwai Nagar", "hazard": "spark"})
    # Safety advice first, then the ticket; no account asked for.
    assert responses(messages) == ["utter_safety_first", "utter_power_cut_priority"]
    assert messages[1]["area"] == "Kidwai Nagar"
    assert _tickets(store_env) == [("Kidwai Nagar", True, "spark", STRANGER, 1)]
    slots = slots_set(events)
    assert slots["needs_account"] is False and slots["pending_query"] is None
    assert "account_number" not in slots


def test_a_second_report_from_the_same_area_within_the_hour_joins_and_counts(store_env) -> None:
    _, first = _cut("Kidwai Nagar me light nahi hai", entities={"area": "Kidwai Nagar"})
    _, second = _cut("kidwai nagar me bijli gayi", NEIGHBOUR, entities={"area": "kidwai nagar"})
    assert responses(second) == ["utter_power_cut_joined"]
    assert second[0]["reference"] == first[0]["reference"]
    assert second[0]["reports"] == 2
    # The first reporter again: the same ticket, and still two people.
    _, again = _cut("abhi bhi light nahi hai Kidwai Nagar", entities={"area": "Kidwai Nagar"})
    assert responses(again) == ["utter_power_cut_ticket"]
    assert again[0]["reference"] == first[0]["reference"]
    assert _tickets(store_env) == [("Kidwai Nagar", False, None, STRANGER, 2)]


def test_a_danger_reported_later_makes_the_joined_ticket_a_priority(store_env) -> None:
    _cut("Panki me light nahi", entities={"area": "Panki"})
    _, messages = _cut(
        "Panki me khambe me current aa raha hai",
        NEIGHBOUR,
        entities={"area": "Panki", "hazard": "current"},
    )
    assert responses(messages) == ["utter_safety_first", "utter_power_cut_joined"]
    assert _tickets(store_env) == [("Panki", True, "current", STRANGER, 2)]


def test_a_report_after_the_hour_opens_a_new_ticket(store_env) -> None:
    _cut("Barra me light nahi", entities={"area": "Barra"})
    with store.session_scope(store_env) as session:
        ticket = session.query(store.Ticket).one()
        ticket.created_at -= tickets.AREA_WINDOW + dt.timedelta(minutes=1)
    _, messages = _cut("Barra me light nahi", NEIGHBOUR, entities={"area": "Barra"})
    assert responses(messages) == ["utter_power_cut_ticket"]
    assert [t[0] for t in _tickets(store_env)] == ["Barra", "Barra"]


def test_another_area_is_another_ticket(store_env) -> None:
    _cut("Barra me light nahi", entities={"area": "Barra"})
    _, messages = _cut("Juhi me light nahi", NEIGHBOUR, entities={"area": "Juhi"})
    assert responses(messages) == ["utter_power_cut_ticket"]
    assert [t[0] for t in _tickets(store_env)] == ["Barra", "Juhi"]


def test_a_location_pin_names_the_nearest_area(store_env) -> None:
    # About 500 m from Kidwai Nagar's centre in bot/areas.csv.
    events, messages = _cut("/report_power_cut", pin=(26.4268, 80.3325))
    assert responses(messages) == ["utter_power_cut_ticket"]
    assert messages[0]["area"] == "Kidwai Nagar"
    with store.session_scope(store_env) as session:
        ticket = session.query(store.Ticket).one()
        assert ticket.description == "[location pin 26.42680,80.33250]"
    assert slots_set(events)["pending_query"] is None


def test_a_pin_outside_every_area_asks_for_the_area(store_env) -> None:
    events, messages = _cut("/report_power_cut", pin=(26.8467, 80.9462))  # Lucknow
    assert responses(messages) == ["utter_location_not_served"]
    assert _tickets(store_env) == []
    assert slots_set(events) == {"pending_query": "power_cut", "needs_account": False}


def test_a_pin_that_the_channel_did_not_vouch_for_is_ignored(store_env) -> None:
    args = whatsapp(STRANGER)
    args["metadata"][signing.LOCATION_KEY] = {
        "latitude": 26.4268,
        "longitude": 80.3325,
        "signature": "sha256=" + "0" * 64,
    }
    _, messages = run(
        ActionReportPowerCut(), tracker("/report_power_cut", intent="report_power_cut", **args)
    )
    assert responses(messages) == ["utter_power_cut_where"]


def test_nothing_to_go_on_asks_where_without_the_account_form(store_env) -> None:
    events, messages = _cut("current nahi hai")
    assert responses(messages) == ["utter_power_cut_where"]
    assert slots_set(events) == {"pending_query": "power_cut", "needs_account": False}
    assert _tickets(store_env) == []


def test_an_area_of_the_consumer_data_missing_from_the_nlu_lookup_is_read_too(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Lal Bangla", mobile=None)
    _, messages = _cut("lal bangla me light nahi hai")
    assert responses(messages) == ["utter_power_cut_ticket"]
    assert messages[0]["area"] == "Lal Bangla"


def test_an_area_named_beats_the_account_area(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Kidwai Nagar")
    _, messages = _cut("Juhi me light nahi", MOBILE, entities={"area": "Juhi"})
    assert messages[0]["area"] == "Juhi"


def test_a_danger_with_no_place_opens_a_priority_ticket_and_the_area_completes_it(
    store_env,
) -> None:
    events, messages = _cut("deewar me current aa raha hai", entities={"hazard": "current"})
    assert responses(messages) == ["utter_safety_first", "utter_power_cut_priority_where"]
    assert slots_set(events)["pending_query"] == "power_cut"
    _, messages = _cut("Gwaltoli", entities={"area": "Gwaltoli"})
    assert responses(messages) == ["utter_power_cut_priority"]
    assert _tickets(store_env) == [("Gwaltoli", True, "current", STRANGER, 1)]


def test_several_accounts_in_one_area_need_no_choice(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Juhi")
    add_consumer(store_env, "1234567891", area="Juhi")
    _, messages = _cut("light nahi hai", MOBILE)
    assert responses(messages) == ["utter_power_cut_ticket"]
    assert messages[0]["area"] == "Juhi"


def test_neighbours_reporting_at_the_same_moment_share_one_ticket(store_env) -> None:
    from concurrent.futures import ThreadPoolExecutor

    domain()  # loaded once, before the threads (its warning filter is not thread-safe)
    mobiles = [f"+91983333330{i}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(
            pool.map(
                lambda m: _cut("Parade me light nahi", m, entities={"area": "Parade"}), mobiles
            )
        )
    tickets_now = _tickets(store_env)
    assert len(tickets_now) == 1 and tickets_now[0][4] == 6
