"""A campaign's WhatsApp message that cannot reach the person there goes by SMS, once.

Real parts: the campaign engine, the status callbacks from the fake Twilio into the live app,
the notifier's fallback job run by an RQ worker, the real Redis and database.
"""

from __future__ import annotations

import datetime as dt

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from bot import connections, create_app, delivery_status, queues, store
from bot.dev.embedded_redis import EmbeddedRedis, free_port
from bot.worker import Worker
from notifier import campaigns, jobs
from notifier.campaigns import Filters
from tests.gateway_stack import sign, wait_for
from tests.notifier.conftest import add_consumers, add_moratorium, add_payment, next_weekday_ist

VALID_UNTIL = dt.date(2027, 5, 31)
BASE = 919700004700
NOT_ON_WHATSAPP = f"+{BASE}"
UNREACHABLE = f"+{BASE + 1}"
FINE = f"+{BASE + 2}"


@pytest.fixture()
def campaign_env(gw_settings, monkeypatch):
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "off")
    # The campaign job reads this process's settings once; let it read the test's.
    monkeypatch.setattr(connections, "_settings", None)
    return gw_settings.with_overrides(quiet_hours="off")


def _run_campaign_queue(redis_conn) -> None:
    queue = Queue(queues.CAMPAIGNS, connection=redis_conn)
    Worker([queue], connection=redis_conn).work(burst=True, with_scheduler=False)


def _messages(engine):
    with store.session_scope(engine) as session:
        rows = session.execute(select(store.OutboundMessage)).scalars().all()
        return {r.idempotency_key: (r.channel, r.to_number, r.status, r.error_code) for r in rows}


def _flushed(redis_conn, engine):
    delivery_status.flush(redis_conn, engine)
    return _messages(engine)


def test_whatsapp_failures_fall_back_to_sms_once(live_app, campaign_env, engine, fake, redis_conn):
    fake.configure(
        whatsapp_failures={NOT_ON_WHATSAPP: 63003},
        undeliverable=[UNREACHABLE],  # neither WhatsApp nor SMS reaches this one
        callback_delay=0.02,
    )
    accounts = add_consumers(engine, 3, whatsapp_every=1, mobile_base=BASE)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=campaign_env, valid_until=VALID_UNTIL
    )
    campaigns.start(engine, redis_conn, cid, batch_size=10)
    _run_campaign_queue(redis_conn)
    keys = [f"campaign:{cid}:{a}" for a in accounts]
    # The callbacks come in; two WhatsApp messages end badly and queue their fallbacks.
    # (The worker may already have run them, if they came while it was still busy.)
    wait_for(lambda: len(redis_conn.keys("bijli:status:sms-fallback:*")) == 2)
    _run_campaign_queue(redis_conn)
    wait_for(lambda: _messages(engine).get(keys[1] + ":sms", (0, 0, ""))[2] == "undelivered")
    # Delivered is written by the flush of parked callbacks (the worker's job, run here).
    wait_for(
        lambda: _flushed(redis_conn, engine).get(keys[0] + ":sms", (0, 0, ""))[2] == "delivered"
    )
    wait_for(lambda: _flushed(redis_conn, engine)[keys[2]][2] == "delivered")
    sent = _messages(engine)
    assert sent[keys[0]] == ("whatsapp", NOT_ON_WHATSAPP, "failed", 63003)
    assert sent[keys[0] + ":sms"] == ("sms", NOT_ON_WHATSAPP, "delivered", None)
    assert sent[keys[1]][2:] == ("undelivered", 30003)
    assert sent[keys[1] + ":sms"][:3] == ("sms", UNREACHABLE, "undelivered")
    assert sent[keys[2]] == ("whatsapp", FINE, "delivered", None)
    assert len(sent) == 5, "no fallback for the delivered one, none for a failed SMS"
    # What reached Twilio: the SMS is the campaign's registered SMS template, not WhatsApp text.
    (whatsapp, sms) = fake.sent(NOT_ON_WHATSAPP)
    assert whatsapp["to"] == f"whatsapp:{NOT_ON_WHATSAPP}"
    assert sms["to"] == NOT_ON_WHATSAPP and sms["from"] == campaign_env.twilio_sms_from
    assert accounts[0] in sms["body"] and sms["content_sid"] is None

    # The job again (a retry, a replayed callback): still one SMS each.
    assert jobs.send_sms_fallback(cid, accounts[0]) == "duplicate"
    assert len(fake.sent(NOT_ON_WHATSAPP)) == 2


