"""Issue 10's observations 1-3, replayed as people wrote them, through the whole stack.

Each conversation goes through Twilio's signed webhook, the gateway, a worker, real Rasa on the
trained model and the real action server (tests/e2e/conftest.py), and is read back from what
the fake Twilio was asked to send. Observation 1: a mobile with two accounts (a home and a
shop, as in the demo data) answers the bot's list with "pehle wale ka", "दूसरा वाला", "dukaan
wala" or an old number, and gets the dues of both at once. Observation 2: once the account form
has asked, a language change, a fraud warning, small talk, an out-of-scope message or STOP is
answered as itself, without "send your account number" tacked on. Observation 3: a date and an
amount, or a mobile, are not looked up as account numbers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot import store
from bot.actions.tickets import PAYMENT_NOT_REFLECTED, RECEIPT_MISSING, WRONG_BILL
from bot.gateway import texts
from bot.store import InboundMessage, OutboundMessage, session_scope
from tests.e2e.conftest import Stack, new_sid, wait_for

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

#: Two accounts on one mobile, like the demo data's +91 90000 00101.
OWNER = "+919700000401"
HOME, HOME_OLD = "9704010001", "4010001"
SHOP = "9704010002"
#: A mobile no account is registered to.
STRANGER = "+919700000402"
#: One account on the mobile.
SINGLE = "+919700000403"
SINGLE_ACCOUNT = "9704030001"

#: How the account form asks, in every register: none of it may follow an unrelated answer.
ASKS = (
    "account number bhejiye",
    "send your account number",
    "send the account number",
    "खाता नंबर भेजें",
    "Kaunsa account",
    "Which account",
    "कौन सा खाता",
)


@pytest.fixture(scope="module")
def accounts(stack: Stack) -> None:
    rows = [
        (HOME, HOME_OLD, "राम कुमार", OWNER, "domestic", "postpaid", "Kidwai Nagar", 184500, 0),
        (SHOP, "4010002", "राम कुमार जनरल स्टोर", OWNER, "commercial", "smart_postpaid",
         "Govind Nagar", 752050, 120000),
        (SINGLE_ACCOUNT, "4030001", "Sunita Sharma", SINGLE, "domestic", "postpaid", "Kalyanpur",
         250000, 0),
    ]  # fmt: skip
    with session_scope(stack.engine) as session:
        for new, old, name, mobile, category, meter, area, _, _ in rows:
            session.add(
                store.Consumer(
                    discom="KESCO",
                    new_account_no=new,
                    old_account_no=old,
                    name=name,
                    mobile=mobile,
                    category=category,
                    meter_type=meter,
                    area=area,
                    language="hi",
                )
            )
        session.flush()
        for new, *_, due, arrears in rows:
            session.add(
                store.Bill(
                    new_account_no=new,
                    bill_month="2026-10",
                    amount_due_paise=due,
                    due_date=dt.date(2026, 11, 20),
                    arrears_paise=arrears,
                )
            )


def _replies(stack: Stack, sid: str) -> list[str] | None:
    """What the bot sent in answer to the message ``sid``, once the message is processed."""
    with session_scope(stack.engine) as session:
        row = session.execute(
            select(InboundMessage).where(InboundMessage.message_sid == sid)
        ).scalar_one_or_none()
        if row is None or row.processed_at is None:
            return None
        return [
            m.body
            for m in session.execute(
                select(OutboundMessage)
                .where(OutboundMessage.idempotency_key.like(f"reply:{row.id}:%"))
                .order_by(OutboundMessage.id)
            ).scalars()
        ]


def say(stack: Stack, mobile: str, text: str, channel: str = "whatsapp") -> str:
    """Send ``text`` from ``mobile`` and return the bot's answer (all its messages, joined)."""
    sid = new_sid()
    assert stack.post_message(text, mobile, channel=channel, sid=sid).status_code == 200
    return "\n".join(wait_for(lambda: _replies(stack, sid), timeout=180))


def _asks(reply: str) -> list[str]:
    return [ask for ask in ASKS if ask.casefold() in reply.casefold()]


def _tickets(stack: Stack, kind: str, mobile: str) -> list[store.Ticket]:
    with session_scope(stack.engine) as session:
        return list(
            session.execute(
                select(store.Ticket).where(store.Ticket.kind == kind, store.Ticket.mobile == mobile)
            ).scalars()
        )


