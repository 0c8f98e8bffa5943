"""Dead letters: an inbound message whose job failed its last retry, and replaying them.

RQ calls :func:`on_inbound_failure` after every failed attempt; after the last one it writes a
:class:`~bot.store.DeadLetter` row that ``bijli replay-failed`` puts back in the sender's queue.
The database may be what failed the job: then the row cannot be written, and the job itself is
the dead letter. RQ keeps it in its failed-job registry (``failure_ttl``, 30 days), the inbox
sweep writes its row once the database answers again (:func:`write_missing_dead_letters`), and
``bijli replay-failed`` reads both places.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import connections
from bot import settings as settings_mod
from bot.clock import utcnow
from bot.gateway.ordering import enqueue_inbound, job_id_for
from bot.logfmt import kv
from bot.phone import mask
from bot.queues import INBOUND
from bot.store import DeadLetter, InboundMessage, audit, pending_dead_letters, session_scope

log = logging.getLogger(__name__)

#: The inbound job's dotted names: today's, and the one jobs of the previous release carry.
INBOUND_JOB_FUNCS = ("bot.gateway.inbound.handle_inbound", "bot.jobs.handle_inbound")


def on_inbound_failure(
    job: Any, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any
) -> None:
    """RQ failure callback: after the last retry, write a dead letter an operator can replay."""
    inbound_id = _inbound_id(job)
    if job.retries_left:
        log.warning(
            kv(
                "inbound_job_retry",
                job_id=job.id,
                inbound_id=inbound_id,
                retries_left=job.retries_left,
                error=exc_type.__name__,
            )
        )
        return
    engine = connections.engine(settings_mod.load())
    try:
        _write_letter(engine, job, f"{exc_type.__name__}: {exc_value}")
    except SQLAlchemyError as exc:
        # Not raised: RQ would record this error in place of the job's own. The job stays in
        # RQ's failed registry, which the sweep and replay-failed read.
        log.error(
            kv(
                "inbound_dead_letter_deferred",
                job_id=job.id,
                inbound_id=inbound_id,
                error=exc_type.__name__,
                database_error=type(exc).__name__,
            )
        )
        return
    log.error(
        kv("inbound_dead_letter", job_id=job.id, inbound_id=inbound_id, error=exc_type.__name__)
    )


def _inbound_id(job: Job) -> int | None:
    args = list(job.args or [])
    return args[0] if args and isinstance(args[0], int) else None


def _write_letter(engine: Engine, job: Job, error: str) -> int:
    """Write the dead letter of a job that failed its last attempt; return its id."""
    error = error[:2000]
    with session_scope(engine) as session:
        letter = DeadLetter(
            kind="inbound",
            job_id=job.id,
            func=job.func_name,
            args=json.dumps(list(job.args or [])),
            inbound_message_id=_inbound_id(job),
            error=error,
            attempts=int(job.meta.get("attempts_allowed", 1)) - int(job.retries_left or 0),
        )
        session.add(letter)
        session.flush()
        audit(session, "worker", "dead_letter", str(letter.id), job_id=job.id, error=error[:200])
        return int(letter.id)


# --------------------------------------------------------------------------- RQ's registry


def failed_without_letter(conn: redis.Redis, engine: Engine) -> list[Job]:
    """Inbound jobs in RQ's failed registry that have no dead-letter row, oldest first."""
    ids = FailedJobRegistry(INBOUND, connection=conn).get_job_ids()
    if not ids:
        return []
    with session_scope(engine) as session:
        written = set(
            session.execute(select(DeadLetter.job_id).where(DeadLetter.job_id.in_(ids))).scalars()
        )
    jobs = Job.fetch_many([i for i in ids if i not in written], connection=conn)
    return [job for job in jobs if job is not None and job.func_name in INBOUND_JOB_FUNCS]


