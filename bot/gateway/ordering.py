"""Per-sender order of inbound messages, for the webhook, the sweep and ``bijli replay-failed``.

Each message's job depends (RQ ``depends_on``, failures allowed) on the job of the same sender's
previous message, whose id is kept in Redis as the sender's *tail*. RQ starts a dependent only
when its predecessor has finished, failed for good, or expired, so with any number of workers one
person's messages are answered in the order they reached the webhook, while different people's
run in parallel. Reading the tail and enqueueing happen under a short per-sender Redis lock, so
two web processes cannot give one predecessor two successors.

Enqueueing a message is idempotent: the webhook, Twilio's retries of it and the inbox sweep may
all ask for the same message, and only a message whose job is missing (never enqueued, or lost
with Redis) or finished without answering (sending was paused) gets a new one. A job that is
waiting, running or scheduled for a retry is left alone, and so is one that failed for good:
that is a dead letter, for an operator to replay.

Jobs are named by dotted path, so that enqueueing never imports the job's code (or Flask).
"""

from __future__ import annotations

from typing import Any

import redis
from rq import Callback, Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Dependency, Job, JobStatus

from bot.queues import INBOUND

#: The job id of a sender's latest message, which the next one depends on.
TAIL_KEY = "bijli:inbound:tail:{channel}:{mobile}"
TAIL_TTL = 7 * 24 * 3600
LOCK_KEY = "bijli:inbound:lock:{channel}:{mobile}"
#: The sender's WhatsApp profile name, for Rasa's metadata (kept as long as a job may retry).
PROFILE_KEY = "bijli:inbound:profile:{id}"
PROFILE_TTL = 7 * 24 * 3600
#: Seconds a job may run: Rasa's timeout plus a few sends.
JOB_TIMEOUT = 120
#: Back-off between attempts, in seconds: about 15 minutes in all before a dead letter.
RETRY_INTERVALS = [5, 15, 60, 180, 600]


def default_retry() -> Retry:
    """The retry policy of inbound jobs."""
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


def job_id_for(inbound_id: int, suffix: str = "") -> str:
    """The RQ job id of an inbound message's job."""
    return f"inbound-{inbound_id}{suffix}"


def enqueue_inbound(
    conn: redis.Redis,
    inbound_id: int,
    channel: str,
    mobile: str,
    *,
    job_id: str | None = None,
    retry: Retry | None = None,
) -> Job:
    """Enqueue the job answering ``inbound_id`` after the sender's previous message's job.

    Returns the message's existing job instead when it has one that is not finished.
    """
    job, _ = ensure_enqueued(conn, inbound_id, channel, mobile, job_id=job_id, retry=retry)
    assert job is not None  # only a call with only_over_finished may leave a message without
    return job


def ensure_enqueued(
    conn: redis.Redis,
    inbound_id: int,
    channel: str,
    mobile: str,
    *,
    job_id: str | None = None,
    retry: Retry | None = None,
    only_over_finished: bool = False,
    profile_name: str = "",
) -> tuple[Job | None, bool]:
    """(the message's job, whether it was enqueued now): see :func:`enqueue_inbound`.

    ``only_over_finished`` leaves a message without a job alone: its job may be running with
    its record lost with Redis, while a finished one is certainly over. ``profile_name`` (the
    sender's WhatsApp name) is stored beside the message for its job, before the job can start.
    """
    job_id = job_id or job_id_for(inbound_id)
    retry = retry or default_retry()
    queue = Queue(INBOUND, connection=conn)
    tail_key = TAIL_KEY.format(channel=channel, mobile=mobile)
    profile = (PROFILE_KEY.format(id=inbound_id), profile_name) if profile_name else None
    with conn.lock(LOCK_KEY.format(channel=channel, mobile=mobile), timeout=10, blocking_timeout=5):
        # The message's job and the sender's tail in one round trip.
        with conn.pipeline(transaction=False) as pipe:
            pipe.hgetall(Job.key_for(job_id))
            pipe.get(tail_key)
            data, raw = pipe.execute()
        existing = _restored(job_id, data, conn)
        status = existing.get_status(refresh=False) if existing is not None else None
        if (existing is not None and status not in (None, JobStatus.FINISHED)) or (
            only_over_finished and status != JobStatus.FINISHED
        ):
            if profile is not None:
                conn.set(*profile, ex=PROFILE_TTL)
            return existing, False
        previous = raw.decode() if raw is not None and raw.decode() != job_id else None
        if previous is not None and _settled(previous, conn):
            previous = None
        job_options: dict[str, Any] = {
            "args": (inbound_id,),
            "job_id": job_id,
            "timeout": JOB_TIMEOUT,
            "retry": retry,
            "meta": {"attempts_allowed": retry.max + 1},
            "on_failure": Callback("bot.gateway.dead_letters.on_inbound_failure"),
            "result_ttl": 3600,
            "failure_ttl": 30 * 24 * 3600,
            "description": f"answer inbound message {inbound_id}",
        }
        if previous is None:
            # Nothing to wait for: the profile, the job, its queue entry and the new tail in one
            # transaction (RQ's own enqueue takes two round trips, and the tail a third).
            with conn.pipeline() as pipe:
                job = queue.enqueue_call(
                    "bot.gateway.inbound.handle_inbound", pipeline=pipe, **job_options
                )
                if profile is not None:
                    pipe.set(*profile, ex=PROFILE_TTL)
                pipe.set(tail_key, job_id, ex=TAIL_TTL)
                pipe.execute()
            return job, True
        if profile is not None:
            conn.set(*profile, ex=PROFILE_TTL)
        job = queue.enqueue_call(
            "bot.gateway.inbound.handle_inbound",
            depends_on=Dependency(jobs=[previous], allow_failure=True),
            **job_options,
        )
        conn.set(tail_key, job_id, ex=TAIL_TTL)
        if job.get_status() == JobStatus.DEFERRED:
            _release_if_predecessor_settled(queue, previous, conn)
    return job, True


#: Statuses after which a job will never run again by itself.
_SETTLED = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED)


def _restored(job_id: str, data: dict[bytes, bytes], conn: redis.Redis) -> Job | None:
    """The job from its hash as read (Job.fetch without its own round trip), or None."""
    if not data:
        return None
    job = Job(job_id, connection=conn)
    job.restore(data)
    return job


def _fetch(job_id: str, conn: redis.Redis) -> Job | None:
    try:
        return Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None


def _settled(job_id: str, conn: redis.Redis) -> bool:
    """True when the job is gone or will not run again (so nothing needs to wait for it)."""
    job = _fetch(job_id, conn)
    return job is None or job.get_status() in _SETTLED


def _release_if_predecessor_settled(queue: Queue, previous: str, conn: redis.Redis) -> None:
    """Enqueue the dependents of a predecessor that failed for good while we were enqueueing.

    RQ defers a job whose dependency has already failed even with ``allow_failure``, and only a
    predecessor's own failure handling releases its dependents; if that ran just before our job
    registered, we run RQ's release ourselves (it is idempotent).
    """
    try:
        predecessor = Job.fetch(previous, connection=conn)
    except NoSuchJobError:
        return
    if predecessor.get_status() in _SETTLED:
        queue.enqueue_dependents(predecessor)
