"""End to end through real Rasa: signature, dedupe, order, STOP/START, a Twilio 500, statuses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.gateway import texts
from bot.store import InboundMessage, OptOut, OutboundMessage, session_scope
from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]


def _inbound(stack, sid):
    with session_scope(stack.engine) as session:
        return session.execute(
            select(InboundMessage).where(InboundMessage.message_sid == sid)
        ).scalar_one_or_none()


def _outbound_for(stack, inbound_id):
    with session_scope(stack.engine) as session:
        return list(
            session.execute(
                select(OutboundMessage)
                .where(OutboundMessage.idempotency_key.like(f"reply:{inbound_id}:%"))
                .order_by(OutboundMessage.id)
            ).scalars()
        )


def _answered(stack, sid):
    row = _inbound(stack, sid)
    return row if row is not None and row.processed_at is not None else None


def test_signed_hi_gets_a_real_reply(stack):
    sender = "+919700000001"
    response = stack.post_message("hi", sender, sid="SM" + "e1" * 16)
    assert response.status_code == 200
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    wait_for(lambda: stack.sent(f"whatsapp:{sender}"), timeout=120)
    replies = stack.sent(f"whatsapp:{sender}")
    assert any(m["body"].strip() or m["media_urls"] for m in replies)


def test_unsigned_message_is_rejected_and_never_answered(stack):
    sender = "+919700000002"
    assert stack.post_message("hi", sender, signature="forged").status_code == 403
    assert stack.post_message("hi", sender, signature="").status_code == 403
    signed_elsewhere = stack.post_message("hi", sender, sid="SM" + "e2" * 16)
    assert signed_elsewhere.status_code == 200  # control: the signed one goes through
    wait_for(lambda: _answered(stack, "SM" + "e2" * 16), timeout=120)
    with session_scope(stack.engine) as session:
        rows = session.execute(
            select(InboundMessage).where(InboundMessage.from_number == sender)
        ).all()
    assert len(rows) == 1


def test_twilio_retries_of_one_message_are_answered_once(stack):
    sender, sid = "+919700000003", "SM" + "e3" * 16
    for _ in range(3):
        assert stack.post_message("mera bill kitna hai", sender, sid=sid).status_code == 200
    row = wait_for(lambda: _answered(stack, sid), timeout=120)
    outbound = _outbound_for(stack, row.id)
    sent = stack.sent(f"whatsapp:{sender}")
    assert outbound, "the bot answered"
    assert len(sent) == len(outbound)
    assert sorted(m["sid"] for m in sent) == sorted(o.twilio_sid for o in outbound)


def test_one_senders_messages_are_answered_in_order(stack):
    sender = "+919700000004"
    sids = [f"SM{n:02d}" + "e4" * 15 for n in range(4)]
    for sid, text in zip(
        sids, ["hi", "mera bill kitna hai", "naya account number", "thanks"], strict=True
    ):
        assert stack.post_message(text, sender, sid=sid).status_code == 200
    rows = [wait_for(lambda s=sid: _answered(stack, s), timeout=180) for sid in sids]
    order = {o.twilio_sid: rows.index(r) for r in rows for o in _outbound_for(stack, r.id)}
    sent = [m for m in stack.sent(f"whatsapp:{sender}") if m["sid"] in order]
    positions = [order[m["sid"]] for m in sent]
    assert positions == sorted(positions), "replies went out in the order the messages came in"
    assert set(positions) <= {0, 1, 2, 3}


def test_stop_opts_out_and_start_opts_back_in(stack):
    sender = "+919700000005"
    stack.post_message("STOP", sender, channel="sms", sid="SM" + "e5" * 16)
    wait_for(lambda: stack.sent(sender), timeout=60)
    assert [m["body"] for m in stack.sent(sender)] == [texts.text("opt_out_confirmation", "en")]
    with session_scope(stack.engine) as session:
        assert session.get(OptOut, (sender, "sms")) is not None
    stack.post_message("START", sender, channel="sms", sid="SM" + "e6" * 16)
    wait_for(lambda: len(stack.sent(sender)) == 2, timeout=60)
    assert stack.sent(sender)[1]["body"] == texts.text("opt_in_confirmation", "en")
    with session_scope(stack.engine) as session:
        assert session.get(OptOut, (sender, "sms")) is None


def test_twilio_500_then_200_is_retried(stack):
    sender = "+919700000006"
    before = stack.fake_config()["errors_injected"]
    stack.fake_config(fail_next=[500])
    stack.post_message("STOP", sender, sid="SM" + "e7" * 16)
    wait_for(lambda: stack.sent(f"whatsapp:{sender}"), timeout=120)
    assert stack.fake_config()["errors_injected"] == before + 1
    assert [m["body"] for m in stack.sent(f"whatsapp:{sender}")] == [
        texts.text("opt_out_confirmation", "en")
    ]


def test_status_callbacks_reach_delivered(stack):
    sender = "+919700000007"
    sid = "SM" + "e8" * 16
    stack.post_message("HELP", sender, sid=sid)
    row = wait_for(lambda: _answered(stack, sid), timeout=60)

    def delivered():
        outbound = _outbound_for(stack, row.id)
        return outbound and all(o.status == "delivered" for o in outbound)

    wait_for(delivered, timeout=30)
