"""A send that got no answer may have been accepted: the retry looks before it sends again."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from bot import delivery_status, twilio_client
from bot.clock import utcnow
from bot.store import InboundMessage, OutboundMessage, session_scope
from tests.gateway_stack import inbound_form, sign, wait_for

TO = "+919876544401"


def _send(cfg, engine, key="uncertain:1", body="aapka bill 450 rupaye hai"):
    return twilio_client.send(
        cfg, channel="whatsapp", to=TO, body=body, idempotency_key=key, engine=engine
    )


def _row(engine, key="uncertain:1"):
    with session_scope(engine) as session:
        return session.execute(
            select(OutboundMessage).where(OutboundMessage.idempotency_key == key)
        ).scalar_one()


def _flushed_row(redis_conn, engine, key="uncertain:1"):
    delivery_status.flush(redis_conn, engine)
    return _row(engine, key)


def test_accepted_then_dropped_is_found_by_its_status_callback(
    live_app, gw_settings, engine, fake, redis_conn
):
    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError, match="unreachable"):
        _send(gw_settings, engine)
    assert _row(engine).status == "unconfirmed"
    # Twilio sends the message and calls back with the key in the URL: the row learns its sid
    # when the parked callbacks are written (the worker's flush job, run here).
    (accepted,) = fake.sent()
    wait_for(lambda: _flushed_row(redis_conn, engine).twilio_sid == accepted["sid"])
    outcome = _send(gw_settings, engine)
    assert (outcome.result, outcome.twilio_sid) == ("duplicate", accepted["sid"])
    assert len(fake.sent(f"whatsapp:{TO}")) == 1, "no duplicate reached the phone"
    assert fake.state.lists_seen == 0, "the callback answered; Twilio's list was not needed"
    wait_for(lambda: _flushed_row(redis_conn, engine).status == "delivered")


def test_accepted_then_dropped_without_callbacks_is_found_in_twilios_list(
    gw_settings, engine, fake
):
    # No app listens at PUBLIC_BASE_URL here: every status callback is lost.
    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _send(gw_settings, engine)
    (accepted,) = fake.sent()
    outcome = _send(gw_settings, engine)
    assert (outcome.result, outcome.twilio_sid) == ("duplicate", accepted["sid"])
    assert len(fake.sent()) == 1
    assert fake.state.lists_seen == 1
    row = _row(engine)
    assert (row.twilio_sid, row.attempts) == (accepted["sid"], 2)


def test_dropped_before_twilio_accepted_is_sent_again_once(gw_settings, engine, fake):
    fake.configure(drop_before_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _send(gw_settings, engine)
    assert fake.sent() == []
    outcome = _send(gw_settings, engine)
    assert outcome.result == "sent"
    assert [m["body"] for m in fake.sent()] == ["aapka bill 450 rupaye hai"]
    assert fake.state.lists_seen == 1


def test_the_search_does_not_take_another_message_with_the_same_text(gw_settings, engine, fake):
    # An identical reply sent before, by another key, is that key's message, not this one's.
    assert _send(gw_settings, engine, key="earlier", body="thik hai").result == "sent"
    fake.configure(drop_before_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _send(gw_settings, engine, key="later", body="thik hai")
    assert _send(gw_settings, engine, key="later", body="thik hai").result == "sent"
    assert [m["body"] for m in fake.sent()] == ["thik hai", "thik hai"]
    assert _row(engine, "earlier").twilio_sid != _row(engine, "later").twilio_sid


def test_a_message_another_attempt_is_sending_is_not_sent_twice(gw_settings, engine, fake):
    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _send(gw_settings, engine)
    # As if an attempt had just taken the message and were still waiting for Twilio.
    with session_scope(engine) as session:
        session.execute(update(OutboundMessage).values(status="in_flight", updated_at=utcnow()))
    with pytest.raises(twilio_client.SendInFlight):
        _send(gw_settings, engine)
    assert fake.state.requests_seen == 1 and fake.state.lists_seen == 0
    # That attempt's worker died: once its lease runs out, the message is looked for.
    stale = utcnow() - dt.timedelta(seconds=twilio_client.SEND_LEASE + 1)
    with session_scope(engine) as session:
        session.execute(update(OutboundMessage).values(updated_at=stale))
    assert _send(gw_settings, engine).result == "duplicate"
    assert len(fake.sent()) == 1


def test_whole_path_a_reply_accepted_then_dropped_reaches_the_phone_once(
    post_signed, engine, work, fake, stub_rasa
):
    fake.configure(drop_after_accept=1)
    post_signed("/twilio/messages", inbound_form("bill kitna hai", sender=TO))
    work()  # the first attempt raises, RQ retries, the retry finds the accepted message
    assert [m["body"] for m in fake.sent(f"whatsapp:{TO}")] == ["echo: bill kitna hai"]
    assert fake.state.requests_seen == 1
    assert stub_rasa.messages() == ["bill kitna hai"]
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().processed_at is not None
        out = session.execute(select(OutboundMessage)).scalar_one()
        assert out.twilio_sid == fake.sent()[0]["sid"]


def test_status_callback_with_a_key_is_signed_over_the_whole_url(
    gw_client, gw_settings, engine, fake, redis_conn
):
    fake.configure(drop_after_accept=1)
    with pytest.raises(twilio_client.TwilioTransientError):
        _send(gw_settings, engine)
    sid = fake.sent()[0]["sid"]
    form = {"MessageSid": sid, "MessageStatus": "sent", "AccountSid": "AC" + "0" * 32}
    good = "/twilio/status?key=uncertain%3A1"
    # Signed for another message's key, then pointed at this one: refused.
    forged = gw_client.post(
        good,
        data=form,
        headers={"X-Twilio-Signature": sign(gw_settings, "/twilio/status?key=x", form)},
    )
    assert forged.status_code == 403
    assert _flushed_row(redis_conn, engine).twilio_sid is None
    signed = gw_client.post(
        good, data=form, headers={"X-Twilio-Signature": sign(gw_settings, good, form)}
    )
    assert signed.status_code == 204
    row = _flushed_row(redis_conn, engine)
    assert (row.twilio_sid, row.status) == (sid, "sent")
