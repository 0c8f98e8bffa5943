"""Choosing among a mobile's accounts, and the account form yielding to other messages."""

from __future__ import annotations

import pytest

from bot import store
from bot.actions.accounts import ActionAskAccountNumber, ActionLeaveAccountForm, ValidateAccountForm
from bot.actions.choices import Kind, option_lines, read_choice
from bot.actions.menu import ActionAnswerWithAccount
from tests.actions.helpers import (
    MOBILE,
    STRANGER,
    add_bill,
    add_consumer,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

HOME = store.Consumer(
    new_account_no="2300000001",
    old_account_no="1234567",
    name="राम कुमार",
    category="domestic",
    area="Kidwai Nagar",
)
SHOP = store.Consumer(
    new_account_no="2300000002",
    old_account_no="7654321",
    name="राम कुमार जनरल स्टोर",
    category="commercial",
    area="Govind Nagar",
)


@pytest.mark.parametrize(
    "text",
    ["1", "१", "1.", "option 1", "no. 1", "1 wala", "pehla", "pehle wala", "pehle wale ka",
     "Pahla wala account", "first", "the first one", "1st", "पहला", "पहले वाला", "ghar ka",
     "ghar wala", "घर वाला", "home", "Kidwai Nagar wala", "kidwai wala"],
)  # fmt: skip
def test_answers_that_pick_the_first_account(text: str) -> None:
    choice = read_choice(text, [HOME, SHOP])
    assert choice.kind is Kind.CHOSEN and choice.consumer is HOME, text


@pytest.mark.parametrize(
    "text",
    ["2", "२", "doosra", "dusra wala", "doosre wale ka", "second", "the second one", "दूसरा",
     "दूसरा वाला", "dukaan wala", "dukan wala", "दुकान वाला", "the shop one", "store wala",
     "general store", "last wala", "आखिरी वाला", "Govind Nagar wala"],
)  # fmt: skip
def test_answers_that_pick_the_second_account(text: str) -> None:
    choice = read_choice(text, [HOME, SHOP])
    assert choice.kind is Kind.CHOSEN and choice.consumer is SHOP, text


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("3", Kind.OUT_OF_RANGE),
        ("teesra wala", Kind.OUT_OF_RANGE),
        ("factory wala", Kind.OUT_OF_RANGE),
        ("pehla ya doosra", Kind.AMBIGUOUS),
        ("ram kumar", Kind.NONE),  # both names have it
        ("cricket ka score batao", Kind.NONE),
        ("maine pehle hi bata diya tha ki mera bill galat hai", Kind.NONE),
    ],
)
def test_answers_that_pick_none(text: str, kind: Kind) -> None:
    assert read_choice(text, [HOME, SHOP]).kind is kind


def test_words_do_not_count_for_messages_about_something_else() -> None:
    assert read_choice("ghar wala", [HOME, SHOP], words_count=False).kind is Kind.NONE
    assert read_choice("2", [HOME, SHOP], words_count=False).consumer is SHOP


def test_the_list_names_each_account_in_the_register() -> None:
    assert option_lines([HOME, SHOP], "hinglish").splitlines() == [
        "1. ghar — 1234567 → 2300000001 (रा*** कु***, Kidwai Nagar)",
        "2. dukaan — 7654321 → 2300000002 (रा*** कु*** ज*** स्***, Govind Nagar)",
    ]
    assert option_lines([HOME, SHOP], "en").startswith("1. home — ")
    assert option_lines([HOME, SHOP], "hi").startswith("1. घर — ")


# --------------------------------------------------------------------------- through the form


def _two_accounts(engine) -> None:  # type: ignore[no-untyped-def]
    add_consumer(engine, "2300000001", old="1234567", name="Ram Kumar")
    add_consumer(
        engine,
        "2300000002",
        old="7654321",
        name="Ram Kumar General Store",
        area="Govind Nagar",
        category="commercial",
    )


def _form(text: str, intent: str = "inform_account_number", **kw):  # type: ignore[no-untyped-def]
    trk = tracker(
        text,
        intent=intent,
        slots={"requested_slot": "account_number", "account_number": None, "pending_query": "pay"},
        active_loop="account_form",
        events=[{"event": "slot", "name": "account_number", "value": None}],
        **kw,
    )
    events, messages = run(ValidateAccountForm(), trk)
    return events, responses(messages)


@pytest.mark.usefixtures("store_env")
def test_the_form_asks_a_mobile_with_several_accounts_to_choose(store_env) -> None:
    _two_accounts(store_env)
    trk = tracker(
        "bill bharna hai",
        slots={"pending_query": "pay", "language": "hinglish"},
        active_loop="account_form",
        **whatsapp(MOBILE),
    )
    _, messages = run(ActionAskAccountNumber(), trk)
    assert responses(messages) == ["utter_choose_account"]
    assert messages[0]["accounts"].splitlines()[1].startswith("2. dukaan — 7654321 → 2300000002")
    # A stranger is asked for a number, as before.
    _, messages = run(ActionAskAccountNumber(), tracker("x", **whatsapp(STRANGER)))
    assert responses(messages) == ["utter_ask_account_number"]


