"""A campaign's WhatsApp message nobody can get there is queued for an SMS fallback, once.

The status callbacks drive it: the fake Twilio ends the message ``failed`` with 63003 (not on
WhatsApp) or ``undelivered``, the gateway records the status, and the notifier's job is queued
by its dotted name.
"""

from __future__ import annotations

import pytest
import redis
from rq import Queue
from sqlalchemy import select

from bot import delivery_status, twilio_client
from bot.store import Campaign, OutboundMessage, session_scope
from tests.gateway_stack import wait_for

TO = "+919876544701"


def _campaign(engine) -> int:
    with session_scope(engine) as session:
        campaign = Campaign(name="naya khata", kind="new-account-number", status="running")
        session.add(campaign)
        session.flush()
        return int(campaign.id)


def _row(engine, key):
    with session_scope(engine) as session:
        return session.execute(
            select(OutboundMessage).where(OutboundMessage.idempotency_key == key)
        ).scalar_one()


def _fallback_jobs(redis_conn):
    queue = Queue(delivery_status.FALLBACK_QUEUE, connection=redis_conn)
    return [queue.fetch_job(job_id) for job_id in queue.job_ids]


def _send(cfg, engine, key, channel="whatsapp", campaign_id=None):
    return twilio_client.send(
        cfg,
        channel=channel,
        to=TO,
        body="naya khata 2300000001",
        idempotency_key=key,
        campaign_id=campaign_id,
        engine=engine,
    )


@pytest.mark.parametrize(
    ("configure", "final", "code"),
    [
        ({"whatsapp_failures": {TO: 63003}}, "failed", 63003),
        ({"whatsapp_failures": {TO: 63016}}, "failed", 63016),
        ({"undeliverable": [TO]}, "undelivered", 30003),
    ],
    ids=["not-on-whatsapp", "outside-window", "undelivered"],
)
def test_a_campaign_whatsapp_failure_queues_one_sms_fallback(
    live_app, gw_settings, engine, fake, redis_conn, configure, final, code
):
    fake.configure(**configure)
    campaign_id = _campaign(engine)
    key = f"campaign:{campaign_id}:2300000001"
    assert _send(gw_settings, engine, key, campaign_id=campaign_id).result == "sent"
    wait_for(lambda: _row(engine, key).status == final)
    assert _row(engine, key).error_code == code, "the funnel shows why"
    (job,) = wait_for(lambda: _fallback_jobs(redis_conn))
    assert job.func_name == "notifier.jobs.send_sms_fallback"
    assert job.args == (campaign_id, "2300000001")
    # Twilio may call back again (or the early path apply it): still one job.
    sid = _row(engine, key).twilio_sid
    assert not delivery_status.enqueue_sms_fallback(redis_conn, engine, sid)
    assert len(_fallback_jobs(redis_conn)) == 1


@pytest.mark.parametrize(
    ("channel", "campaign", "configure", "final"),
    [
        ("whatsapp", False, {"whatsapp_failures": {TO: 63003}}, "failed"),  # a reply, not a push
        ("sms", True, {"undeliverable": [TO]}, "undelivered"),  # already SMS
        ("whatsapp", True, {}, "delivered"),
    ],
    ids=["reply", "sms", "delivered"],
)
def test_no_fallback_where_none_is_due(
    live_app, gw_settings, engine, fake, redis_conn, channel, campaign, configure, final
):
    fake.configure(**configure)
    campaign_id = _campaign(engine) if campaign else None
    key = "push:no-fallback"
    assert _send(gw_settings, engine, key, channel, campaign_id).result == "sent"
    # A delivered is parked until a flush writes it (the worker's job, run here).
    wait_for(
        lambda: delivery_status.flush(redis_conn, engine) >= 0 and _row(engine, key).status == final
    )
    assert _fallback_jobs(redis_conn) == []


def test_other_whatsapp_errors_and_the_fallback_itself_do_not_fall_back():
    due = delivery_status.needs_sms_fallback
    assert due("whatsapp", "failed", 63003, "campaign:1:2300000001", 1)
    assert not due("whatsapp", "failed", 63018, "campaign:1:2300000001", 1)  # rate limited
    assert not due("whatsapp", "failed", None, "campaign:1:2300000001", 1)
    assert not due("sms", "undelivered", 30003, "campaign:1:2300000001:sms", 1)
    assert not due("whatsapp", "undelivered", 30003, "campaign:1:2300000001:sms", 1)
    assert not due("whatsapp", "delivered", None, "campaign:1:2300000001", 1)


class _GoneAfterTheMark:
    """A Redis that takes a fallback's mark, then goes away before the job is queued."""

    def __init__(self, real) -> None:
        self.real = real

    def set(self, *args, **kwargs):
        return self.real.set(*args, **kwargs)

    def pipeline(self, *args, **kwargs):
        raise redis.ConnectionError("Connection refused")

    def delete(self, *args):
        raise redis.ConnectionError("Connection refused")


def test_a_mark_left_by_redis_failing_before_the_job_lapses_and_the_sweep_queues_it(
    gw_settings, engine, fake, redis_conn, monkeypatch
):
    fake.configure(whatsapp_failures={TO: 63003}, post_callbacks=False)
    campaign_id = _campaign(engine)
    key = f"campaign:{campaign_id}:2300000001"
    assert _send(gw_settings, engine, key, campaign_id=campaign_id).result == "sent"
    sid = _row(engine, key).twilio_sid
    assert delivery_status.record_status(engine, sid, "failed", 63003) == "updated"
    monkeypatch.setattr(delivery_status, "FALLBACK_CLAIM_TTL", 1)
    with pytest.raises(redis.ConnectionError):
        delivery_status.enqueue_sms_fallback(_GoneAfterTheMark(redis_conn), engine, sid)
    mark = delivery_status.FALLBACK_MARK.format(outbound_id=_row(engine, key).id)
    assert redis_conn.exists(mark), "the mark stayed, with no job behind it"
    assert _fallback_jobs(redis_conn) == []
    assert delivery_status.queue_missed_fallbacks(redis_conn, engine) == []
    # The claim lapses in a second here (a minute in production); the next sweep queues it.
    wait_for(lambda: not redis_conn.exists(mark), timeout=5)
    assert delivery_status.queue_missed_fallbacks(redis_conn, engine) == [_row(engine, key).id]
    (job,) = _fallback_jobs(redis_conn)
    assert job.args == (campaign_id, "2300000001")
    assert redis_conn.ttl(mark) > delivery_status.FALLBACK_MARK_TTL - 60, "held for its full life"
