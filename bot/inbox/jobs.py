"""The inbox's RQ jobs, on the ``notifications`` queue: an agent's reply, notices, timeouts.

Each takes ids and re-reads its rows, so it tolerates a replay and a vanished row. Sends go
through :func:`bot.twilio_client.send` with an idempotency key per reply or notice, so a retry
after a Twilio hiccup (RQ ``Retry``) never sends twice. One conversation's messages go out in
the order they were written: a job whose conversation still has an earlier reply on its way
looks again a moment later (a new scheduled job), rather than overtaking it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import redis
from rq import Callback, Queue, Retry
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import connections, handoffs, twilio_client
from bot import settings as settings_mod
from bot.inbox import texts
from bot.inbox.conversation import NOTICE_KEY, REPLY_KEY
from bot.logfmt import kv
from bot.phone import mask
from bot.queues import NOTIFICATIONS
from bot.store import Handoff, HandoffReply, Operator, session_scope

log = logging.getLogger(__name__)

# Read once when the worker imports the job modules, not per job.
texts.keys()

#: Seconds a send job may run.
JOB_TIMEOUT = 60
#: Back-off between attempts after a Twilio failure, in seconds (about 15 minutes in all).
RETRY_INTERVALS = [5, 15, 60, 180, 600]
#: Seconds before looking again while an earlier message of the conversation is being sent,
#: growing to :data:`MAX_WAIT` (an earlier reply may be in Twilio back-off for minutes).
WAIT = 2
MAX_WAIT = 60
#: After this many looks a message goes out anyway: delivery matters more than order.
MAX_WAIT_ROUNDS = 90
#: Notices a consumer can get when a conversation ends.
NOTICES = (handoffs.BY_AGENT, handoffs.TIMEOUT, handoffs.UNANSWERED)
_NOTICE_TEXT = {
    handoffs.BY_AGENT: "closed",
    handoffs.TIMEOUT: "timeout",
    handoffs.UNANSWERED: "unanswered",
}


def _retry() -> Retry:
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


def _wait(round_: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(WAIT * 2 ** min(round_ - 1, 10), MAX_WAIT))


def enqueue_reply(
    conn: redis.Redis, reply_id: int, round_: int = 0, *, resend: bool = False
) -> Job:
    """Have a worker send agent reply ``reply_id`` (now, or after a wait for an earlier one).

    ``resend`` is an operator's second try: a job id of its own, beside the failed one.
    """
    queue = Queue(NOTIFICATIONS, connection=conn)
    suffix = f"-w{round_}" if round_ else ""
    if resend:
        suffix += f"-r{int(time.time() * 1000)}"
    options: dict[str, Any] = {
        "job_id": f"handoff-reply-{reply_id}{suffix}",
        "job_timeout": JOB_TIMEOUT,
        "retry": _retry(),
        "on_failure": Callback("bot.inbox.jobs.on_reply_failure"),
        "result_ttl": 3600,
        "failure_ttl": 30 * 24 * 3600,
        "description": f"send agent reply {reply_id}",
    }
    if round_:
        return queue.enqueue_in(
            _wait(round_), "bot.inbox.jobs.send_agent_reply", reply_id, round_, **options
        )
    return queue.enqueue("bot.inbox.jobs.send_agent_reply", reply_id, 0, **options)


def enqueue_notice(conn: redis.Redis, handoff_id: int, reason: str, round_: int = 0) -> Job:
    """Have a worker tell the consumer that handoff ``handoff_id`` ended, and why."""
    queue = Queue(NOTIFICATIONS, connection=conn)
    options: dict[str, Any] = {
        "job_id": f"handoff-notice-{handoff_id}" + (f"-w{round_}" if round_ else ""),
        "job_timeout": JOB_TIMEOUT,
        "retry": _retry(),
        "result_ttl": 3600,
        "failure_ttl": 30 * 24 * 3600,
        "description": f"tell the consumer handoff {handoff_id} ended ({reason})",
    }
    if round_:
        return queue.enqueue_in(
            _wait(round_), "bot.inbox.jobs.send_notice", handoff_id, reason, round_, **options
        )
    return queue.enqueue("bot.inbox.jobs.send_notice", handoff_id, reason, 0, **options)


def _earlier_reply_pending(session: Session, handoff_id: int, before: int | None = None) -> bool:
    query = select(HandoffReply.id).where(
        HandoffReply.handoff_id == handoff_id, HandoffReply.status == "queued"
    )
    if before is not None:
        query = query.where(HandoffReply.id < before)
    return session.execute(query.limit(1)).first() is not None


def send_agent_reply(reply_id: int, round_: int = 0) -> str:
    """Send what an agent wrote, with their name before it, on the consumer's channel."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    with session_scope(engine) as session:
        reply = session.get(HandoffReply, reply_id)
        if reply is None:
            log.warning(kv("handoff_reply_vanished", reply_id=reply_id))
            return "vanished"
        if reply.status != "queued":
            return f"already_{reply.status}"
        handoff = session.get(Handoff, reply.handoff_id)
        operator = session.get(Operator, reply.operator_id)
        assert handoff is not None and operator is not None  # foreign keys
        earlier = _earlier_reply_pending(session, handoff.id, before=reply_id)
        channel, mobile = handoff.channel, handoff.mobile
        body = texts.text(
            "agent_reply",
            handoff.language,
            agent=operator.display_name,
            discom=handoff.discom,
            text=reply.body,
        )
    if earlier and round_ < MAX_WAIT_ROUNDS:
        enqueue_reply(conn, reply_id, round_ + 1)
        return "waiting_for_earlier_reply"
    outcome = None
    for part_no, part in enumerate(twilio_client.split_body(body)):
        key = REPLY_KEY.format(id=reply_id) + (f":{part_no}" if part_no else "")
        result = twilio_client.send(
            cfg,
            channel=channel,
            to=mobile,
            body=part,
            idempotency_key=key,
            engine=engine,
            redis_conn=conn,
        )
        outcome = outcome or result
        if result.result == "rejected":
            outcome = result
            break
    assert outcome is not None
    # A permanent refusal, now or on an earlier attempt under the same key (no sid, a code).
    refused = outcome.result == "rejected" or (
        outcome.result == "duplicate" and outcome.twilio_sid is None and outcome.error_code
    )
    with session_scope(engine) as session:
        row = session.get(HandoffReply, reply_id)
        if row is not None:
            row.outbound_message_id = outcome.outbound_id
            row.status = "failed" if refused else "sent"
            row.error_code = outcome.error_code
    log.info(
        kv(
            "handoff_reply_rejected" if refused else "handoff_reply_sent",
            reply_id=reply_id,
            to=mask(mobile),
            channel=channel,
            code=outcome.error_code,
        )
    )
    return "rejected" if refused else outcome.result


