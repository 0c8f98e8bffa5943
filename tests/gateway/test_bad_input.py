"""Bad input never gives a 500 nor crashes the worker; each kind gets a sensible answer."""

from __future__ import annotations

import pytest
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from bot import twilio_client
from bot.gateway import inbound as jobs
from bot.gateway import texts
from bot.queues import INBOUND
from bot.store import InboundMessage, OptOut, OutboundMessage, session_scope
from tests.gateway_stack import inbound_form

EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


@pytest.fixture(autouse=True)
def _no_failed_jobs(redis_conn):
    yield
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 0, "a job crashed"


def sent_bodies(fake):
    return [m["body"] for m in fake.sent()]


def test_empty_body_gets_a_prompt_not_rasa(post_signed, engine, work, fake, stub_rasa):
    assert post_signed("/twilio/messages", inbound_form("")).data == EMPTY
    work()
    assert stub_rasa.requests == []
    assert sent_bodies(fake) == [texts.bilingual("empty_message")]


def test_whitespace_only_body_counts_as_empty(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("   \n\t "))
    work()
    assert sent_bodies(fake) == [texts.bilingual("empty_message")]


def test_only_emoji_goes_to_rasa_unchanged(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("🙏🙏⚡"))
    work()
    assert stub_rasa.messages() == ["🙏🙏⚡"]
    assert sent_bodies(fake) == ["echo: 🙏🙏⚡"]


def test_very_long_message_is_cut_at_a_word_before_rasa(post_signed, engine, work, fake, stub_rasa):
    body = ("mera bill bahut zyada aaya hai " * 80).strip()
    assert len(body) > 1600
    assert post_signed("/twilio/messages", inbound_form(body)).status_code == 200
    work()
    (sent_to_rasa,) = stub_rasa.messages()
    assert len(sent_to_rasa) <= jobs.MAX_INBOUND_CHARS
    assert sent_to_rasa.endswith("…")
    assert body.startswith(sent_to_rasa[:-1].rstrip())
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().body == body


def test_long_reply_is_split_into_messages_within_twilios_limit(
    post_signed, engine, work, fake, stub_rasa
):
    post_signed("/twilio/messages", inbound_form("long answer please", channel="sms"))
    work()
    bodies = sent_bodies(fake)
    assert 2 <= len(bodies) <= twilio_client.MAX_PARTS
    assert all(0 < len(b) <= twilio_client.MAX_BODY for b in bodies)
    assert bodies[0].startswith("बिजली बिल की जानकारी।")


def test_media_without_text_gets_a_please_type_answer(post_signed, engine, work, fake, stub_rasa):
    form = inbound_form(
        "", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg", MediaContentType0="image/jpeg"
    )
    assert post_signed("/twilio/messages", form).data == EMPTY
    work()
    assert stub_rasa.requests == []
    assert sent_bodies(fake) == [texts.bilingual("media_only")]
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().num_media == 1


def test_media_with_text_sends_the_text(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("meter photo", NumMedia="1"))
    work()
    assert stub_rasa.messages() == ["meter photo"]


def test_unknown_sender_is_answered_as_a_consumer(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("hi", sender="+916000000001"))
    work()
    assert stub_rasa.requests[0]["role"] == "consumer"
    assert sent_bodies(fake) == ["echo: hi"]


def _post_from(gw_client, gw_settings, sender, body="hello"):
    from tests.gateway_stack import sign

    form = inbound_form(body)
    form["From"] = sender
    return gw_client.post(
        "/twilio/messages",
        data=form,
        headers={"X-Twilio-Signature": sign(gw_settings, "/twilio/messages", form)},
    )


