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


def receipt(text: str = "raseed chahiye", **kw):  # type: ignore[no-untyped-def]
    return run(ActionReceipt(), tracker(text, intent="ask_receipt", **kw))


def missing(text: str = "paise kat gaye par bill me nahi dikha", **kw):  # type: ignore[no-untyped-def]
    return run(ActionPaymentNotReflected(), tracker(text, intent="payment_not_reflected", **kw))


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
    number = {"entities": {"account_number": "456789"}, **whatsapp(STRANGER)}
    _, messages = missing("456789 me payment nahi chadha", **number)
    assert responses(messages) == ["utter_payment_ticket"]
    _, messages = receipt("khata 456789 ki rasid bhejo", **number)
    assert responses(messages) == ["utter_registered_mobile_only"]


def test_unknown_sender_is_asked_for_the_account(store_env) -> None:
    events, messages = receipt(sender_id="default")
    assert messages == []
    assert slots_set(events)["pending_query"] == "receipt"


# --------------------------------------------------------------------------- pay_bill

from bot import paylinks  # noqa: E402
from bot.actions.payments import (  # noqa: E402
    ActionPayBill,
    ActionVerifyPaymentLink,
    date_in_text,
    month_in_text,
    utr_in_text,
)
from tests.actions.helpers import add_bill, vouched  # noqa: E402


def pay(text: str = "bill bharna hai", **kw):  # type: ignore[no-untyped-def]
    return run(ActionPayBill(), tracker(text, intent="pay_bill", **kw))


def sms(mobile: str) -> dict:
    return vouched(mobile, channel="sms")


def _intent_of(message) -> store.PaymentIntent:  # type: ignore[no-untyped-def]
    from bot import connections

    token = message["link"].rsplit("/pay/", 1)[1]
    with connections.session() as session:
        return paylinks.intent_for_token(session, connections.settings(), token)


