"""The database is the inbox: every message is stored as it arrives, and none stays unanswered.

The webhook stores a message before it answers Twilio (the unique MessageSid is the dedupe) and
then enqueues its job. When Redis is down, when a job is lost with Redis, or while sending is
paused, the row stays unanswered (``processed_at`` NULL): :func:`sweep`, an RQ cron job that
``bijli cron`` schedules, enqueues such rows again, oldest first, through the per-sender ordering
of :mod:`bot.gateway.ordering`. Before enqueueing a new message the webhook does the same for
the sender's own earlier unanswered ones, so that one person's answers keep their order across
an outage. A message with a dead letter is an operator's (``bijli replay-failed``), not the
sweep's.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import NamedTuple

import redis
from sqlalchemy import exists, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import connections, twilio_client
from bot import settings as settings_mod
from bot.clock import utcnow
from bot.gateway import dead_letters
from bot.gateway.ordering import JOB_TIMEOUT, ensure_enqueued
from bot.logfmt import kv
from bot.queues import INBOUND
from bot.store import DeadLetter, InboundMessage, session_scope

log = logging.getLogger(__name__)

#: Seconds between two sweeps (``bijli cron``).
SWEEP_INTERVAL = 30
#: Seconds a sweep job may run.
SWEEP_TIMEOUT = 120
#: Seconds ``bijli cron`` waits before starting again after losing Redis.
CRON_RECONNECT_DELAY = 5
#: Seconds a message stays unanswered before the sweep enqueues it again: longer than a job may
#: run, so that a job whose record Redis lost while it ran has ended before its message is
#: enqueued again.
UNANSWERED_AFTER = JOB_TIMEOUT + 60
#: Unanswered messages older than this are left alone (the sender has long moved on; the
#: rows stay for an operator). As long as the tail and profile keys of the ordering live.
SWEEP_WINDOW = dt.timedelta(days=7)
#: Most unanswered messages one sweep looks at, oldest first; the next sweep takes the rest.
SWEEP_BATCH = 500
#: Longest ``From`` stored for a sender the gateway does not serve (the column's width).
MAX_SENDER = 32


@dataclass(frozen=True)
class Stored:
    """A message's row: its id, whether this request created it, whether it is answered."""

    id: int
    created: bool
    answered: bool


def store(
    engine: Engine,
    sid: str,
    channel: str,
    sender: str,
    body: str,
    num_media: int,
    *,
    answered: bool = False,
) -> Stored:
    """Insert a message (``answered`` at once when the gateway refuses its sender).

    A MessageSid already stored is Twilio retrying: the existing row comes back.
    """
    try:
        with session_scope(engine) as session:
            row = InboundMessage(
                message_sid=sid,
                channel=channel,
                from_number=sender[:MAX_SENDER],
                body=body,
                num_media=num_media,
                processed_at=utcnow() if answered else None,
            )
            session.add(row)
            session.flush()
            return Stored(int(row.id), created=True, answered=answered)
    except IntegrityError:
        with session_scope(engine) as session:
            existing = session.execute(
                select(InboundMessage).where(InboundMessage.message_sid == sid)
            ).scalar_one()
            return Stored(int(existing.id), False, existing.processed_at is not None)


class Waiting(NamedTuple):
    """An unanswered message: enough to enqueue it in its sender's order."""

    id: int
    channel: str
    mobile: str
    received_at: dt.datetime


def unanswered(
    session: Session,
    *,
    channel: str | None = None,
    mobile: str | None = None,
    before_id: int | None = None,
    limit: int = SWEEP_BATCH,
) -> list[Waiting]:
    """Unanswered messages of the last SWEEP_WINDOW without a dead letter, oldest first."""
    query = select(
        InboundMessage.id,
        InboundMessage.channel,
        InboundMessage.from_number,
        InboundMessage.received_at,
    ).where(
        InboundMessage.processed_at.is_(None),
        InboundMessage.received_at >= utcnow() - SWEEP_WINDOW,
        ~exists().where(DeadLetter.inbound_message_id == InboundMessage.id),
    )
    if channel is not None:
        query = query.where(InboundMessage.channel == channel)
    if mobile is not None:
        query = query.where(InboundMessage.from_number == mobile)
    if before_id is not None:
        query = query.where(InboundMessage.id < before_id)
    rows = session.execute(query.order_by(InboundMessage.id).limit(limit))
    return [Waiting(int(i), str(c), str(m), r) for i, c, m, r in rows]


def enqueue_earlier(
    conn: redis.Redis, engine: Engine, channel: str, mobile: str, before_id: int
) -> int:
    """Enqueue the sender's unanswered messages older than ``before_id`` that have no job."""
    with session_scope(engine) as session:
        earlier = unanswered(session, channel=channel, mobile=mobile, before_id=before_id)
    enqueued = sum(ensure_enqueued(conn, m.id, m.channel, m.mobile)[1] for m in earlier)
    if enqueued:
        log.info(kv("inbound_earlier_enqueued", before_id=before_id, enqueued=enqueued))
    return enqueued


def sweep() -> str:
    """RQ cron job: probe a paused Twilio, write late dead letters, enqueue what is unanswered.

    A message younger than UNANSWERED_AFTER is taken only when its job finished without
    answering it (sending was paused): without a job, it may be running still.
    """
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    letters = dead_letters.write_missing_dead_letters(engine, conn)
    if not twilio_client.probe_credentials(cfg, conn):
        # Jobs would only find sending paused: the messages wait in the table.
        log.info(kv("inbox_sweep", outcome="twilio_paused", dead_letters_written=letters))
        return "paused"
    with session_scope(engine) as session:
        waiting = unanswered(session)
    settled_before = utcnow() - dt.timedelta(seconds=UNANSWERED_AFTER)
    enqueued = sum(
        ensure_enqueued(
            conn,
            m.id,
            m.channel,
            m.mobile,
            only_over_finished=m.received_at >= settled_before,
        )[1]
        for m in waiting
    )
    log.info(
        kv(
            "inbox_sweep",
            unanswered=len(waiting),
            enqueued=enqueued,
            dead_letters_written=letters,
        )
    )
    return f"enqueued:{enqueued}"


def run_cron(conn: redis.Redis) -> None:
    """Run RQ's :class:`~rq.cron.CronScheduler` with the sweep until stopped (SIGTERM, Ctrl-C).

    Several may run (each enqueues its own sweeps, which are idempotent). RQ's scheduler ends on
    a Redis error; the workers ride out a Redis restart, so this does too, and starts again.
    """
    from rq.cron import CronScheduler
    from rq.exceptions import StopRequested

    class Scheduler(CronScheduler):
        """RQ's scheduler, remembering a stop request: with Redis down, its own shutdown raises
        a ConnectionError in place of the stop, which must not read as "start again"."""

        stop_requested = False

        def _request_stop(self, signum: int, frame: object) -> None:
            self.stop_requested = True
            super()._request_stop(signum, frame)

    scheduler = Scheduler(connection=conn)
    scheduler.register(
        sweep,
        queue_name=INBOUND,
        interval=SWEEP_INTERVAL,
        job_timeout=SWEEP_TIMEOUT,
        result_ttl=600,
        failure_ttl=24 * 3600,
    )
    while not scheduler.stop_requested:
        try:
            scheduler.start()
            return
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning(kv("cron_redis_unavailable", error=type(exc).__name__))
        try:
            time.sleep(CRON_RECONNECT_DELAY)
        except StopRequested:
            # The scheduler's signal handlers stay installed: SIGTERM while waiting.
            return
