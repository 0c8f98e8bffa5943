"""New account numbers: registered mobiles, the old-number lookup and the account form."""

from __future__ import annotations

import pytest

from bot.actions.accounts import ActionAskAccountNumber, ActionNewAccountNumber, ValidateAccountForm
from tests.actions.helpers import (
    MOBILE,
    STAFF_MOBILE,
    STRANGER,
    add_consumer,
    add_staff,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

pytestmark = pytest.mark.usefixtures("store_env")


def ask(text: str = "mera naya account number kya hai", **kw):  # type: ignore[no-untyped-def]
    return run(ActionNewAccountNumber(), tracker(text, intent="ask_new_account_number", **kw))


def test_registered_mobile_gets_its_new_number_at_once(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", name="Ramesh Kumar")
    events, messages = ask(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_new_account_number"]
    assert messages[0]["new_account_no"] == "1234567890"
    assert messages[0]["masked_name"] == "R*** K***"
    assert slots_set(events) == {
        "account_number": "1234567890",
        "pending_query": None,
        "needs_account": False,
    }


def test_several_accounts_are_listed_with_old_numbers_and_masked_names(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", name="Ramesh Kumar")
    add_consumer(store_env, "2234567890", old=None, name="Sita Devi")
    events, messages = ask(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_new_account_numbers"]
    assert messages[0]["accounts"].splitlines() == [
        "456789 → 1234567890 (R*** K***)",
        "— → 2234567890 (S*** D***)",
    ]
    assert slots_set(events)["needs_account"] is False


def test_unregistered_sender_is_asked_for_the_old_number(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    events, messages = ask(**whatsapp(STRANGER))
    assert messages == []
    assert slots_set(events) == {
        "pending_query": "new_number",
        "needs_account": True,
    }
    # The form's question for this topic is the old number.
    _, asked = run(ActionAskAccountNumber(), tracker(slots={"pending_query": "new_number"}))
    assert responses(asked) == ["utter_ask_old_account_number"]
    _, asked = run(ActionAskAccountNumber(), tracker(slots={"pending_query": "bill"}))
    assert responses(asked) == ["utter_ask_account_number"]


def test_old_number_given_up_front_is_looked_up_with_the_name_masked(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", name="रमेश कुमार", mobile=MOBILE)
    events, messages = ask(
        "mera purana number 456789 hai naya kya hai",
        entities={"account_number": "456789"},
        sender_id="default",
    )
    assert responses(messages) == ["utter_new_number_lookup"]
    assert messages[0]["old_account_no"] == "456789"
    assert messages[0]["new_account_no"] == "1234567890"
    assert messages[0]["masked_name"] == "र*** कु***"
    assert slots_set(events)["account_number"] == "1234567890"


def test_number_in_the_text_is_used_even_when_nlu_missed_the_entity(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    _, messages = ask("purana ४५६७८९ tha", sender_id="default")
    assert responses(messages) == ["utter_new_number_lookup"]


def test_a_new_number_is_confirmed_as_new(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    _, messages = ask("1234567890 ka naya number", entities={"account_number": "1234567890"})
    assert responses(messages) == ["utter_already_new_number"]
    assert messages[0]["masked_name"] == "R*** K***"


def test_unknown_number_says_where_to_find_it_and_keeps_the_question_open(store_env) -> None:
    events, messages = ask("old number 999999", entities={"account_number": "999999"})
    assert responses(messages) == ["utter_account_not_found"]
    assert messages[0]["account_number"] == "999999"
    assert slots_set(events) == {
        "account_number": None,
        "pending_query": "new_number",
        "needs_account": False,
    }


def test_verified_staff_see_the_full_record(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", name="Ramesh Kumar")
    add_staff(store_env)
    kw = whatsapp(STAFF_MOBILE, role="staff")
    _, messages = ask("456789", entities={"account_number": "456789"}, **kw)
    assert responses(messages) == ["utter_staff_account_details", "utter_staff_account_no_figures"]
    assert messages[0]["name"] == "Ramesh Kumar"
    assert messages[0]["area"] == "Kidwai Nagar"


def test_claiming_staff_in_metadata_alone_changes_nothing(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    kw = whatsapp(STRANGER, role="staff")
    _, messages = ask("456789", entities={"account_number": "456789"}, **kw)
    assert responses(messages) == ["utter_new_number_lookup"]


def test_asking_leaves_a_half_filled_form(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    events, _ = ask(active_loop="account_form", **whatsapp(MOBILE))
    assert {"event": "active_loop", "name": None} in [
        {k: e.get(k) for k in ("event", "name")} for e in events
    ]
    assert slots_set(events)["requested_slot"] is None


# --------------------------------------------------------------------------- the account form


def validate_form(
    text: str,
    *,
    entity: str | None = None,
    intent: str = "inform_account_number",
    slots: dict | None = None,
):  # type: ignore[no-untyped-def]
    candidate = [{"event": "slot", "name": "account_number", "value": entity}] if entity else []
    trk = tracker(
        text,
        intent=intent,
        entities={"account_number": entity} if entity else None,
        slots={"requested_slot": "account_number", "account_number": entity, **(slots or {})},
        active_loop="account_form",
        events=[{"event": "action", "name": "account_form"}, *candidate],
    )
    events, messages = run(ValidateAccountForm(), trk)
    return slots_set(events), responses(messages)


def test_form_takes_the_entity() -> None:
    assert validate_form("456789", entity="456789") == ({"account_number": "456789"}, [])


def test_form_reads_digits_the_nlu_did_not_tag() -> None:
    assert validate_form("mera number ४५६७८९ hai") == ({"account_number": "456789"}, [])


def test_form_rejects_a_wrong_length_number_and_asks_again() -> None:
    assert validate_form("12345") == ({"account_number": None}, ["utter_invalid_account_number"])
    # DIET tags "12345" too; the slot-mapping validation dropped it, the form still says why.
    trk = tracker(
        "12345",
        intent="inform_account_number",
        entities={"account_number": "12345"},
        slots={"requested_slot": "account_number", "account_number": None},
        active_loop="account_form",
        events=[{"event": "slot", "name": "account_number", "value": None}],
    )
    events, messages = run(ValidateAccountForm(), trk)
    assert slots_set(events) == {"account_number": None}
    assert responses(messages) == ["utter_invalid_account_number"]


def test_form_says_nothing_when_it_starts() -> None:
    trk = tracker(
        "bill kitna hai",
        intent="ask_bill_amount",
        slots={"account_number": None},
        active_loop="account_form",
        events=[{"event": "slot", "name": "account_number", "value": None}],
    )
    events, messages = run(ValidateAccountForm(), trk)
    assert slots_set(events) == {"account_number": None}
    assert messages == []


def test_form_leaves_menu_digits_and_other_messages_to_the_dialogue() -> None:
    # DIET tags "2" as an account number; the slot-mapping validation already dropped it.
    trk = tracker(
        "2",
        intent="inform_account_number",
        entities={"account_number": "2"},
        slots={"requested_slot": "account_number", "account_number": None},
        active_loop="account_form",
        events=[{"event": "slot", "name": "account_number", "value": None}],
    )
    events, messages = run(ValidateAccountForm(), trk)
    assert [e["event"] for e in events] == ["action_execution_rejected"]
    assert events[0]["name"] == "account_form"
    assert messages == []
    assert validate_form("bijli nahi hai", intent="report_power_cut") == ({}, [])


def test_form_switches_the_question_when_the_reply_asks_another_one() -> None:
    slots, _ = validate_form(
        "456789 ka bill kitna hai",
        entity="456789",
        intent="ask_bill_amount",
        slots={"pending_query": "new_number"},
    )
    assert slots == {"account_number": "456789", "pending_query": "bill"}