def test_no_sms_for_a_number_that_opted_out_of_sms(
    live_app, campaign_env, engine, fake, redis_conn
):
    fake.configure(whatsapp_failures={NOT_ON_WHATSAPP: 63003}, callback_delay=0.02)
    add_consumers(engine, 1, whatsapp_every=1, mobile_base=BASE)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=campaign_env, valid_until=VALID_UNTIL
    )
    with store.session_scope(engine) as session:
        store.set_opt_out(session, NOT_ON_WHATSAPP, "sms", True)
    campaigns.start(engine, redis_conn, cid, batch_size=10)
    _run_campaign_queue(redis_conn)
    wait_for(lambda: len(redis_conn.keys("bijli:status:sms-fallback:*")) == 1)
    _run_campaign_queue(redis_conn)
    assert [m["to"] for m in fake.sent(NOT_ON_WHATSAPP)] == [f"whatsapp:{NOT_ON_WHATSAPP}"]


# --------------------------------------------------------------------------- missed by the callback


def _sid(engine, key: str) -> str:
    with store.session_scope(engine) as session:
        return session.execute(
            select(store.OutboundMessage.twilio_sid).where(
                store.OutboundMessage.idempotency_key == key
            )
        ).scalar_one()


def _outbound_id(engine, key: str) -> int:
    with store.session_scope(engine) as session:
        return session.execute(
            select(store.OutboundMessage.id).where(store.OutboundMessage.idempotency_key == key)
        ).scalar_one()


def _post_status(cfg, sid: str, value: str, error_code: int):
    form = {"MessageSid": sid, "MessageStatus": value, "ErrorCode": str(error_code)}
    return (
        create_app(cfg)
        .test_client()
        .post(
            "/twilio/status",
            data=form,
            headers={"X-Twilio-Signature": sign(cfg, "/twilio/status", form)},
        )
    )


def _campaign_jobs(redis_conn) -> list[str]:
    queue = Queue(queues.CAMPAIGNS, connection=redis_conn)
    return list(queue.job_ids) + ScheduledJobRegistry(queue=queue).get_job_ids()


def _up(conn) -> bool:
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False


def test_a_fallback_whose_callback_came_while_redis_was_down_is_sent_once_by_the_sweep(
    gw_settings, engine, fake, monkeypatch
):
    """The callback stores the status and answers 503 (Twilio does not post it again); the
    cron's sweep finds the message once Redis is back and its fallback goes, once."""
    port = free_port()
    server = EmbeddedRedis(port=port).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("BIJLI_QUIET_HOURS", "off")
    connections.reset()
    cfg = gw_settings.with_overrides(redis_url=server.url, quiet_hours="off")
    # The fake accepts the message and posts nothing: its final callback is posted below.
    fake.configure(whatsapp_failures={NOT_ON_WHATSAPP: 63003}, post_callbacks=False)
    try:
        conn = connections.redis(cfg)
        (account,) = add_consumers(engine, 1, whatsapp_every=1, mobile_base=BASE)
        cid = campaigns.create(
            engine, "new-account-number", Filters(), cfg=cfg, valid_until=VALID_UNTIL
        )
        campaigns.start(engine, conn, cid, batch_size=10)
        _run_campaign_queue(conn)
        key = jobs.idempotency_key(cid, account)
        sid = _sid(engine, key)

        server.stop()
        response = _post_status(cfg, sid, "failed", 63003)
        assert response.status_code == 503
        assert _messages(engine)[key][2:] == ("failed", 63003), "the status is stored"
        # Twilio does not post a status callback again; and this Redis comes back empty.
        server = EmbeddedRedis(port=port).start()
        wait_for(lambda: _up(conn), timeout=10)
        assert _campaign_jobs(conn) == []

        assert campaigns.sweep_job() == "restarted:- sms_fallbacks:1"
        _run_campaign_queue(conn)
        sent = fake.sent(NOT_ON_WHATSAPP)
        assert [m["to"] for m in sent] == [f"whatsapp:{NOT_ON_WHATSAPP}", NOT_ON_WHATSAPP]
        assert account in sent[1]["body"]
        assert _messages(engine)[jobs.fallback_key(cid, account)][:2] == ("sms", NOT_ON_WHATSAPP)

        # Every later sweep finds it done: by its mark, and without it by its SMS.
        assert campaigns.sweep_job() == "restarted:- sms_fallbacks:0"
        conn.delete(delivery_status.FALLBACK_MARK.format(outbound_id=_outbound_id(engine, key)))
        assert campaigns.sweep_job() == "restarted:- sms_fallbacks:0"
        assert _campaign_jobs(conn) == []
        _run_campaign_queue(conn)
        assert len(fake.sent(NOT_ON_WHATSAPP)) == 2
    finally:
        server.stop()
        connections.reset()


