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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import redis
from sqlalchemy import bindparam, exists, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot import connections, delivery_status, twilio_client
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


class Waiting(NamedTuple):
    """An unanswered message: enough to enqueue it in its sender's order."""

    id: int
    channel: str
    mobile: str
    received_at: dt.datetime


@dataclass(frozen=True)
class Stored:
    """A message's row: its id, whether this request created it, whether it is answered.

    ``earlier`` are the sender's older unanswered messages (oldest first), read with it.
    """

    id: int
    created: bool
    answered: bool
    earlier: tuple[Waiting, ...] = ()


def _unanswered_query() -> Select:
    """Unanswered messages received since ``:since`` without a dead letter, oldest first."""
    return (
        select(
            InboundMessage.id,
            InboundMessage.channel,
            InboundMessage.from_number,
            InboundMessage.received_at,
        )
        .where(
            InboundMessage.processed_at.is_(None),
            InboundMessage.received_at >= bindparam("since"),
            ~exists().where(DeadLetter.inbound_message_id == InboundMessage.id),
        )
        .order_by(InboundMessage.id)
    )


# Built once: the webhook runs these on every message, and building a statement costs more
# than running it.
_INSERT = insert(InboundMessage.__table__)
_BY_SID = select(InboundMessage.__table__.c.id, InboundMessage.__table__.c.processed_at).where(
    InboundMessage.__table__.c.message_sid == bindparam("sid")
)
_SENDER_EARLIER = (
    _unanswered_query()
    .where(
        InboundMessage.channel == bindparam("channel"),
        InboundMessage.from_number == bindparam("mobile"),
        InboundMessage.id < bindparam("before_id"),
    )
    .limit(SWEEP_BATCH)
)


def store(
    engine: Engine,
    sid: str,
    channel: str,
    sender: str,
    body: str,
    num_media: int,
    *,
    answered: bool = False,
    location: tuple[float, float] | None = None,
    button_payload: str | None = None,
) -> Stored:
    """Insert a message (``answered`` at once when the gateway refuses its sender).

    A MessageSid already stored is Twilio retrying: the existing row comes back. An unanswered
    one comes with its sender's earlier unanswered messages, read in the same transaction.
    """
    from_number = sender[:MAX_SENDER]
    row = {
        "message_sid": sid,
        "channel": channel,
        "from_number": from_number,
        "body": body,
        "num_media": num_media,
        "processed_at": utcnow() if answered else None,
        "latitude": location[0] if location else None,
        "longitude": location[1] if location else None,
        "button_payload": button_payload or None,
    }
    try:
        with engine.begin() as conn:
            new_id = int(conn.execute(_INSERT, row).inserted_primary_key[0])
            earlier = () if answered else _earlier(conn, channel, from_number, new_id)
            return Stored(new_id, created=True, answered=answered, earlier=earlier)
    except IntegrityError:
        with engine.begin() as conn:
            found_id, processed_at = conn.execute(_BY_SID, {"sid": sid}).one()
            done = processed_at is not None
            earlier = () if done else _earlier(conn, channel, from_number, found_id)
            return Stored(int(found_id), False, done, earlier)


def _earlier(conn: Connection, channel: str, mobile: str, before_id: int) -> tuple[Waiting, ...]:
    params = {
        "since": utcnow() - SWEEP_WINDOW,
        "channel": channel,
        "mobile": mobile,
        "before_id": before_id,
    }
    return tuple(
        Waiting(int(i), str(c), str(m), r) for i, c, m, r in conn.execute(_SENDER_EARLIER, params)
    )


def unanswered(
    session: Session,
    *,
    channel: str | None = None,
    mobile: str | None = None,
    before_id: int | None = None,
    limit: int = SWEEP_BATCH,
) -> list[Waiting]:
    """Unanswered messages of the last SWEEP_WINDOW without a dead letter, oldest first."""
    query = _unanswered_query()
    if channel is not None:
        query = query.where(InboundMessage.channel == channel)
    if mobile is not None:
        query = query.where(InboundMessage.from_number == mobile)
    if before_id is not None:
        query = query.where(InboundMessage.id < before_id)
    rows = session.execute(query.limit(limit), {"since": utcnow() - SWEEP_WINDOW})
    return [Waiting(int(i), str(c), str(m), r) for i, c, m, r in rows]


def enqueue_waiting(conn: redis.Redis, waiting: Sequence[Waiting], before_id: int) -> int:
    """Enqueue those of a sender's unanswered messages (oldest first) that have no job."""
    enqueued = sum(ensure_enqueued(conn, m.id, m.channel, m.mobile)[1] for m in waiting)
    if enqueued:
        log.info(kv("inbound_earlier_enqueued", before_id=before_id, enqueued=enqueued))
    return enqueued


def enqueue_earlier(
    conn: redis.Redis, engine: Engine, channel: str, mobile: str, before_id: int
) -> int:
    """Enqueue the sender's unanswered messages older than ``before_id`` that have no job."""
    with session_scope(engine) as session:
        earlier = unanswered(session, channel=channel, mobile=mobile, before_id=before_id)
    return enqueue_waiting(conn, earlier, before_id)


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


@dataclass(frozen=True)
class CronJob:
    """A periodic job another concern asks ``bijli cron`` to run."""

    func: Callable[[], object]
    queue: str
    interval: int  # seconds
    timeout: int  # seconds


def run_cron(conn: redis.Redis, extra: Sequence[CronJob] = ()) -> None:
    """Run RQ's :class:`~rq.cron.CronScheduler` with the sweep until stopped (SIGTERM, Ctrl-C).

    ``extra`` are other concerns' periodic jobs (the notifier's stalled-campaign sweep), handed in
    by ``bijli cron`` so that the gateway needs to know none of them.

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
    # The backstop of the status callbacks parked in Redis (each callback schedules its own
    # flush; this one catches a flush that was lost or failed all its retries).
    scheduler.register(
        delivery_status.flush_job,
        queue_name=delivery_status.FLUSH_QUEUE,
        interval=delivery_status.FLUSH_BACKSTOP_INTERVAL,
        job_timeout=120,
        result_ttl=0,
        failure_ttl=24 * 3600,
    )
    for job in extra:
        scheduler.register(
            job.func,
            queue_name=job.queue,
            interval=job.interval,
            job_timeout=job.timeout,
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
