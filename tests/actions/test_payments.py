"""Receipts and missing payments: look the payment up, else open a ticket with a reference."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from bot import store
from bot.actions.payments import ActionPaymentNotReflected, ActionReceipt
from tests.actions.helpers import (
    MOBILE,
    STRANGER,
    add_consumer,
    responses,
    run,
    slots_set,
    tracker,
    whatsapp,
)

pytestmark = pytest.mark.usefixtures("store_env")
REFERENCE = re.compile(r"^BS\d{6}\d{5}$")


def add_payment(
    engine,
    status: str,
    ref: str,
    amount: int = 150000,  # type: ignore[no-untyped-def]
    receipt: str | None = None,
) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Payment(
                reference=ref,
                new_account_no="1234567890",
                amount_paise=amount,
                channel="counter",
                status=status,
                receipt_no=receipt,
                created_at=dt.datetime(2026, 11, 3, 6, 0),
                paid_at=dt.datetime(2026, 11, 3, 6, 5) if status == "paid" else None,
            )
        )


def tickets(engine) -> list[store.Ticket]:  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        return list(session.query(store.Ticket).order_by(store.Ticket.id))


def receipt(**kw):  # type: ignore[no-untyped-def]
    return run(ActionReceipt(), tracker("raseed chahiye", intent="ask_receipt", **kw))


def missing(**kw):  # type: ignore[no-untyped-def]
    return run(
        ActionPaymentNotReflected(),
        tracker("paise kat gaye par bill me nahi dikha", intent="payment_not_reflected", **kw),
    )


def test_receipt_of_the_latest_paid_payment(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_payment(store_env, "paid", "P1", receipt="R-0001")
    add_payment(store_env, "failed", "P2")
    _, messages = receipt(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_receipt_found"]
    assert messages[0]["receipt_no"] == "R-0001"
    assert messages[0]["amount"] == "₹1,500.00"
    assert messages[0]["paid_on"] == "03-11-2026 11:35"
    assert tickets(store_env) == []


def test_no_payment_opens_a_ticket_with_the_area(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Govind Nagar")
    events, messages = receipt(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_receipt_ticket"]
    [ticket] = tickets(store_env)
    assert REFERENCE.match(messages[0]["reference"])
    assert ticket.reference == messages[0]["reference"]
    assert (ticket.kind, ticket.area, ticket.mobile) == ("receipt_missing", "Govind Nagar", MOBILE)
    assert slots_set(events)["needs_account"] is False


def test_pending_payment_is_reported_as_pending(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_payment(store_env, "pending", "QR-77")
    _, messages = missing(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_pending"]
    assert messages[0]["reference"] == "QR-77"


def test_recorded_payment_is_shown(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_payment(store_env, "paid", "P1", receipt="R-0001")
    _, messages = missing(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_found"]


def test_missing_payment_opens_one_ticket_even_when_repeated(store_env) -> None:
    add_consumer(store_env, "1234567890")
    _, first = missing(**whatsapp(MOBILE))
    _, second = missing(**whatsapp(MOBILE))
    assert responses(first) == responses(second) == ["utter_payment_ticket"]
    assert first[0]["reference"] == second[0]["reference"]
    assert len(tickets(store_env)) == 1


def test_a_stranger_can_report_a_missing_payment_but_sees_no_payments(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_payment(store_env, "paid", "P1", receipt="R-0001")
    _, messages = missing(entities={"account_number": "456789"}, **whatsapp(STRANGER))
    assert responses(messages) == ["utter_payment_ticket"]
    _, messages = receipt(entities={"account_number": "456789"}, **whatsapp(STRANGER))
    assert responses(messages) == ["utter_registered_mobile_only"]


def test_unknown_sender_is_asked_for_the_account(store_env) -> None:
    events, messages = receipt(sender_id="default")
    assert messages == []
    assert slots_set(events)["pending_query"] == "receipt"


# --------------------------------------------------------------------------- the consumer's facts

#: The NLU's entities for "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai".
CLAIM_TEXT = "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai"
CLAIM_ENTITIES = [
    {"entity": "date", "value": "2026-11-20", "start": 6, "end": 16},
    {"entity": "amount", "value": 150000, "start": 20, "end": 27},
]


def claimed(entities: list[dict], text: str = CLAIM_TEXT, **kw):  # type: ignore[no-untyped-def]
    trk = tracker(text, intent="payment_not_reflected", **kw)
    trk.latest_message["entities"] = entities
    return run(ActionPaymentNotReflected(), trk)


def test_the_date_and_amount_given_are_said_back_and_put_on_the_ticket(store_env) -> None:
    add_consumer(store_env, "1234567890", area="Govind Nagar")
    add_payment(store_env, "paid", "P1", amount=184500, receipt="R-0001")  # another payment
    _, messages = claimed(CLAIM_ENTITIES, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_claim_ticket"]
    assert messages[0]["details"] == "₹1,500.00, 20-11-2026"
    [ticket] = tickets(store_env)
    assert ticket.reference == messages[0]["reference"]
    assert ticket.kind == "payment_not_reflected"
    assert ticket.description.splitlines() == [
        "claimed_amount=₹1,500.00 claimed_date=2026-11-20",
        CLAIM_TEXT,
    ]


def test_a_recorded_payment_that_fits_the_claim_is_shown(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_payment(store_env, "paid", "P1", amount=150000, receipt="R-0001")  # paid 03-11-2026
    entities = [{"entity": "amount", "value": 150000, "start": 0, "end": 7}]
    _, messages = claimed(entities, text="1500 rs bhare the, nahi dikh raha", **whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_found"]
    assert messages[0]["receipt_no"] == "R-0001"
    # Same amount, but a fortnight later: another payment, which is missing.
    _, messages = claimed(CLAIM_ENTITIES, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_claim_ticket"]


def test_the_facts_survive_the_account_form(store_env) -> None:
    # The consumer reported the payment from an unknown number, then gave the account number.
    add_consumer(store_env, "1234567890", old="456789")
    report = {
        "event": "user",
        "text": CLAIM_TEXT,
        "parse_data": {"intent": {"name": "payment_not_reflected"}, "entities": CLAIM_ENTITIES},
    }
    trk = tracker(
        "456789",
        intent="inform_account_number",
        entities={"account_number": "456789"},
        events=[report, {"event": "user", "text": "456789"}],
        **whatsapp(STRANGER),
    )
    _, messages = run(ActionPaymentNotReflected(), trk)
    assert responses(messages) == ["utter_payment_claim_ticket"]
    assert messages[0]["details"] == "₹1,500.00, 20-11-2026"
    [ticket] = tickets(store_env)
    assert ticket.description.splitlines()[-1] == CLAIM_TEXT


def test_malformed_facts_are_ignored(store_env) -> None:
    add_consumer(store_env, "1234567890")
    entities = [
        {"entity": "date", "value": "20-11-2026", "start": 6, "end": 16},
        {"entity": "amount", "value": "1500", "start": 20, "end": 27},
    ]
    _, messages = claimed(entities, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_payment_ticket"]