@pytest.mark.usefixtures("accounts")
def test_observation_1_choosing_among_accounts(stack: Stack) -> None:
    # A dues question answers for both accounts at once, one line each.
    reply = say(stack, OWNER, "bill kitna hai")
    assert "₹1,845.00" in reply and "₹7,520.50" in reply, reply
    assert HOME in reply and SHOP in reply and not _asks(reply), reply
    # "the first one's" right after them: that account's bill in full.
    reply = say(stack, OWNER, "pehle wale ka")
    assert "₹1,845.00" in reply and HOME in reply and SHOP not in reply, reply

    # A question about one account lists them, numbered, with what each is.
    reply = say(stack, OWNER, "receipt chahiye")
    assert f"1. ghar — {HOME_OLD} → {HOME}" in reply, reply
    assert f"2. dukaan — 4010002 → {SHOP}" in reply, reply
    # "the first one's" answers the list: the receipt question, for the home account.
    reply = say(stack, OWNER, "pehle wale ka")
    assert SHOP not in reply and not _asks(reply), reply
    [ticket] = _tickets(stack, RECEIPT_MISSING, OWNER)
    assert ticket.new_account_no == HOME and ticket.reference in reply
    assert ticket.description == "receipt chahiye"

    # Hindi ordinal: the pay link is for the shop, for its dues.
    assert "कौन सा खाता" in say(stack, OWNER, "मुझे बिल भरना है")
    reply = say(stack, OWNER, "दूसरा वाला")
    assert SHOP in reply and "₹7,520.50" in reply and not _asks(reply), reply

    # A word of the category.
    assert "Kaunsa account" in say(stack, OWNER, "connection katega kya")
    reply = say(stack, OWNER, "dukaan wala")
    assert SHOP in reply and HOME not in reply and not _asks(reply), reply

    # English, after all that: the dues of both again, not the account chosen last.
    reply = say(stack, OWNER, "how much do I owe")
    assert "₹1,845.00" in reply and "₹7,520.50" in reply, reply

    # The old number answers the list too.
    assert "Kaunsa account" in say(stack, OWNER, "galat bill aaya hai")
    reply = say(stack, OWNER, HOME_OLD)
    assert not _asks(reply), reply
    [ticket] = _tickets(stack, WRONG_BILL, OWNER)
    assert ticket.new_account_no == HOME and ticket.reference in reply

    # A payment that does not show: "1" picks the account; the date and amount of the question
    # stay with it.
    question = "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai"
    reply = say(stack, OWNER, question)
    assert "Kaunsa account" in reply and "nahi mila" not in reply, reply
    reply = say(stack, OWNER, "1")
    [ticket] = _tickets(stack, PAYMENT_NOT_REFLECTED, OWNER)
    assert ticket.new_account_no == HOME and ticket.reference in reply
    assert ticket.description == question


@pytest.mark.usefixtures("accounts")
def test_observation_2_the_account_form_lets_go(stack: Stack) -> None:
    assert _asks(say(stack, STRANGER, "bill kitna hai"))
    # A language change: the question is offered once more, saying what it was for, and not
    # the bare question tacked on.
    reply = say(stack, STRANGER, "English please")
    assert "I will reply in English" in reply, reply
    assert 'You were asking: "bill kitna hai"' in reply, reply
    assert "Please send your account number" not in reply, reply

    # A forwarded scam: the warning, nothing else.
    reply = say(
        stack,
        STRANGER,
        "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
        "Call officer 9876500000 immediately. is this real?",
    )
    assert "1912" in reply and not _asks(reply), reply
    assert "9876500000" not in reply, reply

    # Small talk and out of scope, each after the form asked again.
    assert _asks(say(stack, STRANGER, "bill kitna hai"))
    reply = say(stack, STRANGER, "cricket ka score batao")
    assert reply and not _asks(reply), reply
    assert _asks(say(stack, STRANGER, "receipt chahiye"))
    reply = say(stack, STRANGER, "namaste")
    assert "Bijli Sahayak" in reply and not _asks(reply), reply
    # The question was dropped: a number now asks its own question (its new number).
    reply = say(stack, STRANGER, "456789")
    assert "456789" in reply and not _asks(reply), reply

    # STOP never reaches the bot (the gateway opts the number out); what follows is answered
    # as itself, with no question left over.
    assert _asks(say(stack, STRANGER, "receipt chahiye"))
    assert say(stack, STRANGER, "STOP") == texts.text("opt_out_confirmation", "en")
    assert say(stack, STRANGER, "START") == texts.text("opt_in_confirmation", "en")
    reply = say(stack, STRANGER, "cricket ka score batao")
    assert reply and not _asks(reply), reply


@pytest.mark.usefixtures("accounts")
def test_observation_3_dates_amounts_and_mobiles_are_not_account_numbers(stack: Stack) -> None:
    question = "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai"
    reply = say(stack, SINGLE, question)
    assert "20112026" not in reply and "nahi mila" not in reply, reply
    [ticket] = _tickets(stack, PAYMENT_NOT_REFLECTED, SINGLE)
    assert ticket.new_account_no == SINGLE_ACCOUNT and ticket.reference in reply
    assert ticket.description == question

    reply = say(stack, SINGLE, "mobile 9876543210 hai mera")
    assert reply and "9876543210" not in reply and "nahi mila" not in reply, reply
