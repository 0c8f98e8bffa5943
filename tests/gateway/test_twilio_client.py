"""``bot.twilio_client``: idempotent sends, body splitting."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import twilio_client
from bot.store import OutboundMessage, session_scope


def test_same_idempotency_key_sends_once(gw_settings, engine, fake):
    first = twilio_client.send(
        gw_settings,
        channel="sms",
        to="+919876543210",
        body="hello",
        idempotency_key="test:1",
        engine=engine,
    )
    second = twilio_client.send(
        gw_settings,
        channel="sms",
        to="+919876543210",
        body="hello",
        idempotency_key="test:1",
        engine=engine,
    )
    assert first.result == "sent" and second.result == "duplicate"
    assert first.twilio_sid == second.twilio_sid
    assert len(fake.sent()) == 1
    with session_scope(engine) as session:
        row = session.execute(select(OutboundMessage)).scalar_one()
        assert (row.channel, row.to_number, row.twilio_sid) == (
            "sms",
            "+919876543210",
            first.twilio_sid,
        )


def test_transient_error_raises_and_a_retry_sends(gw_settings, engine, fake):
    fake.configure(fail_next=[503])
    with pytest.raises(twilio_client.TwilioTransientError):
        twilio_client.send(
            gw_settings,
            channel="sms",
            to="+919876543210",
            body="hello",
            idempotency_key="test:2",
            engine=engine,
        )
    outcome = twilio_client.send(
        gw_settings,
        channel="sms",
        to="+919876543210",
        body="hello",
        idempotency_key="test:2",
        engine=engine,
    )
    assert outcome.result == "sent"
    assert len(fake.sent()) == 1


def test_unreachable_twilio_is_transient(gw_settings, engine):
    from bot.dev.embedded_redis import free_port

    cfg = gw_settings.with_overrides(twilio_api_base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(twilio_client.TwilioTransientError):
        twilio_client.send(
            cfg,
            channel="sms",
            to="+919876543210",
            body="x",
            idempotency_key="test:3",
            engine=engine,
        )


def test_body_over_the_limit_is_refused_before_twilio(gw_settings, engine):
    with pytest.raises(ValueError):
        twilio_client.send(
            gw_settings,
            channel="sms",
            to="+919876543210",
            body="x" * 1601,
            idempotency_key="test:4",
            engine=engine,
        )


def test_split_body_keeps_short_text_whole():
    assert twilio_client.split_body("  hello  ") == ["hello"]


def test_split_body_breaks_at_sentences_and_caps_parts():
    text = ". ".join(f"Sentence number {i} about the bill" for i in range(400))
    parts = twilio_client.split_body(text, limit=200, max_parts=3)
    assert len(parts) == 3
    assert all(len(p) <= 200 for p in parts)
    assert parts[0].endswith(".")
    assert parts[-1].endswith("…")


def test_split_body_without_spaces_still_fits():
    parts = twilio_client.split_body("x" * 450, limit=200, max_parts=3)
    assert [len(p) for p in parts] == [200, 200, 50]


def test_truncate_cuts_at_a_word():
    assert twilio_client.truncate("mera bill kitna hai", 12) == "mera bill…"
    assert twilio_client.truncate("short", 12) == "short"


def test_claiming_and_recording_a_sid_take_no_orm_session(engine, monkeypatch):
    """The send's hot statements run in Core: an ORM session costs ~4× the statements."""
    from sqlalchemy.orm import Session

    def orm(*_: object, **__: object) -> None:
        raise AssertionError("an ORM session executed a statement")

    monkeypatch.setattr(Session, "execute", orm)
    claim = twilio_client.claim_message(
        engine,
        "test:core",
        channel="sms",
        to="+919700001792",
        body="hi",
        media_url=None,
        campaign_id=None,
        respect_opt_out=True,
    )
    assert isinstance(claim, twilio_client.Claim) and not claim.may_be_accepted
    twilio_client._record_sid(engine, claim.outbound_id, "SM" + "2" * 32, "queued")
    again = twilio_client.claim_message(
        engine,
        "test:core",
        channel="sms",
        to="+919700001792",
        body="hi",
        media_url=None,
        campaign_id=None,
        respect_opt_out=False,
    )
    assert again == twilio_client.SendOutcome("duplicate", claim.outbound_id, "SM" + "2" * 32)
