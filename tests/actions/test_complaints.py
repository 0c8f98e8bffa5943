"""Power cuts, wrong bills and asking for a person."""

from __future__ import annotations

import json

import pytest

from bot import store
from bot.actions.complaints import ActionComplainWrongBill, ActionHumanHandoff, ActionReportPowerCut
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


def test_handoff_marks_the_conversation_and_audits_it(store_env) -> None:
    events, messages = run(
        ActionHumanHandoff(),
        tracker("kisi insaan se baat karao", intent="human_handoff", **whatsapp(MOBILE)),
    )
    assert responses(messages) == ["utter_handoff"]
    assert slots_set(events)["handoff"] is True
    with store.session_scope(store_env) as session:
        [row] = session.query(store.AuditLog).all()
        assert row.action == "handoff_requested"
        assert row.actor == "+91******3210"
        assert json.loads(row.detail)["channel"] == "whatsapp"
