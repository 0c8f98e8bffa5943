"""Bills, prepaid balances and disconnection lists: private to the registered mobile and staff."""

from __future__ import annotations

import datetime as dt

import pytest
from rasa_sdk.executor import CollectingDispatcher

from bot import store
from bot.actions.billing import (
    ActionBillAmount,
    ActionDisconnectionStatus,
    ActionPrepaidBalance,
    handle_disconnection,
)
from bot.actions.turn import Turn
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

pytestmark = pytest.mark.usefixtures("store_env")


def bill(text: str = "bill kitna hai", **kw):  # type: ignore[no-untyped-def]
    return run(ActionBillAmount(), tracker(text, intent="ask_bill_amount", **kw))


def test_registered_mobile_gets_dues_due_date_arrears_and_as_of(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-09", 90000)
    add_bill(store_env, "1234567890", "2026-10", 123450, arrears=50000)
    events, messages = bill(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_bill_details"]
    message = messages[0]
    assert message["amount_due"] == "₹1,234.50"
    assert message["arrears"] == "₹500.00"
    assert message["bill_month"] == "10/2026"
    assert message["due_date"] == "20-11-2026"
    assert message["as_of"] == "05-11-2026"
    assert slots_set(events)["needs_account"] is False


def test_a_mobile_claimed_outside_the_channels_vouch_gets_no_dues(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-10", 123450)
    smuggled = {"channel": "whatsapp", "mobile": MOBILE, "role": "consumer"}
    for claim in (
        {"sender_id": f"whatsapp:{MOBILE}"},
        {"sender_id": f"whatsapp:{MOBILE}", "metadata": smuggled},
        {"slots": {"mobile": MOBILE, "role": "staff"}},
    ):
        events, messages = bill(**claim)
        assert "utter_bill_details" not in responses(messages), claim
        assert not any("amount_due" in m for m in messages), claim
        assert slots_set(events)["needs_account"] is True  # asked for a number, as a stranger


def test_anyone_else_is_asked_to_write_from_the_registered_mobile(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-10", 123450)
    _, messages = bill(
        "456789 ka bill", entities={"account_number": "456789"}, **whatsapp(STRANGER)
    )
    assert responses(messages) == ["utter_registered_mobile_only"]
    assert "amount_due" not in messages[0]


def test_verified_staff_get_the_bill_but_a_claim_alone_does_not(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-10", 123450)
    add_staff(store_env)
    add_staff(store_env, mobile=STRANGER, active=False)
    for mobile, expected in (
        (STAFF_MOBILE, "utter_bill_details"),
        (STRANGER, "utter_registered_mobile_only"),
    ):
        kw = whatsapp(mobile, role="staff")
        _, messages = bill("456789", entities={"account_number": "456789"}, **kw)
        assert responses(messages) == [expected]


def test_unregistered_sender_without_a_number_is_asked_for_one(store_env) -> None:
    events, messages = bill(sender_id="default")
    assert messages == []
    assert slots_set(events) == {
        "pending_query": "bill",
        "needs_account": True,
    }


def test_a_mobile_with_two_or_three_accounts_gets_each_ones_dues(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_consumer(
        store_env,
        "2234567890",
        name="Ramesh Kumar Store",
        area="Govind Nagar",
        category="commercial",
    )
    add_consumer(store_env, "3234567890", meter_type="smart_prepaid", area="Swaroop Nagar")
    add_bill(store_env, "1234567890", "2026-10", 184500)
    with store.session_scope(store_env) as session:
        session.add(
            store.PrepaidBalance(
                new_account_no="3234567890",
                balance_paise=-1523400,
                as_of=dt.datetime(2026, 11, 5, 9, 0),
            )
        )
    # A remembered account (chosen earlier for a receipt) does not narrow a dues question.
    events, messages = bill(slots={"account_number": "1234567890"}, **whatsapp(MOBILE))
    assert responses(messages) == [
        "utter_account_line_bill",
        "utter_account_line_nothing",
        "utter_account_line_balance",
    ]
    assert [m["new_account_no"] for m in messages] == ["1234567890", "2234567890", "3234567890"]
    assert messages[0]["amount_due"] == "₹1,845.00"
    assert messages[0]["area"] == "Kidwai Nagar"
    assert messages[2]["balance"] == "-₹15,234.00"
    # The question stays open: "the first one's" next answers it for that account.
    assert slots_set(events) == {"pending_query": "bill", "needs_account": False}
    _, messages = bill("pehle wale ka", slots={"pending_query": "bill"}, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_bill_details"]
    assert messages[0]["new_account_no"] == "1234567890"
    # Without the lines just shown, an ordinal names nothing; a category still does.
    _, messages = bill("pehle wale ka", **whatsapp(MOBILE))
    assert len(messages) == 3
    _, messages = bill("dukaan ka bill kitna hai", **whatsapp(MOBILE))
    assert responses(messages) == ["utter_no_bill_found"]
    assert messages[0]["new_account_no"] == "2234567890"
    _, messages = run(
        ActionPrepaidBalance(),
        tracker("balance kitna hai", intent="ask_prepaid_balance", **whatsapp(MOBILE)),
    )
    assert len(messages) == 3


def test_a_mobile_with_more_than_three_accounts_chooses_one(store_env) -> None:
    for n in range(1, 5):
        add_consumer(store_env, f"{n}234567890")
    events, messages = bill(**whatsapp(MOBILE))
    # The account form's question lists them (accounts.ActionAskAccountNumber).
    assert messages == []
    assert slots_set(events)["needs_account"] is True
    assert slots_set(events)["pending_query"] == "bill"
    add_bill(store_env, "2234567890", "2026-10", 1000)
    _, messages = bill("2234567890", entities={"account_number": "2234567890"}, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_bill_details"]


def test_remembered_number_answers_a_follow_up(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-10", 123450)
    _, messages = bill(slots={"account_number": "1234567890"}, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_bill_details"]


def test_no_bill_on_record(store_env) -> None:
    add_consumer(store_env, "1234567890")
    _, messages = bill(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_no_bill_found"]


def test_smart_prepaid_gets_the_balance_instead(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    with store.session_scope(store_env) as session:
        session.add(
            store.PrepaidBalance(
                new_account_no="1234567890",
                balance_paise=-1523400,
                as_of=dt.datetime(2026, 11, 5, 9, 0),
            )
        )
    _, messages = bill(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_prepaid_balance_negative"]
    assert messages[0]["balance"] == "-₹15,234.00"
    assert messages[0]["as_of"] == "05-11-2026 14:30"


def test_prepaid_balance(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    ask = tracker("balance kitna hai", intent="ask_prepaid_balance", **whatsapp(MOBILE))
    _, messages = run(ActionPrepaidBalance(), ask)
    assert responses(messages) == ["utter_no_balance_found"]
    with store.session_scope(store_env) as session:
        session.add(
            store.PrepaidBalance(
                new_account_no="1234567890",
                balance_paise=25000,
                as_of=dt.datetime(2026, 11, 5, 9, 0),
            )
        )
    _, messages = run(ActionPrepaidBalance(), ask)
    assert responses(messages) == ["utter_prepaid_balance"]
    assert messages[0]["balance"] == "₹250.00"


def test_prepaid_balance_of_a_postpaid_account(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="postpaid")
    _, messages = run(
        ActionPrepaidBalance(), tracker("balance", intent="ask_prepaid_balance", **whatsapp(MOBILE))
    )
    assert responses(messages) == ["utter_not_prepaid"]


# --------------------------------------------------------------------------- disconnection

# Monday 9 November 2026, 10:00 IST (04:30 UTC).
MONDAY_10_IST = dt.datetime(2026, 11, 9, 4, 30)


def disconnection(now: dt.datetime, mobile: str = MOBILE):  # type: ignore[no-untyped-def]
    dispatcher = CollectingDispatcher()
    turn = Turn(
        dispatcher,
        tracker("kya mera connection katega", intent="ask_disconnection", **whatsapp(mobile)),
    )
    handle_disconnection(turn, now=now)
    return dispatcher.messages


def list_account(engine, amount: int = 1523400, status: str = "listed") -> None:  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        session.add(
            store.DisconnectionNotice(
                new_account_no="1234567890",
                amount_to_avoid_paise=amount,
                listed_on=dt.date(2026, 11, 1),
                status=status,
            )
        )


def test_not_listed(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    list_account(store_env, status="cleared")
    messages = disconnection(MONDAY_10_IST)
    assert responses(messages) == ["utter_not_on_disconnection_list"]
    assert messages[0]["cut_hours"] == "11:00–16:00"


def test_listed_gives_the_amount_and_the_earliest_cut(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    list_account(store_env)
    messages = disconnection(MONDAY_10_IST)
    assert responses(messages) == ["utter_disconnection_listed"]
    assert messages[0]["amount"] == "₹15,234.00"
    assert messages[0]["next_cut"] == "09-11-2026 11:00"


def test_holiday_moves_the_earliest_cut(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="postpaid")
    list_account(store_env)
    with store.session_scope(store_env) as session:
        session.add(store.Holiday(day=dt.date(2026, 11, 9), name="Guru Nanak Jayanti"))
    messages = disconnection(MONDAY_10_IST)
    assert messages[0]["next_cut"] == "10-11-2026 08:00"
    assert messages[0]["cut_hours"] == "08:00–18:00"


def test_no_cut_during_a_moratorium(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    list_account(store_env)
    with store.session_scope(store_env) as session:
        session.add(
            store.Moratorium(
                discom="KESCO",
                starts_at=dt.datetime(2026, 11, 1),
                ends_at=dt.datetime(2026, 11, 12, 6, 30),
                reason="billing upgrade",
            )
        )
        session.add(
            store.Moratorium(
                discom="PVVNL",
                starts_at=dt.datetime(2026, 11, 1),
                ends_at=dt.datetime(2026, 12, 30),
                reason="other discom",
            )
        )
    messages = disconnection(MONDAY_10_IST)
    assert responses(messages) == ["utter_disconnection_moratorium"]
    assert messages[0]["until"] == "12-11-2026 12:00"


def test_disconnection_details_are_private(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789", meter_type="smart_prepaid")
    list_account(store_env)
    ask = tracker(
        "456789 katega kya",
        intent="ask_disconnection",
        entities={"account_number": "456789"},
        **whatsapp(STRANGER),
    )
    _, messages = run(ActionDisconnectionStatus(), ask)
    assert responses(messages) == ["utter_registered_mobile_only"]
