"""The inbox's jobs: timeouts through RQ's scheduler, notices, order, vanished rows."""

from __future__ import annotations

import datetime as dt
import time

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from bot import handoffs
from bot.clock import utcnow
from bot.inbox import jobs, texts
from bot.queues import NOTIFICATIONS
from bot.store import Handoff, HandoffReply, Operator, session_scope
from tests.inbox.conftest import MOBILE


def _hold(engine, handoff_id: int, *replies: str) -> list[int]:
    """Priya takes the conversation and writes ``replies``; return their ids."""
    with session_scope(engine) as session:
        priya = session.execute(select(Operator).where(Operator.username == "priya")).scalar_one()
        return [
            handoffs.add_reply(session, handoff_id, priya, body, f"token-{n:016d}")[0].id
            for n, body in enumerate(replies)
        ]


def _bodies(fake) -> list[str]:
    return [m["body"] for m in fake.sent(f"whatsapp:{MOBILE}")]


def test_a_held_conversation_times_out_through_rqs_scheduler_and_the_consumer_is_told(
    gw_settings, make_operator, open_handoff, engine, redis_conn, fake, work_scheduled, monkeypatch
):
    monkeypatch.setenv("BIJLI_HANDOFF_IDLE_MINUTES", str(1 / 60))  # one second
    make_operator()
    handoff_id = open_handoff(language="en")
    [reply_id] = _hold(engine, handoff_id, "Hello, Priya here")
    jobs.enqueue_reply(redis_conn, reply_id)
    with session_scope(engine) as session:
        due = handoffs.deadline(
            session.get(Handoff, handoff_id), gw_settings.with_overrides(handoff_idle_seconds=1)
        )
    handoffs.schedule_expiry(redis_conn, handoff_id, due)
    work_scheduled()  # sends the reply; the expiry is not due yet
    assert _bodies(fake) == ["Priya (KESCO helpdesk): Hello, Priya here"]
    registry = ScheduledJobRegistry(queue=Queue(NOTIFICATIONS, connection=redis_conn))
    assert registry.count == 1
    time.sleep(max((due - utcnow()).total_seconds(), 0) + 1.1)
    work_scheduled()
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        assert (handoff.state, handoff.close_reason) == ("closed", "timeout")
    assert _bodies(fake)[-1] == texts.text("timeout", "en", agent="Priya", minutes=1)


def test_activity_moves_the_deadline_and_the_job_reschedules_itself(
    gw_settings, make_operator, open_handoff, engine, redis_conn, monkeypatch
):
    monkeypatch.setenv("BIJLI_HANDOFF_IDLE_MINUTES", "10")
    make_operator()
    handoff_id = open_handoff()
    _hold(engine, handoff_id, "Hello")
    assert jobs.expire_handoff(handoff_id) == "rescheduled"
    registry = ScheduledJobRegistry(queue=Queue(NOTIFICATIONS, connection=redis_conn))
    [job_id] = registry.get_job_ids()
    assert job_id.startswith(f"handoff-expire-{handoff_id}-")
    scheduled = registry.get_scheduled_time(job_id).replace(tzinfo=None)
    assert dt.timedelta(minutes=9) < scheduled - utcnow() <= dt.timedelta(minutes=10)
    with session_scope(engine) as session:
        assert session.get(Handoff, handoff_id).state == "held"


def test_a_conversation_nobody_took_in_time_is_closed_as_unanswered(
    open_handoff, engine, redis_conn, fake, work, monkeypatch
):
    handoff_id = open_handoff(language="hi")
    with session_scope(engine) as session:
        session.get(Handoff, handoff_id).promised_by = utcnow() - dt.timedelta(hours=1)
    assert jobs.expire_handoff(handoff_id) == "closed:unanswered"
    work()
    assert _bodies(fake) == [texts.text("unanswered", "hi", discom="KESCO")]
    assert jobs.expire_handoff(handoff_id) == "nothing_to_do"
    assert jobs.expire_handoff(999_999) == "nothing_to_do"


def test_replies_go_out_in_the_order_they_were_written(
    make_operator, open_handoff, engine, redis_conn, fake, work, work_scheduled, monkeypatch
):
    monkeypatch.setattr(jobs, "WAIT", 0)
    make_operator()
    handoff_id = open_handoff()
    first, second = _hold(engine, handoff_id, "one", "two")
    # The second reply's job runs first: it waits for the first instead of overtaking it.
    assert jobs.send_agent_reply(second) == "waiting_for_earlier_reply"
    assert jobs.send_agent_reply(first) == "sent"
    work_scheduled()
    assert _bodies(fake) == ["Priya (KESCO helpdesk): one", "Priya (KESCO helpdesk): two"]
    assert jobs.send_agent_reply(second) == "already_sent", "a replay sends nothing"
    assert len(_bodies(fake)) == 2


def test_the_close_notice_waits_for_the_last_reply(
    make_operator, open_handoff, engine, redis_conn, fake, work_scheduled, monkeypatch
):
    monkeypatch.setattr(jobs, "WAIT", 0)
    make_operator()
    handoff_id = open_handoff(language="en")
    [reply_id] = _hold(engine, handoff_id, "Your bill is corrected")
    with session_scope(engine) as session:
        handoffs.close(session, handoff_id, handoffs.BY_AGENT)
    assert jobs.send_notice(handoff_id, handoffs.BY_AGENT) == "waiting_for_earlier_reply"
    jobs.enqueue_reply(redis_conn, reply_id)
    work_scheduled()
    work_scheduled()
    assert _bodies(fake) == [
        "Priya (KESCO helpdesk): Your bill is corrected",
        texts.text("closed", "en", agent="Priya"),
    ]


def test_a_vanished_reply_is_logged_and_left(gw_settings, engine, caplog):
    assert jobs.send_agent_reply(424242) == "vanished"
    assert "handoff_reply_vanished" in caplog.text


def test_a_reply_that_fails_every_retry_is_shown_as_failed(
    make_operator, open_handoff, engine, redis_conn, fake, work
):
    make_operator()
    handoff_id = open_handoff()
    [reply_id] = _hold(engine, handoff_id, "Hello")
    fake.configure(fail_next=[500] * (len(jobs.RETRY_INTERVALS) + 1))
    jobs.enqueue_reply(redis_conn, reply_id)
    work()
    with session_scope(engine) as session:
        assert session.get(HandoffReply, reply_id).status == "failed"
    assert _bodies(fake) == []


def test_texts_exist_in_three_registers_and_fill_their_placeholders():
    for key in texts.keys():
        for register in ("hi", "hinglish", "en"):
            filled = texts.text(key, register, agent="Priya", discom="KESCO", minutes=30, text="x")
            assert "{" not in filled, (key, register)


def test_the_dotted_job_names_the_core_and_pages_use_resolve():
    """The core names the inbox's jobs by string (it imports no concern): the names must hold."""
    import importlib

    for dotted in (
        handoffs.EXPIRE_JOB,
        "bot.inbox.jobs.send_agent_reply",
        "bot.inbox.jobs.send_notice",
        "bot.inbox.jobs.on_reply_failure",
    ):
        module, _, name = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), dotted
