"""A 401 or 403 from Twilio pauses sending: one alert, /healthz unhealthy, messages wait, resume."""

from __future__ import annotations

import logging

import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from bot import settings as settings_mod
from bot import twilio_client
from bot.gateway import inbox
from bot.queues import INBOUND
from bot.store import DeadLetter, InboundMessage, OutboundMessage, session_scope
from tests.gateway_stack import inbound_form

A = "+919876533301"
B = "+919876533302"


def _unanswered(engine):
    with session_scope(engine) as session:
        rows = session.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars()
        return [r.body for r in rows if r.processed_at is None]


def _alerts(caplog):
    return [r for r in caplog.records if r.getMessage().startswith("event=twilio_credentials_")]


@pytest.mark.parametrize(
    ("breakage", "http", "code"),
    [
        ({"auth_token": "rotated-in-the-console"}, 401, 20003),
        ({"account_status": "suspended"}, 403, 20005),
    ],
)
def test_refused_credentials_pause_sending_until_twilio_accepts_them_again(
    breakage, http, code, post_signed, gw_client, engine, redis_conn, work, fake, stub_rasa, caplog
):
    fake.configure(**breakage)
    caplog.set_level(logging.INFO)
    for text, sender in (("a1", A), ("b1", B), ("a2", A)):
        post_signed("/twilio/messages", inbound_form(text, sender=sender))
    work()

    # Nothing was sent, nothing was dropped: every message waits, unanswered.
    assert fake.sent() == []
    assert _unanswered(engine) == ["a1", "b1", "a2"]
    # Only the first send reached Twilio; the rest saw the pause and did not try.
    assert fake.state.requests_seen == 1
    # Rasa was asked only for the message whose send found out.
    assert stub_rasa.messages() == ["a1"]
    # One clear alert.
    errors = [r for r in _alerts(caplog) if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert f"http={http} code={code}" in errors[0].getMessage()
    health = gw_client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["twilio"].startswith("sending paused since")
    assert f"HTTP {http} (code {code})" in health.get_json()["twilio"]
    # The jobs did not burn their retries: none failed, none is a dead letter.
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 0
    with session_scope(engine) as session:
        assert session.execute(select(DeadLetter)).first() is None
        (out,) = session.execute(select(OutboundMessage)).scalars()
        assert (out.status, out.error_code, out.twilio_sid) == ("retrying", code, None)

    # Still refused: the sweep's probe keeps the pause, and enqueues nothing.
    assert inbox.sweep() == "paused"
    work()
    assert fake.sent() == []

    # The operator fixes the account; the next sweep's probe sees it and lets them all go,
    # young as they are: their jobs have finished, none can be running.
    fake.configure(auth_token=settings_mod.DEV_AUTH_TOKEN, account_status="active")
    assert inbox.sweep() == "enqueued:3"
    work()
    assert [m["body"] for m in fake.sent(f"whatsapp:{A}")] == ["echo: a1", "echo: a2"]
    assert [m["body"] for m in fake.sent(f"whatsapp:{B}")] == ["echo: b1"]
    assert _unanswered(engine) == []
    assert stub_rasa.messages().count("a1") == 1, "the planned reply was kept, not asked again"
    assert gw_client.get("/healthz").status_code == 200
    assert [r.getMessage().split()[0] for r in _alerts(caplog)] == [
        "event=twilio_credentials_rejected",
        "event=twilio_credentials_still_rejected",
        "event=twilio_credentials_accepted",
    ]


def test_a_message_arriving_while_paused_waits_in_order_behind_the_others(
    post_signed, engine, redis_conn, work, fake, stub_rasa
):
    fake.configure(auth_token="rotated")
    post_signed("/twilio/messages", inbound_form("first", sender=A))
    work()
    post_signed("/twilio/messages", inbound_form("second", sender=A))
    work()
    assert fake.sent() == []
    fake.configure(auth_token=settings_mod.DEV_AUTH_TOKEN)
    inbox.sweep()
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: first", "echo: second"]


def test_send_refuses_at_once_while_paused(gw_settings, engine, redis_conn, fake):
    twilio_client.pause_sending(gw_settings, redis_conn, 401, 20003)
    with pytest.raises(twilio_client.TwilioSendingPaused):
        twilio_client.send(
            gw_settings,
            channel="sms",
            to=A,
            body="hello",
            idempotency_key="pause:1",
            engine=engine,
        )
    assert fake.state.requests_seen == 0
    assert twilio_client.probe_credentials(gw_settings, redis_conn)
    assert twilio_client.pause_state(gw_settings, redis_conn) is None
    outcome = twilio_client.send(
        gw_settings, channel="sms", to=A, body="hello", idempotency_key="pause:1", engine=engine
    )
    assert outcome.result == "sent" and len(fake.sent()) == 1


def test_the_pause_belongs_to_the_account(gw_settings, redis_conn):
    other = gw_settings.with_overrides(twilio_account_sid="AC" + "1" * 32)
    twilio_client.pause_sending(other, redis_conn, 401, 20003)
    assert twilio_client.pause_state(other, redis_conn) is not None
    assert twilio_client.pause_state(gw_settings, redis_conn) is None
