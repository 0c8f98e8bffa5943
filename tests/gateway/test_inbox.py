"""The database is the inbox: stored messages left unanswered are enqueued again, in order."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select

from bot import create_app
from bot.dev.embedded_redis import free_port
from bot.gateway import inbox, ordering
from bot.queues import INBOUND
from bot.store import InboundMessage, session_scope
from tests.gateway_stack import inbound_form, sign, wait_for

A = "+919876511111"
B = "+919876522222"


@pytest.fixture()
def sweep_now(monkeypatch):
    """The sweep takes unanswered messages at once (its real threshold is minutes)."""
    monkeypatch.setattr(inbox, "UNANSWERED_AFTER", 0)


@pytest.fixture()
def post_while_redis_is_down(gw_settings, engine):
    """Post a signed message to an app whose Redis does not answer."""
    cfg = gw_settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(cfg).test_client()

    def post(body, sender=A):
        form = inbound_form(body, sender=sender)
        response = client.post(
            "/twilio/messages",
            data=form,
            headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", form)},
        )
        assert response.status_code == 200
        return form["MessageSid"]

    return post


def _bodies(fake, sender=A):
    return [m["body"] for m in fake.sent(f"whatsapp:{sender}")]


def _age(engine, seconds):
    """Make every stored message ``seconds`` older (in Python: SQLite has no date arithmetic)."""
    with session_scope(engine) as session:
        for row in session.execute(select(InboundMessage)).scalars():
            row.received_at = row.received_at - dt.timedelta(seconds=seconds)


def _ids(engine):
    with session_scope(engine) as session:
        return list(
            session.execute(select(InboundMessage.id).order_by(InboundMessage.id)).scalars()
        )


def test_sweep_enqueues_unanswered_messages_in_each_senders_order(
    post_while_redis_is_down, engine, redis_conn, work, fake, stub_rasa, sweep_now
):
    for text, sender in (("a1", A), ("b1", B), ("a2", A), ("a3", A)):
        post_while_redis_is_down(text, sender)
    assert Queue(INBOUND, connection=redis_conn).count == 0
    assert inbox.sweep() == "enqueued:4"
    a1, b1, a2, a3 = _ids(engine)
    job = lambda i: Job.fetch(ordering.job_id_for(i), connection=redis_conn)  # noqa: E731
    # Each of A's jobs waits for A's previous one; B's does not wait for A's.
    assert job(a2).dependency_ids == [ordering.job_id_for(a1)]
    assert job(a3).dependency_ids == [ordering.job_id_for(a2)]
    assert job(b1).dependency_ids == []
    work()
    assert _bodies(fake, A) == ["echo: a1", "echo: a2", "echo: a3"]
    assert _bodies(fake, B) == ["echo: b1"]
    assert inbox.sweep() == "enqueued:0"


def test_sweep_leaves_a_message_younger_than_the_timeout_alone(
    post_while_redis_is_down, engine, redis_conn
):
    post_while_redis_is_down("just now")
    assert inbox.sweep() == "enqueued:0"
    _age(engine, inbox.UNANSWERED_AFTER + 1)
    assert inbox.sweep() == "enqueued:1"


def test_sweep_leaves_messages_older_than_its_window_alone(
    post_while_redis_is_down, engine, redis_conn, sweep_now
):
    post_while_redis_is_down("last month")
    _age(engine, (inbox.SWEEP_WINDOW + dt.timedelta(hours=1)).total_seconds())
    assert inbox.sweep() == "enqueued:0"
    _age(engine, -2 * 3600)  # control: the same message inside the window is taken
    assert inbox.sweep() == "enqueued:1"


def test_sweep_does_not_enqueue_a_queued_job_twice(
    post_signed, engine, redis_conn, work, fake, stub_rasa, sweep_now
):
    post_signed("/twilio/messages", inbound_form("hello", sender=A))
    queue = Queue(INBOUND, connection=redis_conn)
    assert queue.count == 1
    assert inbox.sweep() == "enqueued:0"
    assert queue.count == 1
    work()
    assert _bodies(fake) == ["echo: hello"]
    assert stub_rasa.messages() == ["hello"]


def test_sweep_does_not_enqueue_a_job_scheduled_for_retry(
    post_signed, engine, redis_conn, work, fake, stub_rasa, sweep_now, monkeypatch
):
    monkeypatch.setattr(ordering, "RETRY_INTERVALS", [3600])
    stub_rasa.fail_next = 1
    post_signed("/twilio/messages", inbound_form("hello", sender=A))
    work()
    (inbound_id,) = _ids(engine)
    job_id = ordering.job_id_for(inbound_id)
    assert job_id in ScheduledJobRegistry(INBOUND, connection=redis_conn).get_job_ids()
    assert inbox.sweep() == "enqueued:0"
    assert Queue(INBOUND, connection=redis_conn).count == 0
    assert Job.fetch(job_id, connection=redis_conn).get_status() == JobStatus.SCHEDULED


def test_sweep_does_not_enqueue_a_job_that_is_running(
    post_signed, engine, redis_conn, work, fake, stub_rasa, sweep_now
):
    stub_rasa.delays["slow"] = 2.0
    post_signed("/twilio/messages", inbound_form("slow", sender=A))
    outcome: list[str] = []

    def sweep_while_it_runs():
        started = StartedJobRegistry(INBOUND, connection=redis_conn)
        wait_for(lambda: started.get_job_ids(), timeout=10)
        outcome.append(inbox.sweep())

    sweeper = threading.Thread(target=sweep_while_it_runs)
    sweeper.start()
    work()  # the worker needs the main thread (signals)
    sweeper.join(timeout=30)
    assert outcome == ["enqueued:0"]
    assert _bodies(fake) == ["echo: slow"]
    assert stub_rasa.messages() == ["slow"]


def test_sweep_leaves_a_dead_letter_to_the_operator(
    post_signed, engine, redis_conn, work, fake, stub_rasa, sweep_now
):
    stub_rasa.fail_next = 100
    post_signed("/twilio/messages", inbound_form("kya haal", sender=A))
    work()
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 1
    assert inbox.sweep() == "enqueued:0"
    redis_conn.flushdb()  # even with the failed job gone from Redis, the dead letter row stays
    assert inbox.sweep() == "enqueued:0"
    assert fake.sent() == []


def test_webhook_enqueues_the_senders_earlier_unanswered_message_first(
    post_while_redis_is_down, post_signed, engine, redis_conn, work, fake, stub_rasa
):
    post_while_redis_is_down("while redis was down")
    # Redis answers again; the sender's next message must not overtake the stored one.
    post_signed("/twilio/messages", inbound_form("and now", sender=A))
    post_signed("/twilio/messages", inbound_form("someone else", sender=B))
    first, second, _ = _ids(engine)
    # The stored message was enqueued, and the new one waits for it.
    assert Job.fetch(ordering.job_id_for(second), connection=redis_conn).dependency_ids == [
        ordering.job_id_for(first)
    ]
    work()
    assert _bodies(fake, A) == ["echo: while redis was down", "echo: and now"]
    assert _bodies(fake, B) == ["echo: someone else"]


def test_a_job_lost_with_redis_is_enqueued_again_by_the_sweep(
    post_signed, engine, redis_conn, work, fake, stub_rasa, sweep_now
):
    post_signed("/twilio/messages", inbound_form("one", sender=A))
    post_signed("/twilio/messages", inbound_form("two", sender=A))
    redis_conn.flushdb()  # what a restart of a Redis without persistence does to the queue
    assert inbox.sweep() == "enqueued:2"
    work()
    assert _bodies(fake) == ["echo: one", "echo: two"]
