"""Issue 10's observation 7, replayed through the whole stack: Kanpur's regional Hindi, SMS
shorthand, ALL CAPS, a long rambling message and Devanagari-spelled English.

The held-out set (tests/nlu/test_regional.yml) measures the NLU on such messages; this checks
that the answers reach the consumer: each message goes through Twilio's signed webhook, the
gateway, a worker, real Rasa and the action server, and the test reads what the fake Twilio was
asked to send.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot import store
from bot.actions.tickets import POWER_CUT
from bot.store import session_scope
from tests.e2e.conftest import Stack
from tests.e2e.test_transcripts_accounts import say

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

#: The e2e stack is shared: a mobile and an area (for power-cut tickets) no other test uses.
SENDER = "+919700000801"
ACCOUNT = "9708010001"
AREA = "Barra"
DUES = "₹2,310.00"


@pytest.fixture(scope="module")
def consumer(stack: Stack) -> None:
    with session_scope(stack.engine) as session:
        session.add(
            store.Consumer(
                discom="KESCO",
                new_account_no=ACCOUNT,
                old_account_no="8010001",
                name="Shyam Lal Yadav",
                mobile=SENDER,
                category="domestic",
                meter_type="postpaid",
                area=AREA,
                language="hi",
            )
        )
        session.flush()
        session.add(
            store.Bill(
                new_account_no=ACCOUNT,
                bill_month="2026-10",
                amount_due_paise=231000,
                due_date=dt.date(2026, 11, 20),
                arrears_paise=0,
            )
        )


@pytest.mark.usefixtures("consumer")
@pytest.mark.parametrize(
    "message",
    [
        "हमार बिल केतना बा",  # Bhojpuri-flavoured Hindi
        "humka bill ka kitna paisa dena hai",  # Awadhi-flavoured Hinglish
        "BILL KITNA BAKI HAI",  # ALL CAPS
        "bil ktna h",  # SMS shorthand
        "बिल अमाउंट बताइए",  # Devanagari-spelled English
        "Namaste ji, hum Barra se bol rahe hain. Is mahine ka bill abhi tak ghar nahi aaya, "
        "pata nahi kitna baki hai. Kripya bata dijiye kitna jama karna hai.",  # long
    ],
)
def test_observation_7_a_dues_question_however_it_is_written(stack: Stack, message: str) -> None:
    reply = say(stack, SENDER, message)
    assert DUES in reply and ACCOUNT in reply, reply


@pytest.mark.usefixtures("consumer")
def test_observation_7_a_regional_power_cut_opens_a_ticket_for_the_account(stack: Stack) -> None:
    reply = say(stack, SENDER, "kal raat se light nahin aavat hai")
    with session_scope(stack.engine) as session:
        tickets = list(
            session.execute(
                select(store.Ticket).where(
                    store.Ticket.kind == POWER_CUT, store.Ticket.mobile == SENDER
                )
            ).scalars()
        )
    assert len(tickets) == 1, reply
    assert tickets[0].reference in reply, reply