def _last_error(job: Job) -> str:
    """The ``Type: message`` line of the job's recorded exception (the last one raised)."""
    result = job.latest_result()
    lines = (result.exc_string or "").splitlines() if result is not None else []
    # After the last traceback's indented frames comes the exception's own line.
    for line in lines[_last_index(lines, "Traceback (most recent call last):") + 1 :]:
        if line.strip() and not line.startswith(" "):
            return line
    return "failed (no error recorded)"


def _last_index(lines: list[str], wanted: str) -> int:
    found = [i for i, line in enumerate(lines) if line.startswith(wanted)]
    return found[-1] if found else -1


def write_missing_dead_letters(
    engine: Engine, conn: redis.Redis, echo: Callable[[str], Any] | None = None
) -> int:
    """Write the dead letters a database outage left in RQ's failed registry; return how many."""
    count = 0
    for job in failed_without_letter(conn, engine):
        letter_id = _write_letter(engine, job, _last_error(job))
        count += 1
        log.warning(
            kv(
                "inbound_dead_letter_written_late",
                job_id=job.id,
                inbound_id=_inbound_id(job),
                dead_letter=letter_id,
            )
        )
        if echo is not None:
            echo(f"dead letter {letter_id} written for job {job.id} from RQ's failed registry")
    return count


# --------------------------------------------------------------------------- replay


def _describe(row: InboundMessage | None) -> tuple[str, str]:
    """Who sent a message (masked) and the start of its text."""
    if row is None:
        return "-", ""
    preview = (row.body[:40] + "…") if len(row.body) > 40 else row.body
    return f"{row.channel}:{mask(row.from_number)}", preview


def replay_dead_letters(
    cfg: settings_mod.Settings,
    ids: list[int] | None = None,
    *,
    dry_run: bool = False,
    echo: Any = print,
) -> int:
    """Re-enqueue dead-lettered inbound messages (in the order they failed); return how many.

    Jobs that failed while the database was down are in RQ's failed registry only: their dead
    letters are written first (a dry run lists them). ``ids`` picks dead letters by id.
    """
    engine = connections.engine(cfg)
    conn = connections.redis(cfg) if cfg.redis_url else None
    count = 0
    if conn is None:
        echo("REDIS_URL is not set: RQ's failed-job registry was not read")
    elif not ids and dry_run:
        for job in failed_without_letter(conn, engine):
            inbound_id = _inbound_id(job)
            with session_scope(engine) as session:
                row = session.get(InboundMessage, inbound_id) if inbound_id is not None else None
                who, preview = _describe(row)
            echo(
                f"failed job {job.id} (in RQ's failed registry only, no dead letter yet): "
                f"inbound {inbound_id} from {who}: {_last_error(job)[:120]!r} text={preview!r}"
            )
            count += 1
    elif not ids:
        write_missing_dead_letters(engine, conn, echo)
    with session_scope(engine) as session:
        for letter in pending_dead_letters(session, ids):
            row = (
                session.get(InboundMessage, letter.inbound_message_id)
                if letter.inbound_message_id is not None
                else None
            )
            who, preview = _describe(row)
            echo(
                f"dead letter {letter.id}: inbound {letter.inbound_message_id} from {who} "
                f"failed {letter.failed_at:%Y-%m-%d %H:%M:%S} UTC after {letter.attempts} "
                f"attempt(s): {letter.error[:120]!r} text={preview!r}"
            )
            if row is None:
                echo(f"  skipped: inbound message {letter.inbound_message_id} no longer exists")
                continue
            count += 1
            if dry_run or conn is None:
                continue
            job = enqueue_inbound(
                conn,
                row.id,
                row.channel,
                row.from_number,
                job_id=job_id_for(row.id, f"-replay{letter.id}"),
            )
            letter.replayed_at = utcnow()
            letter.replay_job_id = job.id
            audit(session, "cli", "replay_dead_letter", str(letter.id), job_id=job.id)
            echo(f"  enqueued as job {job.id}")
    return count
