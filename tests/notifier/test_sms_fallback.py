"""A campaign's WhatsApp message that cannot reach the person there goes by SMS, once.

Real parts: the campaign engine, the status callbacks from the fake Twilio into the live app,
the notifier's fallback job run by an RQ worker, the real Redis and database.
"""

from __future__ import annotations

import datetime as dt

import pytest
from rq import Queue
from sqlalchemy import select

from bot import connections, delivery_status, queues, store
from bot.worker import Worker
from notifier import campaigns, jobs
from notifier.campaigns import Filters
from tests.gateway_stack import wait_for
from tests.notifier.conftest import add_consumers

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
