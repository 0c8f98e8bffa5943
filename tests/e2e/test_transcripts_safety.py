"""Issue 10, observations 4 and 5, replayed as conversations through the real stack.

Each message goes in through the signed Twilio webhook and is answered by the real worker, the
real Rasa server on the trained model and the real action server (tests/e2e/conftest.py); the
replies are read from the outbound messages of that very inbound message.

4. A forwarded scam ("your electricity will be disconnected tonight ... Call officer 98765...")
   got "We could not find account number 9876500000". It must get the fraud warning.
5. "subah se light nahi hai Kidwai Nagar me, transformer se chingari nikal rahi thi" from an
   unknown number got only "send your account number". It must get safety advice at once, then
   a priority ticket for Kidwai Nagar, with no account asked for; a neighbour's WhatsApp location
   pin and a third person's message from the same area join that ticket and count the reporters.
"""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.store import InboundMessage, OutboundMessage, Ticket, TicketReport, session_scope
from tests.e2e.conftest import Stack, new_sid, wait_for

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

SCAM = (
    "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
    "Call officer 9876500000 immediately. is this real?"
)
OBSERVATION_5 = "subah se light nahi hai Kidwai Nagar me, transformer se chingari nikal rahi thi"

SCAM_READER = "+919700000501"
SPARKS_REPORTER = "+919700000502"
PIN_NEIGHBOUR = "+919700000503"
THIRD_NEIGHBOUR = "+919700000504"
#: About 500 m east of Kidwai Nagar's centre in bot/areas.csv.
PIN_NEAR_KIDWAI = ("26.4268", "80.3325")

#: What asking for an account number looks like, in the three registers.
ASKS_FOR_ACCOUNT = re.compile(r"account number bhej|send your account|खाता (नंबर|संख्या) भेज", re.I)


def say(stack: Stack, sender: str, body: str, *, pin: tuple[str, str] | None = None) -> list[str]:
    """Post a WhatsApp message as Twilio does and return the bot's replies to it, in order."""
    sid = new_sid()
    form = {
        "MessageSid": sid,
        "AccountSid": stack.cfg.twilio_account_sid,
        "From": f"whatsapp:{sender}",
        "To": stack.cfg.twilio_whatsapp_from,
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "E2E",
    }
    if pin is not None:
        # A shared location: Twilio sends the pin's Latitude and Longitude (and no Body).
        form.update({"Latitude": pin[0], "Longitude": pin[1]})
    url = f"{stack.cfg.public_base_url}/twilio/messages"
    signature = RequestValidator(stack.cfg.twilio_auth_token).compute_signature(url, form)
    response = requests.post(
        f"{stack.web}/twilio/messages",
        data=form,
        headers={"X-Twilio-Signature": signature},
        timeout=10,
    )
    assert response.status_code == 200

    def answered() -> list[str] | None:
        with session_scope(stack.engine) as session:
            row = session.execute(
                select(InboundMessage).where(InboundMessage.message_sid == sid)
            ).scalar_one_or_none()
            if row is None or row.processed_at is None:
                return None
            bodies = session.execute(
                select(OutboundMessage.body)
                .where(OutboundMessage.idempotency_key.like(f"reply:{row.id}:%"))
                .order_by(OutboundMessage.id)
            ).scalars()
            return list(bodies)

    replies: list[str] = wait_for(answered, timeout=180)
    return replies


def test_observation_4_a_forwarded_scam_gets_the_fraud_warning_not_an_account_lookup(
    stack: Stack,
) -> None:
    assert say(stack, SCAM_READER, "hello")
    replies = say(stack, SCAM_READER, SCAM)
    text = "\n".join(replies)
    assert re.search(r"fraud|dhokha|धोखा", text, re.I), replies
    # The officer's phone number is not taken for an account number.
    assert "9876500000" not in text
    assert not re.search(r"could not find|nahi mila|नहीं मिला", text, re.I), replies
    assert not ASKS_FOR_ACCOUNT.search(text), replies
    # The conversation goes on normally afterwards.
    assert say(stack, SCAM_READER, "ok thank you")


def test_observation_5_sparks_get_safety_first_then_a_priority_ticket_that_neighbours_join(
    stack: Stack,
) -> None:
    # 1. The observation, from a number with no account.
    replies = say(stack, SPARKS_REPORTER, OBSERVATION_5)
    assert len(replies) == 2, replies
    safety, ticket_reply = replies
    # Safety advice first: stay away, do not touch, call 1912 now.
    assert "1912" in safety and re.search(r"door rahiye|stay away|दूर रहें", safety, re.I)
    assert re.search(r"mat chhuiye|do not touch|न छुएँ", safety, re.I), safety
    assert "Kidwai Nagar" in ticket_reply or "किदवई" in ticket_reply, ticket_reply
    assert not ASKS_FOR_ACCOUNT.search("\n".join(replies)), replies
    with session_scope(stack.engine) as session:
        ticket = session.execute(
            select(Ticket).where(Ticket.mobile == SPARKS_REPORTER)
        ).scalar_one()
        reference = ticket.reference
        assert (ticket.kind, ticket.area, ticket.priority, ticket.hazard) == (
            "power_cut",
            "Kidwai Nagar",
            True,
            "spark",
        )
        assert ticket.new_account_no is None
    assert reference in ticket_reply

    # 2. A neighbour shares a WhatsApp location pin, with no words: it joins the same ticket.
    [joined] = say(stack, PIN_NEIGHBOUR, "", pin=PIN_NEAR_KIDWAI)
    assert reference in joined and re.search(r"\b2\b", joined), joined

    # 3. A third person names the area: three people have reported it now.
    [third] = say(stack, THIRD_NEIGHBOUR, "Kidwai Nagar me bhi light nahi hai")
    assert reference in third and re.search(r"\b3\b", third), third

    with session_scope(stack.engine) as session:
        tickets = session.execute(
            select(Ticket).where(Ticket.kind == "power_cut", Ticket.area == "Kidwai Nagar")
        ).scalars()
        assert [t.reference for t in tickets] == [reference]
        reporters = session.execute(
            select(TicketReport.mobile, TicketReport.description)
            .join(Ticket, Ticket.id == TicketReport.ticket_id)
            .where(Ticket.reference == reference)
            .order_by(TicketReport.id)
        ).all()
    assert [mobile for mobile, _ in reporters] == [
        SPARKS_REPORTER,
        PIN_NEIGHBOUR,
        THIRD_NEIGHBOUR,
    ]
    assert "location pin 26.42680,80.33250" in reporters[1][1]
