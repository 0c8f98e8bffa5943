"""Staff actions: the verification card, the visit form, progress; audited, capped, role-checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot import store, verification
from bot.actions.accounts import ActionNewAccountNumber
from bot.actions.staff import (
    ActionStaffProgress,
    ActionStaffSaveVisit,
    ActionStaffStartVisit,
    ActionStaffVerify,
    ValidateStaffVisitForm,
    read_yes_no,
)
from tests.actions.helpers import (
    MOBILE,
    STAFF_MOBILE,
    STRANGER,
    add_bill,
    add_consumer,
    add_staff,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)


def _audit(engine: Any, action: str) -> list[store.AuditLog]:
    with store.session_scope(engine) as session:
        rows = session.execute(
            select(store.AuditLog).where(store.AuditLog.action == action)
        ).scalars()
        return list(rows)


def _verify(text: str, mobile: str, **kw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return run(
        ActionStaffVerify(), tracker(text, intent="staff_verify_account", **whatsapp(mobile), **kw)
    )


@pytest.fixture()
def field(store_env):  # type: ignore[no-untyped-def]
    add_consumer(store_env, "1234567890", old="1234567", name="Ramesh Kumar", mobile=MOBILE)
    add_bill(store_env, "1234567890", "2026-10", 123450)
    add_staff(store_env)
    return store_env


def test_staff_get_the_full_card_masked_mobile_and_an_audit_row(field) -> None:
    events, messages = _verify("verify 1234567", STAFF_MOBILE)
    assert responses(messages) == ["utter_staff_account_details", "utter_staff_account_dues"]
    card = messages[0]
    assert card["name"] == "Ramesh Kumar"
    assert (card["old_account_no"], card["new_account_no"]) == ("1234567", "1234567890")
    assert card["area"] == "Kidwai Nagar" and card["meter_type"] == "postpaid"
    assert card["mobile_masked"] == "+91******3210"
    assert messages[1]["amount"] == "₹1,234.50"
    assert slots_set(events)["visit_account"] == "1234567890"
    (row,) = _audit(field, verification.LOOKUP)
    assert row.actor.startswith("staff:") and row.subject == "1234567"
    assert json.loads(row.detail)["name"] == "Suresh Yadav"


@pytest.mark.parametrize("mobile", [MOBILE, STRANGER])
def test_a_consumer_using_staff_words_gets_the_consumer_answer(field, mobile: str) -> None:
    _, messages = _verify("verify 1234567", mobile)
    assert not any(r.startswith("utter_staff") for r in responses(messages))
    assert all("name" not in m for m in messages)  # the masked name only
    assert _audit(field, verification.LOOKUP) == []


def test_the_new_number_question_from_staff_shows_the_card(field) -> None:
    trk = tracker(
        "1234567 ka naya number batao",
        intent="ask_new_account_number",
        entities={"account_number": "1234567"},
        **whatsapp(STAFF_MOBILE),
    )
    _, messages = run(ActionNewAccountNumber(), trk)
    assert responses(messages)[0] == "utter_staff_account_details"


def test_a_deactivated_number_is_a_consumer_at_once(field) -> None:
    _verify("verify 1234567", STAFF_MOBILE)
    with store.session_scope(field) as session:
        session.execute(store.Staff.__table__.update().values(active=False))
    _, messages = _verify("verify 1234567", STAFF_MOBILE)
    assert responses(messages) == ["utter_new_number_lookup"]
    assert len(_audit(field, verification.LOOKUP)) == 1


def test_the_daily_cap_refuses_and_records_one_alert(field, monkeypatch) -> None:
    monkeypatch.setenv("BIJLI_STAFF_LOOKUP_LIMIT_PER_DAY", "2")
    from bot import connections

    connections.reset()
    for _ in range(2):
        assert responses(_verify("verify 1234567", STAFF_MOBILE)[1])[0] == (
            "utter_staff_account_details"
        )
    for _ in range(2):
        _, messages = _verify("verify 1234567", STAFF_MOBILE)
        assert responses(messages) == ["utter_staff_lookup_cap"]
    assert len(_audit(field, verification.LOOKUP_REFUSED)) == 2
    assert len(_audit(field, verification.CAP_REACHED)) == 1
    from rq import Queue

    queue = Queue("notifications", connection=connections.redis())
    assert [j.func_name for j in queue.jobs] == [verification.CAP_ALERT_JOB]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", True),
        ("१", True),
        ("haan ji", True),
        ("हाँ", True),
        ("Yes", True),
        ("2", False),
        ("nahi", False),
        ("नहीं", False),
        ("0", "__cancel__"),
        ("kal", "__unreadable__"),
    ],
)
def test_yes_no_replies(text: str, value: object) -> None:
    assert read_yes_no(text) == value


def _form(text: str, requested: str, slots: dict[str, Any]) -> dict[str, Any]:
    trk = tracker(
        text,
        slots={"requested_slot": requested, **slots},
        active_loop="staff_visit_form",
        **whatsapp(STAFF_MOBILE),
    )
    events, messages = run(ValidateStaffVisitForm(), trk)
    return {**slots_set(events), "_said": responses(messages)}


def test_the_form_reads_numbered_answers_and_validates_the_mobile(field) -> None:
    assert _form("1", "visit_informed", {})["visit_informed"] is True
    wrong = _form("2", "visit_mobile_ok", {"visit_informed": True})
    # All three slots are required now, as the domain lists them: Rasa asks the next one.
    assert wrong["visit_mobile_ok"] is False and "requested_slot" not in wrong
    bad = _form("12345", "visit_new_mobile", {"visit_informed": True, "visit_mobile_ok": False})
    assert bad["visit_new_mobile"] is None and bad["_said"] == ["utter_staff_invalid_mobile"]
    good = _form(
        "098765 11111", "visit_new_mobile", {"visit_informed": True, "visit_mobile_ok": False}
    )
    assert good["visit_new_mobile"] == "+919876511111" and good["_said"] == []
    ok = _form("haan", "visit_mobile_ok", {"visit_informed": False})
    assert ok["visit_mobile_ok"] is True and ok["requested_slot"] is None
    cancelled = _form("0", "visit_informed", {})
    assert cancelled["visit_cancelled"] is True and cancelled["requested_slot"] is None
    unread = _form("kal aana", "visit_informed", {})
    assert unread["_said"] == ["utter_staff_answer_one_or_two"]


def test_a_visit_with_a_changed_mobile_is_recorded_pending_and_audited(field) -> None:
    start_events, messages = run(
        ActionStaffStartVisit(),
        tracker("visit darj karo", slots={"visit_account": "1234567890"}, **whatsapp(STAFF_MOBILE)),
    )
    assert slots_set(start_events)["visit_open"] is True
    assert slots_set(start_events)["visit_mobile_masked"] == "+91******3210"
    slots = {
        "visit_account": "1234567890",
        "visit_informed": True,
        "visit_mobile_ok": False,
        "visit_new_mobile": "+919876511111",
    }
    events, messages = run(
        ActionStaffSaveVisit(), tracker("", slots=slots, **whatsapp(STAFF_MOBILE))
    )
    assert responses(messages) == [
        "utter_staff_visit_saved",
        "utter_staff_visit_informed",
        "utter_staff_visit_mobile_change",
    ]
    assert slots_set(events)["visit_open"] is False
    with store.session_scope(field) as session:
        (change,) = verification.pending_changes(session, "Kidwai Nagar")
        assert (change.old_mobile, change.new_mobile) == (MOBILE, "+919876511111")
        figures = verification.area_figures(session, "Kidwai Nagar")
    assert (figures.total, figures.informed, figures.pending, figures.visits_today) == (1, 1, 1, 1)
    (row,) = _audit(field, verification.VISIT)
    detail = json.loads(row.detail)
    assert row.subject == "1234567890" and detail["mobile_change_id"] == change.id
    assert detail["informed"] is True and detail["new_mobile"] == "+91******1111"


def test_a_visit_needs_a_verified_account_and_staff(field) -> None:
    events, messages = run(
        ActionStaffStartVisit(), tracker("record visit", **whatsapp(STAFF_MOBILE))
    )
    assert responses(messages) == ["utter_staff_visit_needs_account"]
    assert slots_set(events)["visit_open"] is False
    events, messages = run(
        ActionStaffStartVisit(),
        tracker("record visit", slots={"visit_account": "1234567890"}, **whatsapp(MOBILE)),
    )
    assert responses(messages) == ["utter_fallback", "utter_help"]
    _, messages = run(
        ActionStaffSaveVisit(),
        tracker(
            "1",
            slots={"visit_account": "1234567890", "visit_informed": True, "visit_mobile_ok": True},
            **whatsapp(MOBILE),
        ),
    )
    assert responses(messages) == ["utter_staff_visit_not_recorded"]
    assert _audit(field, verification.VISIT) == []


def test_progress_for_readers_and_the_area_report_for_officers(field) -> None:
    _, messages = run(ActionStaffProgress(), tracker("aaj kitne hue", **whatsapp(STAFF_MOBILE)))
    assert responses(messages) == ["utter_staff_progress"]
    assert messages[0]["area_total"] == 1 and messages[0]["visits_today"] == 0
    with store.session_scope(field) as session:
        session.add(store.Staff(mobile=STRANGER, name="Verma", role="officer", area="Kidwai Nagar"))
    _, messages = run(ActionStaffProgress(), tracker("area report", **whatsapp(STRANGER)))
    assert responses(messages) == ["utter_staff_area_report"]
    _, messages = run(ActionStaffProgress(), tracker("area report", **whatsapp(MOBILE)))
    assert responses(messages) == ["utter_fallback", "utter_help"]
