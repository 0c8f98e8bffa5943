"""Dead letters: an inbound message whose job failed its last retry, and replaying them.

RQ calls :func:`on_inbound_failure` after every failed attempt; after the last one it writes a
:class:`~bot.store.DeadLetter` row that ``bijli replay-failed`` puts back in the sender's queue.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from bot import connections
from bot import settings as settings_mod
from bot.clock import utcnow
from bot.gateway.ordering import enqueue_inbound, job_id_for
from bot.logfmt import kv
from bot.phone import mask
from bot.store import DeadLetter, InboundMessage, audit, pending_dead_letters, session_scope

log = logging.getLogger(__name__)


def on_inbound_failure(
    job: Any, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any
) -> None:
    """RQ failure callback: after the last retry, write a dead letter an operator can replay."""
    args = list(job.args or [])
    inbound_id = args[0] if args and isinstance(args[0], int) else None
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
    error = f"{exc_type.__name__}: {exc_value}"[:2000]
    with session_scope(engine) as session:
        letter = DeadLetter(
            kind="inbound",
            job_id=job.id,
            func=job.func_name,
            args=json.dumps(args),
            inbound_message_id=inbound_id,
            error=error,
            attempts=int(job.meta.get("attempts_allowed", 1)) - int(job.retries_left or 0),
        )
        session.add(letter)
        session.flush()
        audit(session, "worker", "dead_letter", str(letter.id), job_id=job.id, error=error[:200])
    log.error(
        kv("inbound_dead_letter", job_id=job.id, inbound_id=inbound_id, error=exc_type.__name__)
    )


def replay_dead_letters(
    cfg: settings_mod.Settings,
    ids: list[int] | None = None,
    *,
    dry_run: bool = False,
    echo: Any = print,
) -> int:
    """Re-enqueue dead-lettered inbound messages (in the order they failed); return how many."""
    engine = connections.engine(cfg)
    conn = None if dry_run else connections.redis(cfg)
    count = 0
    with session_scope(engine) as session:
        for letter in pending_dead_letters(session, ids):
            row = (
                session.get(InboundMessage, letter.inbound_message_id)
                if letter.inbound_message_id is not None
                else None
            )
            who = f"{row.channel}:{mask(row.from_number)}" if row else "-"
            preview = (
                (row.body[:40] + "…") if row and len(row.body) > 40 else (row.body if row else "")
            )
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