@pytest.mark.parametrize(
    "sender",
    ["+14155550100", "whatsapp:+447700900123", "+911234567890", "abc", "whatsapp:", "+91 98765"],
)
def test_non_indian_or_malformed_sender_gets_a_clear_refusal_and_is_stored_answered(
    sender, gw_client, gw_settings, redis_conn, engine
):
    response = _post_from(gw_client, gw_settings, sender)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    if sender in ("whatsapp:",):
        assert response.data == EMPTY
    else:
        assert "<Message>" in text and "+91" in text
    assert Queue(INBOUND, connection=redis_conn).count == 0
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        # Stored like every message, and answered already: nothing will queue it.
        assert row.processed_at is not None and row.body == "hello"


def test_a_foreign_number_is_refused_once_a_day_not_once_a_message(
    gw_client, gw_settings, redis_conn, engine
):
    first = _post_from(gw_client, gw_settings, "+14155550100", "hi")
    again = [_post_from(gw_client, gw_settings, "+14155550100", f"hi {n}") for n in range(3)]
    other = _post_from(gw_client, gw_settings, "whatsapp:+14155550100", "hi")
    assert "<Message>" in first.get_data(as_text=True)
    assert [r.data for r in again] == [EMPTY] * 3, "each refusal costs an international SMS"
    # The same number on WhatsApp is another conversation, and costs nothing extra to answer.
    assert "<Message>" in other.get_data(as_text=True)
    ttl = redis_conn.ttl("bijli:inbound:refused:sms:+14155550100")
    assert 23 * 3600 < ttl <= 24 * 3600
    with session_scope(engine) as session:
        assert len(session.execute(select(InboundMessage)).all()) == 5


def test_twilios_retry_of_a_foreign_message_is_not_refused_twice(
    gw_client, gw_settings, redis_conn, engine
):
    from tests.gateway_stack import sign

    form = inbound_form("hello")
    form["From"] = "+447700900123"
    headers = {"X-Twilio-Signature": sign(gw_settings, "/twilio/messages", form)}
    first = gw_client.post("/twilio/messages", data=form, headers=headers)
    redis_conn.flushdb()  # even when Redis forgot the refusal, the stored row remembers
    retry = gw_client.post("/twilio/messages", data=form, headers=headers)
    assert "<Message>" in first.get_data(as_text=True)
    assert retry.data == EMPTY


def test_a_foreign_number_gets_no_refusal_while_redis_is_down(gw_settings, engine):
    from bot import create_app
    from bot.dev.embedded_redis import free_port

    cfg = gw_settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = _post_from(create_app(cfg).test_client(), cfg, "+14155550100")
    assert response.status_code == 200 and response.data == EMPTY
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().processed_at is not None


def test_missing_from_is_empty_twiml(post_signed, redis_conn):
    form = inbound_form("hello")
    del form["From"]
    assert post_signed("/twilio/messages", form).data == EMPTY


def test_missing_message_sid_is_400(post_signed):
    form = inbound_form("hello")
    del form["MessageSid"]
    assert post_signed("/twilio/messages", form).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert('x')</script><b>bill</b>",
        "'; DROP TABLE opt_outs; --",
        "1 OR 1=1; SELECT * FROM consumers",
        "null\x00byte",
        "&lt;&amp;&gt;]]>",
    ],
)
def test_html_and_sql_looking_text_is_just_text(body, post_signed, engine, work, fake, stub_rasa):
    assert post_signed("/twilio/messages", inbound_form(body)).data == EMPTY
    work()
    clean = body.replace("\x00", "")
    assert stub_rasa.messages() == [clean]
    assert sent_bodies(fake) == [f"echo: {clean}"]
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().body == clean
        assert session.execute(select(OptOut)).first() is None  # the table is still there
        assert session.execute(select(OutboundMessage)).scalar_one().body == f"echo: {clean}"


def test_garbage_num_media_is_zero(post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("", NumMedia="lots"))
    work()
    assert sent_bodies(fake) == [texts.bilingual("empty_message")]


def test_vanished_row_is_tolerated(gw_settings, engine, redis_conn, work):
    from bot.gateway.ordering import enqueue_inbound

    enqueue_inbound(redis_conn, 424242, "sms", "+919876543210")
    work()
    assert jobs.handle_inbound(424242) == "vanished"
