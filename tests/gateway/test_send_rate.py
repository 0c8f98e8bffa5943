"""Every send through ``bot.twilio_client`` takes a token from its sender's rate limiter."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bot import ratelimit, twilio_client
from bot.settings import load as load_settings
from bot.store import OutboundMessage, session_scope


def _send(cfg, engine, n, **extra):
    return twilio_client.send(
        cfg,
        channel="whatsapp",
        to=f"+9198765446{n:02d}",
        body="namaste",
        idempotency_key=f"rate:{n}",
        engine=engine,
        **extra,
    )


def test_sends_keep_to_the_senders_rate(gw_settings, engine, fake):
    cfg = gw_settings.with_overrides(whatsapp_mps=10.0)
    started = time.monotonic()
    for n in range(15):
        assert _send(cfg, engine, n).result == "sent"
    # Ten from the full bucket, then five more at ten a second.
    assert time.monotonic() - started >= 0.45
    assert len(fake.sent()) == 15


def test_off_sends_at_once(gw_settings, engine, fake, redis_conn):
    cfg = gw_settings.with_overrides(whatsapp_mps=0.0)
    started = time.monotonic()
    for n in range(15):
        _send(cfg, engine, n)
    assert time.monotonic() - started < 3
    assert redis_conn.keys("bijli:ratelimit:*") == []


def test_no_token_in_time_leaves_the_message_for_a_retry(gw_settings, engine, fake, monkeypatch):
    monkeypatch.setattr(twilio_client, "RATE_LIMIT_MAX_WAIT", 0.05)
    cfg = gw_settings.with_overrides(whatsapp_mps=1.0)
    assert _send(cfg, engine, 1, campaign_id=None).result == "sent"
    with pytest.raises(twilio_client.SendRateLimited) as raised:
        _send(cfg, engine, 2)
    assert 0 < raised.value.retry_after <= 1.0
    assert isinstance(raised.value, twilio_client.TwilioTransientError), "jobs retry it"
    with session_scope(engine) as session:
        row = session.execute(
            select(OutboundMessage).where(OutboundMessage.idempotency_key == "rate:2")
        ).scalar_one()
        assert row.status == "retrying" and row.twilio_sid is None
    time.sleep(raised.value.retry_after)
    assert _send(cfg, engine, 2).result == "sent"
    assert len(fake.sent()) == 2


def test_campaign_sends_use_the_bulk_lane(gw_settings, engine, fake, redis_conn):
    # One token a second: a send that had to wait for the next token would take about a
    # second, far above what a send costs even on a loaded machine.
    cfg = gw_settings.with_overrides(whatsapp_mps=1.0)
    limiter = twilio_client.limiter_for(cfg, redis_conn, "whatsapp")
    while limiter.try_acquire(ratelimit.BULK) == 0.0:
        pass
    # A reply is waiting for the next token: a campaign message must not take it.
    assert limiter.try_acquire(ratelimit.REPLY, waiter="someone") > 0
    time.sleep(1.05)
    assert limiter.try_acquire(ratelimit.BULK) > 0
    started = time.monotonic()
    assert _send(cfg, engine, 1).result == "sent", "a reply takes the held token at once"
    assert time.monotonic() - started < 0.8


def test_the_rates_come_from_the_environment():
    cfg = load_settings({"BIJLI_WHATSAPP_MPS": "25", "BIJLI_SMS_MPS": "off"})
    assert (cfg.mps_for("whatsapp"), cfg.mps_for("sms")) == (25.0, 0.0)
    defaults = load_settings({})
    assert (defaults.whatsapp_mps, defaults.sms_mps) == (10.0, 100.0)
    from bot.settings import InvalidSetting

    with pytest.raises(InvalidSetting, match="BIJLI_SMS_MPS"):
        load_settings({"BIJLI_SMS_MPS": "fast"})
    with pytest.raises(InvalidSetting):
        load_settings({"BIJLI_WHATSAPP_MPS": "-3"})