def test_pay_link_for_the_dues_comes_with_its_qr_on_whatsapp(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    events, messages = pay(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_link"]
    message = messages[0]
    assert (message["account"], message["period"], message["amount"]) == (
        "1234567890",
        "10/2026",
        "₹1,543.50",
    )
    assert message["payee"] == "Kanpur Electricity Supply Company Ltd"
    assert message["vpa"] == "kesco.dev@razorpay"
    intent = _intent_of(message)
    assert (intent.amount_paise, intent.kind, intent.bill_month) == (154350, "dues", "2026-10")
    assert (intent.mobile, intent.channel) == (MOBILE, "whatsapp")
    token = message["link"].rsplit("/pay/", 1)[1]
    assert message["image"].endswith(f"/pay/{token}/qr.png")
    assert slots_set(events)["needs_account"] is False


def test_pay_link_on_sms_has_no_picture(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    _, messages = pay(**sms(MOBILE))
    assert responses(messages) == ["utter_pay_link"]
    assert "image" not in messages[0] or not messages[0]["image"]


@pytest.mark.parametrize(
    ("text", "paise"), [("500 ka recharge", 50000), ("₹2000 jama karna hai", 200000)]
)
def test_a_named_amount_is_an_advance_payment(store_env, text, paise) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    _, messages = pay(text, **whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_link_advance"]
    intent = _intent_of(messages[0])
    assert (intent.amount_paise, intent.kind, intent.bill_month) == (paise, "advance", None)


def test_prepaid_without_an_amount_is_asked_how_much(store_env) -> None:
    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    _, messages = pay("recharge karna hai", **whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_ask_amount"]


def test_the_link_asks_for_the_dues_less_what_was_paid_since(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)  # imported 05-11-2026
    add_payment(store_env, "paid", "P1", amount=4350)  # paid 03-11: already in the bill
    with store.session_scope(store_env) as session:
        session.add(
            store.Payment(
                reference="P2",
                new_account_no="1234567890",
                amount_paise=50000,
                channel="upi",
                status="paid",
                paid_at=dt.datetime(2026, 11, 10, 6, 0),
            )
        )
    _, messages = pay(**whatsapp(MOBILE))
    assert messages[0]["amount"] == "₹1,043.50"
    with store.session_scope(store_env) as session:
        session.add(
            store.Payment(
                reference="P3",
                new_account_no="1234567890",
                amount_paise=104350,
                channel="upi",
                status="paid",
                paid_at=dt.datetime(2026, 11, 11, 6, 0),
            )
        )
    _, messages = pay(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_nothing_due"]


def test_a_stranger_may_pay_a_named_amount_but_not_see_the_dues(store_env) -> None:
    add_consumer(store_env, "1234567890", old="456789")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    _, messages = pay(
        "456789 ka bill bharna hai", entities={"account_number": "456789"}, **whatsapp(STRANGER)
    )
    assert responses(messages) == ["utter_registered_mobile_only"]
    _, messages = pay(
        "456789 ka 700 rs jama karna hai",
        entities={"account_number": "456789"},
        **whatsapp(STRANGER),
    )
    assert responses(messages) == ["utter_pay_link_advance"]
    assert _intent_of(messages[0]).amount_paise == 70000


def test_an_amount_beyond_one_upi_payment_is_refused(store_env) -> None:
    add_consumer(store_env, "1234567890")
    _, messages = pay("₹5,00,000 jama karna hai", **whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_amount_out_of_range"]
    with store.session_scope(store_env) as session:
        assert session.query(store.PaymentIntent).count() == 0


def test_verify_a_link_the_bot_made(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    _, made = pay(**whatsapp(MOBILE))
    _, messages = run(
        ActionVerifyPaymentLink(),
        tracker(f"ye link sahi hai? {made[0]['link']}", intent="verify_payment_link"),
    )
    assert responses(messages) == ["utter_link_genuine"]
    assert (messages[0]["account"], messages[0]["amount"]) == ("1234567890", "₹1,543.50")


def test_verify_a_forwarded_scam(store_env) -> None:
    text = (
        "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
        "Call officer 9876500000 immediately. is this real?"
    )
    events, messages = run(ActionVerifyPaymentLink(), tracker(text, intent="verify_payment_link"))
    assert responses(messages) == ["utter_link_disconnection_call", "utter_pay_safely"]
    assert events == []  # a waiting account form is left alone


# --------------------------------------------------------------------------- receipts by link


def add_receipted(engine, ref: str, amount: int, paid_at: dt.datetime, number: str, utr: str):  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        session.add(
            store.Payment(
                reference=ref,
                new_account_no="1234567890",
                amount_paise=amount,
                channel="upi",
                status="paid",
                created_at=paid_at,
                paid_at=paid_at,
                receipt_no=number,
                receipt_code="ABCDEFGH23",
                utr=utr,
                discom="KESCO",
            )
        )


def test_receipt_is_resent_with_its_pdf_on_whatsapp(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_receipted(
        store_env, "R1", 50000, dt.datetime(2026, 10, 10, 6), "KESCO-2627-000001", "1" * 12
    )
    add_receipted(
        store_env, "R2", 70000, dt.datetime(2026, 11, 10, 6), "KESCO-2627-000002", "2" * 12
    )
    _, messages = receipt(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_receipt_link"]
    assert messages[0]["receipt_no"] == "KESCO-2627-000002"
    assert messages[0]["link"].endswith("/receipts/KESCO-2627-000002?code=ABCDEFGH23")
    assert messages[0]["image"].endswith("/receipts/KESCO-2627-000002.pdf?code=ABCDEFGH23")
    _, messages = run(
        ActionReceipt(),
        tracker("october ki raseed chahiye", intent="ask_receipt", **whatsapp(MOBILE)),
    )
    assert messages[0]["receipt_no"] == "KESCO-2627-000001"
    _, messages = run(
        ActionReceipt(), tracker("मार्च की रसीद", intent="ask_receipt", **whatsapp(MOBILE))
    )
    assert responses(messages) == ["utter_receipt_month_not_found"]


def test_payment_not_reflected_by_utr_credited_in_statement_or_unknown(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_receipted(
        store_env, "R1", 150000, dt.datetime(2026, 11, 20, 6), "KESCO-2627-000001", "612345678901"
    )
    with store.session_scope(store_env) as session:
        session.add(
            store.PaymentNotice(
                source="bank_statement",
                external_id="utr:712345678901",
                utr="712345678901",
                amount_paise=90000,
                outcome="unknown_intent",
                paid_at=dt.datetime(2026, 11, 21, 6),
            )
        )

    def ask(text: str):  # type: ignore[no-untyped-def]
        return run(
            ActionPaymentNotReflected(),
            tracker(text, intent="payment_not_reflected", **whatsapp(MOBILE)),
        )

    _, messages = ask("UTR 612345678901 wala payment nahi dikh raha")
    assert responses(messages) == ["utter_payment_credited"]
    assert messages[0]["receipt_no"] == "KESCO-2627-000001"
    _, messages = ask("maine 20/11/2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai")
    assert responses(messages) == ["utter_payment_credited"]
    _, messages = ask("712345678901 UTR se 900 bhara tha")
    assert responses(messages) == ["utter_payment_in_statement"]
    assert messages[0]["utr"] == "712345678901"
    _, messages = ask("UTR 812345678901 ka paisa kat gaya")
    assert responses(messages) == ["utter_payment_not_found_ticket"]
    [ticket] = tickets(store_env)
    assert "812345678901" in ticket.description
    assert messages[0]["reference"] == ticket.reference


def test_reading_utr_dates_and_months() -> None:
    assert utr_in_text("utr: ६१२३४५६७८९०१") == "612345678901"
    assert utr_in_text("account 1234567890") is None
    assert date_in_text("maine 20-11-2026 ko bhara") == dt.date(2026, 11, 20)
    assert date_in_text("31/02/26") is None
    today = dt.date(2026, 12, 4)
    assert month_in_text("november ki raseed", today) == "2026-11"
    assert month_in_text("मार्च की रसीद", today) == "2026-03"
    assert month_in_text("receipt for 10/2026", today) == "2026-10"
    assert month_in_text("raseed chahiye", today) is None


def test_while_billing_is_closed_the_bill_says_as_of_and_that_paying_still_works(store_env) -> None:
    from bot.actions.billing import ActionBillAmount

    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    _, messages = run(
        ActionBillAmount(), tracker("bill kitna hai", intent="ask_bill_amount", **whatsapp(MOBILE))
    )
    assert responses(messages) == ["utter_bill_details"]
    with store.session_scope(store_env) as session:
        session.add(store.BillingClosure(discom="KESCO", reason="month-end closing"))
    _, messages = run(
        ActionBillAmount(), tracker("bill kitna hai", intent="ask_bill_amount", **whatsapp(MOBILE))
    )
    assert responses(messages) == ["utter_bill_details", "utter_billing_closed_note"]
    assert messages[1]["as_of"] == "05-11-2026"
    _, messages = pay(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_link"]  # links still work while billing is closed


def test_a_pay_request_naming_someone_elses_upi_id_is_checked_first(store_env) -> None:
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    events, messages = pay("lineman ne bola 9876543210@ybl par bill bhar do", **whatsapp(MOBILE))
    assert responses(messages) == ["utter_link_personal_vpa", "utter_pay_safely"]
    assert slots_set(events)["needs_account"] is False
    with store.session_scope(store_env) as session:
        assert session.query(store.PaymentIntent).count() == 0


def test_without_a_configured_payee_outside_development_no_link_is_made(
    store_env, monkeypatch
) -> None:
    from bot import connections

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "a-real-auth-token")
    monkeypatch.setenv("BIJLI_PAYMENT_LINK_SECRET", "s3cret-links")
    monkeypatch.setenv("BIJLI_GATEWAY_SECRET", "g" * 32)  # real credentials require it
    connections.reset()
    add_consumer(store_env, "1234567890")
    add_bill(store_env, "1234567890", "2026-10", 154350)
    _, messages = pay(**whatsapp(MOBILE))
    assert responses(messages) == ["utter_pay_unavailable"]
    with store.session_scope(store_env) as session:
        assert session.query(store.PaymentIntent).count() == 0
    connections.reset()


def test_a_recharge_paid_since_the_balance_was_read_is_added_to_it(store_env) -> None:
    from bot.actions.billing import ActionPrepaidBalance

    add_consumer(store_env, "1234567890", meter_type="smart_prepaid")
    with store.session_scope(store_env) as session:
        session.add(
            store.PrepaidBalance(
                new_account_no="1234567890",
                balance_paise=-20000,
                as_of=dt.datetime(2026, 11, 5, 3, 0),
            )
        )
        session.add(
            store.Payment(
                reference="R500",
                new_account_no="1234567890",
                amount_paise=50000,
                channel="upi",
                status="paid",
                paid_at=dt.datetime(2026, 11, 6, 3, 0),
            )
        )
    _, messages = run(
        ActionPrepaidBalance(),
        tracker("balance kitna hai", intent="ask_prepaid_balance", **whatsapp(MOBILE)),
    )
    assert responses(messages) == ["utter_prepaid_balance"]
    assert messages[0]["balance"] == "₹300.00"
