"""``/admin/inbox``: what each role sees, replies through the fake Twilio, take over, close."""

from __future__ import annotations

import re

import pytest
from rq import Queue
from sqlalchemy import select

from bot import create_app
from bot.gateway import texts as gateway_texts
from bot.inbox import texts
from bot.queues import NOTIFICATIONS
from bot.store import (
    AuditLog,
    Handoff,
    HandoffReply,
    InboundMessage,
    Operator,
    OutboundMessage,
    session_scope,
)
from tests.gateway_stack import inbound_form
from tests.inbox.conftest import MOBILE
from tests.operators import csrf_from, sign_in

_TOKEN = re.compile(r'name="form_token"[^>]*value="([^"]+)"')


def reply_form(client, handoff_id: int, body: str) -> dict[str, str]:
    """The reply form as the page renders it, filled in."""
    html = client.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    return {"csrf_token": csrf_from(html), "form_token": _TOKEN.search(html).group(1), "body": body}


def press(client, handoff_id: int, action: str):
    """Press a button (take, close) on the conversation page."""
    html = client.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    return client.post(f"/admin/inbox/{handoff_id}/{action}", data={"csrf_token": csrf_from(html)})


def _whatsapp(fake):
    return fake.sent(f"whatsapp:{MOBILE}")


def test_an_agent_sees_details_masked_and_an_officer_in_full(
    agent, officer, consumer, post_signed, work, fake, open_handoff, engine
):
    post_signed("/twilio/messages", inbound_form("mera account 1234567890 hai", sender=MOBILE))
    work()
    handoff_id = open_handoff()

    listing = agent.get("/admin/inbox/").get_data(as_text=True)
    assert "+91******3210" in listing and MOBILE not in listing
    page = agent.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    assert "******7890" in page and "1234567890" not in page
    assert "R*** K***" in page and "Ramesh" not in page
    assert "echo: mera account ******7890 hai" in page, "the bot's reply is in the conversation"

    full = officer.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    assert MOBILE in full and "1234567890" in full and "Ramesh Kumar" in full
    with session_scope(engine) as session:
        viewed = session.execute(
            select(AuditLog).where(AuditLog.action == "handoff_viewed")
        ).scalar_one()
        assert (viewed.actor, viewed.subject) == ("operator:verma", str(handoff_id))


def test_what_a_consumer_wrote_is_shown_as_text_never_run_as_html(
    agent, post_signed, work, open_handoff
):
    post_signed(
        "/twilio/messages", inbound_form("<script>alert(1)</script><b>hi</b>", sender=MOBILE)
    )
    work()
    handoff_id = open_handoff()
    for path in (f"/admin/inbox/{handoff_id}", f"/admin/inbox/{handoff_id}/messages"):
        page = agent.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<b>hi</b>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;hi&lt;/b&gt;" in page


def test_a_mistyped_office_hours_setting_stops_the_web_process(gw_settings):
    from bot.office_hours import InvalidOfficeHours

    with pytest.raises(InvalidOfficeHours, match="Mon-Sat 10:00-17:00"):
        create_app(gw_settings.with_overrides(office_hours="Mon to Sat, 10 till 5"))


def test_an_agents_reply_reaches_the_consumer_through_twilio_with_their_name(
    agent, open_handoff, work, fake, engine, redis_conn
):
    handoff_id = open_handoff()
    response = agent.post(
        f"/admin/inbox/{handoff_id}/reply",
        data=reply_form(agent, handoff_id, "Namaste, dekhti hoon"),
    )
    assert response.status_code == 302
    assert Queue(NOTIFICATIONS, connection=redis_conn).count == 1
    work()
    [sent] = _whatsapp(fake)
    assert sent["body"] == "Priya (KESCO helpdesk): Namaste, dekhti hoon"
    with session_scope(engine) as session:
        reply = session.execute(select(HandoffReply)).scalar_one()
        outbound = session.get(OutboundMessage, reply.outbound_message_id)
        assert (reply.status, outbound.idempotency_key) == ("sent", f"handoff-reply:{reply.id}")
        assert outbound.twilio_sid == sent["sid"]
        handoff = session.get(Handoff, handoff_id)
        assert handoff.state == "held" and handoff.last_agent_at is not None
    page = agent.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    [shown] = re.findall(r'<li class="msg out agent".*?</li>', page, re.S)
    assert "Priya" in shown and "Namaste, dekhti hoon" in shown


def test_a_reply_form_posted_twice_is_sent_once(agent, open_handoff, work, fake, engine):
    handoff_id = open_handoff()
    form = reply_form(agent, handoff_id, "Ek minute")
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=form)
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=form)
    work()
    assert [m["body"] for m in _whatsapp(fake)] == ["Priya (KESCO helpdesk): Ek minute"]
    with session_scope(engine) as session:
        assert len(session.execute(select(HandoffReply)).all()) == 1


def test_a_reply_without_a_csrf_token_is_refused_and_nothing_is_sent(
    agent, open_handoff, work, fake, engine
):
    handoff_id = open_handoff()
    form = reply_form(agent, handoff_id, "sent from another site")
    del form["csrf_token"]
    assert agent.post(f"/admin/inbox/{handoff_id}/reply", data=form).status_code == 400
    work()
    assert _whatsapp(fake) == []
    with session_scope(engine) as session:
        assert session.execute(select(HandoffReply)).first() is None
        assert session.get(Handoff, handoff_id).state == "waiting"


def test_an_empty_or_overlong_reply_is_refused(agent, open_handoff, engine):
    handoff_id = open_handoff()
    for body in ("   ", "x" * 1001):
        response = agent.post(
            f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, body)
        )
        assert response.status_code == 302
    with session_scope(engine) as session:
        assert session.execute(select(HandoffReply)).first() is None