def on_reply_failure(
    job: Any, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any
) -> None:
    """RQ failure callback: after the last retry, show the reply as failed to the agent."""
    if job.retries_left:
        return
    reply_id = (job.args or [None])[0]
    if not isinstance(reply_id, int):
        return
    with session_scope(connections.engine(settings_mod.load())) as session:
        row = session.get(HandoffReply, reply_id)
        if row is not None and row.status == "queued":
            row.status = "failed"
    log.error(kv("handoff_reply_failed", reply_id=reply_id, error=exc_type.__name__))


def send_notice(handoff_id: int, reason: str, round_: int = 0) -> str:
    """Tell the consumer the conversation ended (closed, timed out, unanswered): the bot is back."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    with session_scope(engine) as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None:
            return "vanished"
        operator = session.get(Operator, handoff.operator_id) if handoff.operator_id else None
        earlier = _earlier_reply_pending(session, handoff_id)
        body = texts.text(
            _NOTICE_TEXT[reason],
            handoff.language,
            agent=operator.display_name if operator is not None else "",
            discom=handoff.discom,
            minutes=max(cfg.handoff_idle_seconds // 60, 1),
        )
        channel, mobile = handoff.channel, handoff.mobile
    if earlier and round_ < MAX_WAIT_ROUNDS:
        enqueue_notice(conn, handoff_id, reason, round_ + 1)
        return "waiting_for_earlier_reply"
    outcome = twilio_client.send(
        cfg,
        channel=channel,
        to=mobile,
        body=twilio_client.truncate(body, twilio_client.MAX_BODY),
        idempotency_key=NOTICE_KEY.format(id=handoff_id, kind=reason),
        engine=engine,
        redis_conn=conn,
    )
    log.info(kv("handoff_notice", handoff_id=handoff_id, reason=reason, result=outcome.result))
    return outcome.result


def expire_handoff(handoff_id: int) -> str:
    """Close the handoff if its time is up and tell the consumer; else look again later."""
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    with session_scope(engine) as session:
        reason, due = handoffs.expire_if_due(session, cfg, handoff_id)
    if reason is not None:
        enqueue_notice(conn, handoff_id, reason)
        return f"closed:{reason}"
    if due is not None:
        # Something happened since this job was scheduled: the deadline moved.
        handoffs.schedule_expiry(conn, handoff_id, due)
        return "rescheduled"
    return "nothing_to_do"


__all__ = [
    "NOTICES",
    "enqueue_notice",
    "enqueue_reply",
    "expire_handoff",
    "on_reply_failure",
    "send_agent_reply",
    "send_notice",
]
