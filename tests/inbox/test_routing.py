"""The gateway and a held conversation: a hold past its time lets the bot answer, and ends."""

from __future__ import annotations

import datetime as dt

from bot import handoffs
from bot.clock import utcnow
from bot.inbox import texts
from bot.store import Handoff, Operator, session_scope
from tests.gateway_stack import inbound_form
from tests.inbox.conftest import MOBILE


def test_a_hold_past_its_time_lets_the_bot_answer_and_the_expiry_runs_at_once(
    make_operator, open_handoff, engine, post_signed, stub_rasa, fake, work_scheduled
):
    make_operator()
    handoff_id = open_handoff(language="en")
    an_hour_ago = utcnow() - dt.timedelta(hours=1)
    with session_scope(engine) as session:
        priya = session.query(Operator).one()
        handoffs.take(session, handoff_id, priya, now=an_hour_ago)
    # The scheduled expiry was lost (say, Redis lost it): the consumer writes again.
    post_signed("/twilio/messages", inbound_form("hello, anyone?", sender=MOBILE))
    work_scheduled()  # answers the message, and schedules the expiry for now
    assert stub_rasa.messages() == ["hello, anyone?"]
    work_scheduled()  # RQ's scheduler moves the due expiry; it closes and tells the consumer
    with session_scope(engine) as session:
        assert session.get(Handoff, handoff_id).close_reason == "timeout"
    bodies = [m["body"] for m in fake.sent(f"whatsapp:{MOBILE}")]
    assert bodies == [
        "echo: hello, anyone?",
        texts.text("timeout", "en", agent="Priya", minutes=30),
    ]
