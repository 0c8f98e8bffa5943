"""The handoff's states and rules, on the real database and Redis."""

from __future__ import annotations

import datetime as dt

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy.exc import IntegrityError

from bot import handoffs
from bot.clock import IST
from bot.queues import NOTIFICATIONS
from bot.store import AuditLog, Handoff, Holiday, Operator, session_scope

MOBILE = "+919876543210"


def utc(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A November 2026 IST wall-clock moment as naive UTC (the 23rd is a Monday)."""
    return (
        dt.datetime(2026, 11, day, hour, minute, tzinfo=IST)
        .astimezone(dt.timezone.utc)
        .replace(tzinfo=None)
    )


@pytest.fixture()
def cfg(settings):
    return settings.with_overrides(
        office_hours="Mon-Sat 10:00-17:00", handoff_reply_seconds=1800, handoff_idle_seconds=600
    )


def _open(session, cfg, now, mobile=MOBILE, channel="whatsapp"):
    return handoffs.open_handoff(
        session,
        cfg,
        channel=channel,
        mobile=mobile,
        discom="KESCO",
        language="hinglish",
        reason="kisi insaan se baat karao",
        now=now,
    )


def _operator(session, username="priya", role="agent") -> Operator:
    op = Operator(username=username, display_name=username.title(), role=role, password_hash="x")
    session.add(op)
    session.flush()
    return op


def test_opening_promises_a_reply_in_office_time_and_is_audited(engine, cfg):
    with session_scope(engine) as session:
        handoff, created = _open(session, cfg, utc(23, 16, 50))
        assert created and handoff.state == handoffs.WAITING
        assert handoff.promised_by == utc(24, 10, 20)
        [row] = session.query(AuditLog).all()
        assert (row.action, row.actor) == ("handoff_opened", "+91******3210")


def test_a_public_holiday_moves_the_promise(engine, cfg):
    with session_scope(engine) as session:
        session.add(Holiday(day=dt.date(2026, 11, 24), name="Guru Nanak Jayanti"))
        session.flush()
        handoff, _ = _open(session, cfg, utc(23, 16, 50))
        assert handoff.promised_by == utc(25, 10, 20)


def test_asking_again_finds_the_open_handoff_and_renews_a_passed_promise(engine, cfg):
    with session_scope(engine) as session:
        first, _ = _open(session, cfg, utc(23, 11))
    with session_scope(engine) as session:
        again, created = _open(session, cfg, utc(23, 11, 10))
        assert (again.id, created, again.promised_by) == (first.id, False, utc(23, 11, 30))
    with session_scope(engine) as session:
        late, created = _open(session, cfg, utc(23, 12))
        assert (late.id, created, late.promised_by) == (first.id, False, utc(23, 12, 30))


def test_the_database_allows_one_open_handoff_per_sender_and_channel(engine, cfg):
    with session_scope(engine) as session:
        _open(session, cfg, utc(23, 11))
        _open(session, cfg, utc(23, 11), channel="sms")  # another channel is another chat
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            Handoff(
                channel="whatsapp",
                mobile=MOBILE,
                discom="KESCO",
                state="held",
                promised_by=utc(23, 12),
            )
        )
        session.flush()


def test_a_closed_handoff_does_not_block_a_new_one(engine, cfg):
    with session_scope(engine) as session:
        first, _ = _open(session, cfg, utc(23, 11))
        handoffs.close(session, first.id, handoffs.BY_AGENT, now=utc(23, 11, 5))
        second, created = _open(session, cfg, utc(23, 11, 6))
        assert created and second.id != first.id


def test_take_reply_and_close_by_the_holder(engine, cfg):
    with session_scope(engine) as session:
        priya = _operator(session)
        handoff, _ = _open(session, cfg, utc(23, 11))
        reply, created = handoffs.add_reply(
            session, handoff.id, priya, "Namaste, main Priya", "t" * 20, now=utc(23, 11, 2)
        )
        assert created and reply.status == "queued"
        assert (handoff.state, handoff.operator_id) == (handoffs.HELD, priya.id)
        assert handoff.last_agent_at == utc(23, 11, 2)
        again, created = handoffs.add_reply(
            session, handoff.id, priya, "Namaste, main Priya", "t" * 20, now=utc(23, 11, 2)
        )
        assert (again.id, created) == (reply.id, False), "a form posted twice is one reply"
        handoffs.close(session, handoff.id, handoffs.BY_AGENT, operator=priya)
        assert (handoff.state, handoff.close_reason) == (handoffs.CLOSED, "agent")
        with pytest.raises(handoffs.HandoffClosed):
            handoffs.close(session, handoff.id, handoffs.BY_AGENT, operator=priya)
        with pytest.raises(handoffs.HandoffClosed):
            handoffs.add_reply(session, handoff.id, priya, "late", "u" * 20)


def test_another_agent_cannot_answer_or_close_a_held_conversation_but_an_officer_can(engine, cfg):
    with session_scope(engine) as session:
        priya, ravi = _operator(session), _operator(session, "ravi")
        officer = _operator(session, "verma", role="officer")
        handoff, _ = _open(session, cfg, utc(23, 11))
        handoffs.take(session, handoff.id, priya, now=utc(23, 11, 1))
        with pytest.raises(handoffs.HeldByAnother, match="Priya"):
            handoffs.take(session, handoff.id, ravi)
        with pytest.raises(handoffs.HeldByAnother):
            handoffs.add_reply(session, handoff.id, ravi, "hello", "r" * 20)
        with pytest.raises(handoffs.HeldByAnother):
            handoffs.close(session, handoff.id, handoffs.BY_AGENT, operator=ravi)
        handoffs.take(session, handoff.id, officer, override=True)
        assert handoff.operator_id == officer.id
    with pytest.raises(handoffs.NoSuchHandoff), session_scope(engine) as session:
        handoffs.take(session, 999_999, _operator(session, "ghost"))


def test_routing_waiting_goes_to_the_bot_held_to_the_agent_overdue_back_to_the_bot(engine, cfg):
    with session_scope(engine) as session:
        priya = _operator(session)
        handoff, _ = _open(session, cfg, utc(23, 11))
        assert handoffs.route_to_agent(session, cfg, "whatsapp", MOBILE, utc(23, 11, 1)) == (
            handoffs.Routing(False)
        ), "nobody has taken it: the bot keeps answering"
        handoffs.take(session, handoff.id, priya, now=utc(23, 11, 2))
        routed = handoffs.route_to_agent(session, cfg, "whatsapp", MOBILE, utc(23, 11, 5))
        assert routed == handoffs.Routing(True, handoff.id)
        assert handoff.last_consumer_at == utc(23, 11, 5)
        assert not handoffs.route_to_agent(session, cfg, "sms", MOBILE, utc(23, 11, 5)).to_agent
        # Ten idle minutes after the consumer's last message the hold lapses.
        late = handoffs.route_to_agent(session, cfg, "whatsapp", MOBILE, utc(23, 11, 15))
        assert late == handoffs.Routing(False, handoff.id, overdue=True)


def test_expiry_closes_a_held_conversation_after_the_idle_time_and_not_before(engine, cfg):
    with session_scope(engine) as session:
        priya = _operator(session)
        handoff, _ = _open(session, cfg, utc(23, 11))
        handoffs.take(session, handoff.id, priya, now=utc(23, 11, 0))
        handoff.last_consumer_at = utc(23, 11, 4)
        handoff_id = handoff.id
    with session_scope(engine) as session:
        assert handoffs.expire_if_due(session, cfg, handoff_id, utc(23, 11, 10)) == (
            None,
            utc(23, 11, 14),
        )
    with session_scope(engine) as session:
        assert handoffs.expire_if_due(session, cfg, handoff_id, utc(23, 11, 14)) == (
            handoffs.TIMEOUT,
            None,
        )
        assert session.get(Handoff, handoff_id).close_reason == "timeout"
    with session_scope(engine) as session:
        assert handoffs.expire_if_due(session, cfg, handoff_id, utc(23, 12)) == (None, None)


def test_expiry_closes_a_conversation_nobody_took_as_unanswered(engine, cfg):
    with session_scope(engine) as session:
        handoff, _ = _open(session, cfg, utc(23, 11))  # promised 11:30; idle 10 minutes
        assert handoffs.deadline(handoff, cfg) == utc(23, 11, 40)
        assert handoffs.expire_if_due(session, cfg, handoff.id, utc(23, 11, 39))[0] is None
        assert handoffs.expire_if_due(session, cfg, handoff.id, utc(23, 11, 40))[0] == (
            handoffs.UNANSWERED
        )


def test_schedule_expiry_puts_one_job_per_moment_in_rqs_scheduled_registry(redis_conn):
    at = utc(23, 11, 40)
    handoffs.schedule_expiry(redis_conn, 7, at)
    handoffs.schedule_expiry(redis_conn, 7, at)
    queue = Queue(NOTIFICATIONS, connection=redis_conn)
    registry = ScheduledJobRegistry(queue=queue)
    [job_id] = registry.get_job_ids()
    job = Job.fetch(job_id, connection=redis_conn)
    assert (job.func_name, job.args) == (handoffs.EXPIRE_JOB, (7,))
    assert registry.get_scheduled_time(job_id) == at.replace(tzinfo=dt.timezone.utc)
    assert job.retries_left == 3


def test_finding_an_open_handoff_uses_the_partial_index_on_sqlite(tmp_path):
    # Every inbound message asks whether its sender has an open handoff, and opening one asks
    # again: both must find it through the partial index of open handoffs, not a table scan.
    # (SQLite plans with the bound values, so `state != ?` bound to 'closed' matches the
    # index's `state != 'closed'` as the literal does.)
    from sqlalchemy import event

    from bot.gateway import inbound
    from bot.store import Base, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    Base.metadata.create_all(engine)
    statements: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def keep(_conn, _cursor, statement, parameters, _context, _many):  # noqa: ANN001
        statements.append((statement, parameters))

    with session_scope(engine) as session:
        assert handoffs.open_for(session, "whatsapp", MOBILE) is None
        session.execute(inbound._JOB_INPUT, {"id": 1}).one_or_none()
    event.remove(engine, "before_cursor_execute", keep)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            if "handoffs" in statement:
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                plans.append(" | ".join(str(r[-1]) for r in rows))
    assert len(plans) == 2, statements
    for plan in plans:
        assert "uq_handoffs_open_sender" in plan, plan
        assert "SCAN handoffs" not in plan, plan