def test_a_held_senders_messages_go_to_the_agent_and_never_to_rasa(
    agent, open_handoff, post_signed, work, fake, stub_rasa, engine
):
    handoff_id = open_handoff()
    post_signed("/twilio/messages", inbound_form("bill kitna hai", sender=MOBILE))
    work()
    assert stub_rasa.messages() == ["bill kitna hai"], "waiting: the bot still answers"
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, "Haan ji"))
    work()
    before = len(_whatsapp(fake))

    post_signed("/twilio/messages", inbound_form("mera bill 1500 aaya", sender=MOBILE))
    work()
    assert stub_rasa.messages() == ["bill kitna hai"], "held: nothing reaches Rasa"
    assert len(_whatsapp(fake)) == before, "and the bot says nothing"
    with session_scope(engine) as session:
        row = session.execute(
            select(InboundMessage).where(InboundMessage.body == "mera bill 1500 aaya")
        ).scalar_one()
        assert row.processed_at is not None
        assert session.get(Handoff, handoff_id).last_consumer_at is not None
    fragment = agent.get(f"/admin/inbox/{handoff_id}/messages").get_data(as_text=True)
    assert "mera bill 1500 aaya" in fragment

    # STOP is still the gateway's: the opt-out is confirmed.
    post_signed("/twilio/messages", inbound_form("STOP", sender=MOBILE))
    work()
    assert _whatsapp(fake)[-1]["body"] == gateway_texts.text("opt_out_confirmation", "en")


def test_closing_tells_the_consumer_and_the_bot_answers_again(
    agent, open_handoff, post_signed, work, fake, stub_rasa, engine
):
    handoff_id = open_handoff(language="en")
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, "Hello"))
    work()
    assert press(agent, handoff_id, "close").headers["Location"] == "/admin/inbox/"
    work()
    assert _whatsapp(fake)[-1]["body"] == texts.text("closed", "en", agent="Priya")
    post_signed("/twilio/messages", inbound_form("how much is my bill", sender=MOBILE))
    work()
    assert stub_rasa.messages() == ["how much is my bill"]
    assert _whatsapp(fake)[-1]["body"] == "echo: how much is my bill"
    closed = agent.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    assert 'id="send"' not in closed, "no reply form on a closed conversation"


def test_only_the_holder_answers_but_an_officer_may_take_over(
    gw_app, agent, officer, make_operator, open_handoff, work, fake, engine
):
    handoff_id = open_handoff()
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, "Main hoon"))
    make_operator("ravi", "agent", "Ravi")
    ravi = gw_app.test_client()
    sign_in(ravi, "ravi")
    page = ravi.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    assert "Priya is answering this conversation" in page and 'id="send"' not in page
    assert press(ravi, handoff_id, "take").status_code == 302
    form = reply_form(agent, handoff_id, "Ravi here")  # a token from a page that had the form
    ravi.post(f"/admin/inbox/{handoff_id}/reply", data={**form, "csrf_token": csrf_from(page)})
    press(ravi, handoff_id, "close")
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff.state == "held"
        assert session.get(Operator, handoff.operator_id).username == "priya"
        assert len(session.execute(select(HandoffReply)).all()) == 1

    assert press(officer, handoff_id, "take").status_code == 302
    officer.post(
        f"/admin/inbox/{handoff_id}/reply", data=reply_form(officer, handoff_id, "Verma here")
    )
    work()
    assert [m["body"] for m in _whatsapp(fake)] == [
        "Priya (KESCO helpdesk): Main hoon",
        "Verma (KESCO helpdesk): Verma here",
    ]


def test_a_twilio_500_is_retried_and_a_permanent_refusal_is_shown(
    agent, open_handoff, work, fake, engine
):
    handoff_id = open_handoff()
    fake.configure(fail_next=[500])
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, "Retry me"))
    work()
    assert [m["body"] for m in _whatsapp(fake)] == ["Priya (KESCO helpdesk): Retry me"]
    assert fake.configure()["errors_injected"] >= 1

    fake.configure(reject={MOBILE: 63016})  # outside WhatsApp's 24-hour window
    agent.post(f"/admin/inbox/{handoff_id}/reply", data=reply_form(agent, handoff_id, "Later"))
    work()
    with session_scope(engine) as session:
        failed = session.execute(select(HandoffReply).order_by(HandoffReply.id.desc())).scalar()
        assert (failed.status, failed.error_code) == ("failed", 63016)
    page = agent.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    assert "error 63016" in page and "Send again" in page


def test_a_reply_saved_while_redis_is_down_can_be_sent_again(
    gw_settings, agent, open_handoff, work, fake, engine, redis_conn
):
    handoff_id = open_handoff()
    # The same database, a Redis that is not there (port 1 refuses connections).
    down = create_app(gw_settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    down.testing = True
    client = down.test_client()
    sign_in(client, "priya")
    response = client.post(
        f"/admin/inbox/{handoff_id}/reply", data=reply_form(client, handoff_id, "Kept safe")
    )
    assert response.status_code == 302
    assert "could not be queued" in client.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    with session_scope(engine) as session:
        reply = session.execute(select(HandoffReply)).scalar_one()
        assert reply.status == "queued"
    work()
    assert _whatsapp(fake) == [], "nothing was queued"
    page = agent.get(f"/admin/inbox/{handoff_id}").get_data(as_text=True)
    resend = agent.post(
        f"/admin/inbox/{handoff_id}/replies/{reply.id}/resend",
        data={"csrf_token": csrf_from(page)},
    )
    assert resend.status_code == 302
    work()
    assert [m["body"] for m in _whatsapp(fake)] == ["Priya (KESCO helpdesk): Kept safe"]
