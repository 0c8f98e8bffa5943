"""Campaign work the operator pages hand to a worker: a dry run, a creation, a start or a resume.

On 5.3 lakh consumers each of these takes longer than a web request may (selection renders and
counts every SMS; a start marks and queues every recipient), so the page enqueues one of these
jobs on the campaigns queue and polls it by id, as microblog does with its exports. They call
:mod:`notifier.campaigns` exactly as ``bijli campaign …`` does. No Flask here: the worker runs
them. Jobs take plain values and return plain values (a :class:`Outcome`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import redis
from rq import Queue, Retry
from rq.job import Job

from bot import connections
from bot.logfmt import kv
from bot.queues import CAMPAIGNS
from notifier import campaigns
from notifier.selection import Filters, InvalidFilter, UnknownKind

log = logging.getLogger(__name__)

#: The jobs below, by the dotted names the pages enqueue (and the only ones they will show).
PREVIEW = "notifier.tasks.preview"
CREATE = "notifier.tasks.create_campaign"
START = "notifier.tasks.start_campaign"
RESUME = "notifier.tasks.resume_campaign"
TASKS = frozenset({PREVIEW, CREATE, START, RESUME})
#: Longest a task may run, in seconds (a start on 5.3 lakh takes about a minute).
TIMEOUT = 30 * 60
#: How long a finished task's outcome stays readable, in seconds.
RESULT_TTL = 24 * 3600
#: What the operator can fix: shown on the page instead of a traceback.
OPERATOR_ERRORS = (campaigns.CampaignError, InvalidFilter, UnknownKind)


@dataclass(frozen=True)
class Outcome:
    """What a task did: a campaign id, a dry run, or the reason it could not."""

    campaign_id: int | None = None
    dry_run: campaigns.DryRun | None = None
    error: str | None = None
    queued: int | None = None


def enqueue(
    conn: redis.Redis,
    task: str,
    *args: object,
    job_id: str | None = None,
    retry: bool = False,
    meta: dict[str, object] | None = None,
) -> str:
    """Enqueue ``task`` on the campaigns queue; its job id (the same one for a repeated id)."""
    if task not in TASKS:
        raise ValueError(f"not a campaign task: {task}")
    if job_id is not None and Job.exists(job_id, connection=conn):
        return job_id  # a form posted twice: one job
    job = Queue(CAMPAIGNS, connection=conn).enqueue(
        task,
        args=args,
        job_id=job_id,
        job_timeout=TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=RESULT_TTL,
        retry=Retry(max=3, interval=[5, 30, 120]) if retry else None,
        meta=meta,
        description=f"{task.rsplit('.', 1)[-1]} {' '.join(str(a) for a in args)[:80]}",
        # Ahead of the send batches: an operator's start or dry run must not wait for a
        # running campaign's thousand batches to drain.
        at_front=True,
    )
    return str(job.id)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def preview(
    kind: str, filters_json: str, valid_until: str | None, notice_hours: int | None
) -> Outcome:
    """A dry run: what a campaign with these filters would select, exclude, cost and wait for."""
    try:
        result = campaigns.dry_run(
            connections.engine(),
            kind,
            Filters.from_json(filters_json),
            valid_until=_date(valid_until),
            notice_hours=notice_hours,
        )
    except OPERATOR_ERRORS as exc:
        return Outcome(error=str(exc))
    return Outcome(dry_run=result)


def create_campaign(
    kind: str,
    filters_json: str,
    name: str | None,
    valid_until: str | None,
    notice_hours: int | None,
    actor: str,
) -> Outcome:
    """Create a draft campaign (its recipients frozen); the audit log names ``actor``."""
    engine = connections.engine()
    try:
        created = campaigns.create(
            engine,
            kind,
            Filters.from_json(filters_json),
            name=name,
            valid_until=_date(valid_until),
            notice_hours=notice_hours,
            actor=actor,
        )
    except OPERATOR_ERRORS as exc:
        return Outcome(error=str(exc))
    assert isinstance(created, int)
    log.info(kv("campaign_created", campaign=created, actor=actor))
    return Outcome(campaign_id=created)


def _started(campaign_id: int, actor: str, resume: bool) -> Outcome:
    engine = connections.engine()
    conn = connections.redis()
    operation = campaigns.resume if resume else campaigns.start
    try:
        started = operation(engine, conn, campaign_id, actor=actor)
    except OPERATOR_ERRORS as exc:
        return Outcome(campaign_id=campaign_id, error=str(exc))
    action = "campaign_resumed" if resume else "campaign_started"
    log.info(kv(action, campaign=campaign_id, actor=actor, queued=started.queued))
    return Outcome(campaign_id=campaign_id, queued=started.queued)


def start_campaign(campaign_id: int, actor: str) -> Outcome:
    """Start a draft campaign: its recipients are queued in batch jobs (safe to repeat)."""
    return _started(campaign_id, actor, resume=False)


def resume_campaign(campaign_id: int, actor: str) -> Outcome:
    """Resume a paused campaign (safe to repeat)."""
    return _started(campaign_id, actor, resume=True)


__all__ = [
    "CREATE",
    "PREVIEW",
    "RESUME",
    "START",
    "TASKS",
    "Outcome",
    "create_campaign",
    "enqueue",
    "preview",
    "resume_campaign",
    "start_campaign",
]