def test_a_fallback_skipped_or_waiting_is_not_queued_again_by_later_sweeps(
    campaign_env, engine, fake, redis_conn, monkeypatch
):
    """One consumer paid since (no SMS, no row); the other's SMS waits for a moratorium (one
    scheduled job). Sweeps every 5 minutes after queue neither again: the mark holds them."""
    moment = next_weekday_ist(1, 12)  # a Tuesday noon: warnings may go
    monkeypatch.setattr(jobs, "utcnow", lambda: moment)
    fake.configure(
        whatsapp_failures={NOT_ON_WHATSAPP: 63003, UNREACHABLE: 63003}, post_callbacks=False
    )
    paid, held = add_consumers(
        engine,
        2,
        meter_type="smart_prepaid",
        dues_paise=20_000_00,
        whatsapp_every=1,
        mobile_base=BASE,
    )
    cid = campaigns.create(
        engine, "disconnection-warning", Filters(min_dues_paise=15_000_00), cfg=campaign_env
    )
    campaigns.start(engine, redis_conn, cid)
    _run_campaign_queue(redis_conn)
    assert len(fake.sent()) == 2
    add_payment(engine, paid, 20_000_00)
    add_moratorium(
        engine, moment - dt.timedelta(minutes=5), moment + dt.timedelta(hours=2), "flood relief"
    )
    # Both failures are stored, and neither fallback was queued (Redis was down).
    for account in (paid, held):
        sid = _sid(engine, jobs.idempotency_key(cid, account))
        assert delivery_status.record_status(engine, sid, "failed", 63003) == "updated"

    # A page of one message at a time, one fallback per run: the next run goes on.
    monkeypatch.setattr(delivery_status, "MISSED_FALLBACK_PAGE", 1)
    assert len(delivery_status.queue_missed_fallbacks(redis_conn, engine, limit=1)) == 1
    assert campaigns.sweep_job() == "restarted:- sms_fallbacks:1"
    _run_campaign_queue(redis_conn)
    job_id = f"campaign-{cid}-sms-{paid}"
    assert Job.fetch(job_id, connection=redis_conn).return_value() == jobs.PAID
    (waiting,) = _campaign_jobs(redis_conn)
    for _ in range(3):
        assert campaigns.sweep_job() == "restarted:- sms_fallbacks:0"
        assert _campaign_jobs(redis_conn) == [waiting], "nothing queued, nothing piled up"
    assert len(fake.sent()) == 2, "no SMS yet"
    assert jobs.fallback_key(cid, paid) not in _messages(engine), "a skip writes no row"


def test_the_sweep_leaves_failures_older_than_its_window_alone(
    campaign_env, engine, fake, redis_conn
):
    """Past the window the mark of a fallback queued then may have lapsed: never queued again."""
    fake.configure(whatsapp_failures={NOT_ON_WHATSAPP: 63003}, post_callbacks=False)
    (account,) = add_consumers(engine, 1, whatsapp_every=1, mobile_base=BASE)
    cid = campaigns.create(
        engine, "new-account-number", Filters(), cfg=campaign_env, valid_until=VALID_UNTIL
    )
    campaigns.start(engine, redis_conn, cid, batch_size=10)
    _run_campaign_queue(redis_conn)
    key = jobs.idempotency_key(cid, account)
    delivery_status.record_status(engine, _sid(engine, key), "failed", 63003)

    def ended(ago: dt.timedelta) -> None:
        with store.session_scope(engine) as session:
            session.execute(
                update(store.OutboundMessage)
                .where(store.OutboundMessage.idempotency_key == key)
                .values(updated_at=store.utcnow() - ago)
            )

    window = delivery_status.MISSED_FALLBACK_WINDOW
    ended(window + dt.timedelta(minutes=1))
    assert delivery_status.queue_missed_fallbacks(redis_conn, engine) == []
    ended(window - dt.timedelta(minutes=1))
    assert delivery_status.queue_missed_fallbacks(redis_conn, engine) == [_outbound_id(engine, key)]
    assert delivery_status.MISSED_FALLBACK_WINDOW.total_seconds() < (
        delivery_status.FALLBACK_MARK_TTL
    )