@pytest.mark.usefixtures("store_env")
@pytest.mark.parametrize(
    ("text", "account"),
    [("1", "2300000001"), ("dukaan wala", "2300000002"), ("दूसरा वाला", "2300000002")],
)
def test_the_form_takes_a_choice_from_the_list(store_env, text: str, account: str) -> None:
    _two_accounts(store_env)
    events, said = _form(text, **whatsapp(MOBILE))
    assert slots_set(events) == {"account_number": account}
    assert said == []


@pytest.mark.usefixtures("store_env")
def test_a_choice_not_on_the_list_is_refused_and_asked_again(store_env) -> None:
    _two_accounts(store_env)
    events, said = _form("3", **whatsapp(MOBILE))
    assert slots_set(events) == {"account_number": None}
    assert said == ["utter_invalid_account_choice"]


@pytest.mark.usefixtures("store_env")
def test_below_no_list_1_is_the_menu_and_words_are_something_else(store_env) -> None:
    add_consumer(store_env, "2300000001", old="1234567")
    events, _ = _form("1", **whatsapp(MOBILE))
    assert [e["event"] for e in events] == ["action_execution_rejected"]
    events, said = _form("pehla", **whatsapp(STRANGER))
    assert slots_set(events) == {"account_number": None} and said == []


@pytest.mark.usefixtures("store_env")
def test_a_fraud_check_naming_a_category_is_no_choice(store_env) -> None:
    _two_accounts(store_env)
    events, _ = _form(
        "dukaan wale ne ye link bheja hai", intent="verify_payment_link", **whatsapp(MOBILE)
    )
    assert [e["event"] for e in events] == ["action_execution_rejected"]


@pytest.mark.usefixtures("store_env")
def test_the_chosen_account_answers_the_waiting_question_not_the_menu(store_env) -> None:
    _two_accounts(store_env)
    add_bill(store_env, "2300000002", "2026-10", 752050)
    trk = tracker(
        "2",
        intent="inform_account_number",
        slots={"pending_query": "bill", "account_number": "2300000002"},
        **whatsapp(MOBILE),
    )
    trk.latest_action_name = "account_form"
    events, messages = run(ActionAnswerWithAccount(), trk)
    assert responses(messages) == ["utter_bill_details"]
    assert messages[0]["new_account_no"] == "2300000002"
    assert slots_set(events)["needs_account"] is False


# --------------------------------------------------------------------------- the form yields


def _asking(text: str, intent: str, **kw):  # type: ignore[no-untyped-def]
    return tracker(
        text,
        intent=intent,
        slots={"requested_slot": "account_number", "pending_query": "bill", "needs_account": True},
        active_loop="account_form",
        events=[
            {"event": "user", "text": "bill kitna hai"},
            {"event": "action", "name": "action_bill_amount"},
            {"event": "active_loop", "name": "account_form"},
            {"event": "user", "text": text},
        ],
        **kw,
    )


def test_leaving_the_form_drops_its_question() -> None:
    events, messages = run(ActionLeaveAccountForm(), _asking("namaste", "greet"))
    assert messages == []
    assert {"event": "active_loop", "name": None} in [
        {k: e.get(k) for k in ("event", "name")} for e in events
    ]
    assert slots_set(events) == {
        "requested_slot": None,
        "pending_query": None,
        "needs_account": False,
    }


def test_after_a_language_change_the_question_is_offered_once_more_saying_what_for(
    store_env,
) -> None:
    trk = _asking("English please", "change_language")
    _, messages = run(ActionAskAccountNumber(), trk)
    assert responses(messages) == ["utter_ask_account_again"]
    assert messages[0]["question"] == "bill kitna hai"
    _two_accounts(store_env)
    _, messages = run(
        ActionAskAccountNumber(), _asking("हिंदी में", "change_language", **whatsapp(MOBILE))
    )
    assert responses(messages) == ["utter_choose_account_again"]
    # Any other re-ask (a wrong number) is the plain question.
    _, messages = run(ActionAskAccountNumber(), _asking("12345", "inform_account_number"))
    assert responses(messages) == ["utter_ask_account_number"]


def test_after_a_choice_the_facts_come_from_the_message_that_asked(store_env) -> None:
    _two_accounts(store_env)
    asked = "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai"
    trk = tracker(
        "1",
        intent="inform_account_number",
        slots={"pending_query": "payment_missing", "account_number": "2300000001"},
        events=[
            {"event": "user", "text": asked},
            {"event": "active_loop", "name": "account_form"},
            {"event": "user", "text": "1"},
        ],
        **whatsapp(MOBILE),
    )
    trk.latest_action_name = "account_form"
    _, messages = run(ActionAnswerWithAccount(), trk)
    assert responses(messages) == ["utter_payment_ticket"]
    with store.session_scope(store_env) as session:
        [ticket] = session.query(store.Ticket).all()
    assert (ticket.new_account_no, ticket.description) == ("2300000001", asked)


def test_a_forwarded_scam_is_no_answer_to_the_form() -> None:
    scam = (
        "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
        "Call officer 9876500000 immediately. is this real?"
    )
    events, said = _form(scam, intent="verify_payment_link")
    assert [e["event"] for e in events] == ["action_execution_rejected"] and said == []
    # Out of scope with digits that are no account number: not "that is not an account number".
    events, said = _form("aaj 9.30 baje match hai, score kya hai", intent="out_of_scope")
    assert slots_set(events) == {"account_number": None} and said == []
