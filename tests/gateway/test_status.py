"""``POST /twilio/status``: signed, idempotent, never backwards, early callbacks kept."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import delivery_status as status_mod
from bot import twilio_client
from bot.store import OutboundMessage, session_scope
from tests.gateway_stack import inbound_form, wait_for

SID = "SM" + "1" * 32


def _row(engine, sid=SID, status="queued"):
    with session_scope(engine) as session:
        session.add(
            OutboundMessage(
                idempotency_key=f"k:{sid}",
                channel="sms",
                to_number="+919876543210",
                body="x",
                twilio_sid=sid,
                status=status,
            )
        )


def _status(engine, sid=SID):
    with session_scope(engine) as session:
        row = session.execute(
            select(OutboundMessage).where(OutboundMessage.twilio_sid == sid)
        ).scalar_one()
        return row.status, row.error_code


def callback(post_signed, value, sid=SID, error_code=None):
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": value,
        "SmsStatus": value,
        "AccountSid": "AC00000000000000000000000000000000",
        "To": "+919876543210",
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        form["ErrorCode"] = str(error_code)
    return post_signed("/twilio/status", form)


@pytest.mark.parametrize("value", ["queued", "sent", "delivered", "undelivered", "failed", "read"])
def test_each_status_is_recorded(value, post_signed, engine):
    _row(engine, status="pending")
    assert callback(post_signed, value).status_code == 204
    assert _status(engine)[0] == value


def test_status_never_moves_backwards(post_signed, engine):
    _row(engine)
    for value in ("delivered", "sent", "queued"):
        callback(post_signed, value)
    assert _status(engine) == ("delivered", None)


def test_failed_is_terminal_and_keeps_its_error_code(post_signed, engine):
    _row(engine)
    callback(post_signed, "failed", error_code=30008)
    callback(post_signed, "delivered")
    callback(post_signed, "read")
    assert _status(engine) == ("failed", 30008)


def test_undelivered_after_sent_records_the_error(post_signed, engine):
    _row(engine, status="sent")
    callback(post_signed, "undelivered", error_code=30003)
    assert _status(engine) == ("undelivered", 30003)


def test_repeated_callback_is_idempotent(post_signed, engine):
    _row(engine)
    for _ in range(3):
        assert callback(post_signed, "delivered").status_code == 204
    assert _status(engine) == ("delivered", None)


def test_unsigned_callback_is_403(gw_client, engine):
    _row(engine)
    response = gw_client.post(
        "/twilio/status",
        data={"MessageSid": SID, "MessageStatus": "failed"},
        headers={"X-Twilio-Signature": "nope"},
    )
    assert response.status_code == 403
    assert _status(engine)[0] == "queued"


def test_callback_without_status_is_400(post_signed):
    assert post_signed("/twilio/status", {"MessageSid": SID}).status_code == 400


def test_callback_before_the_sid_is_stored_is_applied_later(post_signed, engine, redis_conn):
    callback(post_signed, "sent", sid="SM" + "2" * 32)
    callback(post_signed, "delivered", sid="SM" + "2" * 32)
    _row(engine, sid="SM" + "2" * 32, status="queued")
    status_mod.apply_early(redis_conn, engine, "SM" + "2" * 32)
    assert _status(engine, "SM" + "2" * 32)[0] == "delivered"
    assert not redis_conn.exists(status_mod.EARLY_KEY.format(sid="SM" + "2" * 32))


def test_fake_twilio_callbacks_reach_delivered(live_app, gw_settings, engine, fake):
    fake.configure(callback_delay=0.01)
    outcome = twilio_client.send(
        gw_settings,
        channel="whatsapp",
        to="+919876543210",
        body="hello",
        idempotency_key="status:e2e",
        engine=engine,
    )
    wait_for(lambda: _status(engine, outcome.twilio_sid)[0] == "delivered")


def test_undeliverable_number_ends_undelivered_with_error_code(live_app, gw_settings, engine, fake):
    fake.configure(undeliverable=["+919800000009"])
    outcome = twilio_client.send(
        gw_settings,
        channel="sms",
        to="+919800000009",
        body="hello",
        idempotency_key="status:undelivered",
        engine=engine,
    )
    wait_for(lambda: _status(engine, outcome.twilio_sid)[0] == "undelivered")
    assert _status(engine, outcome.twilio_sid)[1] == 30003


def test_whole_path_reply_status_is_tracked(live_app, post_signed, engine, work, fake, stub_rasa):
    post_signed("/twilio/messages", inbound_form("hello"))
    work()
    sid = fake.sent()[0]["sid"]
    wait_for(lambda: _status(engine, sid)[0] == "delivered")


def test_early_callbacks_are_kept_until_a_row_holds_the_sid(post_signed, engine, redis_conn):
    sid = "SM" + "3" * 32
    callback(post_signed, "sent", sid=sid)
    status_mod.apply_early(redis_conn, engine, sid)
    assert redis_conn.exists(status_mod.EARLY_KEY.format(sid=sid))
    _row(engine, sid=sid, status="queued")
    callback(post_signed, "delivered", sid=sid)
    assert _status(engine, sid)[0] == "delivered"
