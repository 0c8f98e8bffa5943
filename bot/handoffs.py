"""A consumer's conversation handed to a person: opened by the bot, held by an agent, closed.

The one place that knows the states (``waiting`` → ``held`` → ``closed``) and their rules, shared
by the action that opens a handoff (bot/actions), the inbound job that routes a held sender's
messages to the agent instead of Rasa (bot/gateway), and the inbox pages and jobs (bot/inbox).

- Opening promises a reply time counted in office hours (:mod:`bot.office_hours`); asking again
  while one is open finds the same handoff.
- While ``waiting`` the bot keeps answering: nobody has taken the conversation yet, and the
  consumer was told so. Once an agent takes it (or replies), it is ``held`` and the bot is quiet.
- A held conversation with no message either way for ``handoff_idle_seconds`` times out; one
  nobody took by its promised time plus that much is closed as ``unanswered``. An RQ job
  scheduled for that moment closes it and tells the consumer (``bot.inbox.jobs``); it re-reads
  the row, so activity in between only makes it reschedule itself.

Every change is a conditional UPDATE or runs on a row locked with ``SELECT … FOR UPDATE``, so two
agents clicking at once, or a reply racing the timeout, leave one consistent outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import redis
from rq import Queue, Retry
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.clock import IST, utcnow
from bot.logfmt import kv
from bot.office_hours import OfficeHours
from bot.phone import mask
from bot.queues import NOTIFICATIONS
from bot.settings import Settings
from bot.store import Handoff, HandoffReply, Operator, audit, holidays_between

log = logging.getLogger(__name__)

WAITING = "waiting"
HELD = "held"
CLOSED = "closed"
#: Why a handoff closed.
BY_AGENT = "agent"
TIMEOUT = "timeout"
UNANSWERED = "unanswered"

#: The inbox's job that closes a handoff whose time is up (named, so the core imports no concern).
EXPIRE_JOB = "bot.inbox.jobs.expire_handoff"
#: Longest consumer text kept as the reason for a handoff.
MAX_REASON = 500


class HandoffError(RuntimeError):
    """A handoff cannot change as asked; the message says why, in an operator's words."""


class HandoffClosed(HandoffError):
    """The handoff is closed already."""


class HeldByAnother(HandoffError):
    """Another agent holds the conversation (an officer or admin may take it over)."""


class NoSuchHandoff(HandoffError):
    """No handoff has that id."""


@dataclass(frozen=True)
class Promise:
    """What the consumer is told: is the office open now, and by when (aware IST) a reply."""

    office_open: bool
    reply_by: dt.datetime


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return _aware(moment).astimezone(dt.timezone.utc).replace(tzinfo=None)


def promise(session: Session, cfg: Settings, now: dt.datetime | None = None) -> Promise:
    """Whether the office is open at ``now`` and when a person will have replied."""
    moment = _aware(now or utcnow())
    hours = OfficeHours.parse(cfg.office_hours)
    today = moment.astimezone(IST).date()
    holidays = holidays_between(session, today, today + dt.timedelta(days=60))
    within = dt.timedelta(seconds=cfg.handoff_reply_seconds)
    return Promise(hours.is_open(moment, holidays), hours.reply_by(moment, within, holidays))


def open_for(session: Session, channel: str, mobile: str, *, lock: bool = False) -> Handoff | None:
    """The sender's handoff that is not closed yet, if any."""
    query = select(Handoff).where(
        Handoff.channel == channel, Handoff.mobile == mobile, Handoff.state != CLOSED
    )
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def open_handoff(
    session: Session,
    cfg: Settings,
    *,
    channel: str,
    mobile: str,
    discom: str,
    language: str,
    reason: str = "",
    new_account_no: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Handoff, bool]:
    """Put the sender's conversation in the inbox; return it and whether it is new.

    Asking again while one is open returns that one; a promise that has passed is renewed, so
    the consumer is never told a time already gone.
    """
    moment = _naive_utc(now or utcnow())
    existing = open_for(session, channel, mobile, lock=True)
    if existing is None:
        told = promise(session, cfg, moment)
        row = Handoff(
            channel=channel,
            mobile=mobile,
            discom=discom,
            language=language,
            new_account_no=new_account_no,
            reason=reason[:MAX_REASON],
            state=WAITING,
            opened_at=moment,
            promised_by=_naive_utc(told.reply_by),
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            # Another replica opened it a moment ago (the partial unique index said so).
            existing = open_for(session, channel, mobile, lock=True)
            if existing is None:
                raise
        else:
            audit(session, mask(mobile), "handoff_opened", str(row.id), channel=channel)
            log.info(kv("handoff_opened", handoff_id=row.id, sender=mask(mobile), channel=channel))
            return row, True
    if existing.state == WAITING and existing.promised_by <= moment:
        existing.promised_by = _naive_utc(promise(session, cfg, moment).reply_by)
    return existing, False


def deadline(handoff: Handoff, cfg: Settings) -> dt.datetime:
    """When (naive UTC) an open handoff times out if nothing happens before."""
    idle = dt.timedelta(seconds=cfg.handoff_idle_seconds)
    if handoff.state == WAITING:
        return handoff.promised_by + idle
    moments = [handoff.taken_at, handoff.last_consumer_at, handoff.last_agent_at]
    return max(m for m in moments if m is not None) + idle


@dataclass(frozen=True)
class Routing:
    """Where a sender's new message goes: to the agent holding the conversation, or the bot."""

    to_agent: bool
    handoff_id: int | None = None
    #: Held, but past its deadline: the expiry job should run now.
    overdue: bool = False


def route_to_agent(
    session: Session, cfg: Settings, channel: str, mobile: str, now: dt.datetime | None = None
) -> Routing:
    """Whether an agent holds this sender's conversation (noting the new message if so).

    A held handoff past its deadline no longer holds: the bot answers, and the expiry job (which
    the caller runs again, in case it was lost) closes it and tells the consumer.
    """
    moment = _naive_utc(now or utcnow())
    handoff = open_for(session, channel, mobile, lock=True)
    if handoff is None or handoff.state != HELD:
        return Routing(False)
    if deadline(handoff, cfg) <= moment:
        return Routing(False, handoff.id, overdue=True)
    handoff.last_consumer_at = moment
    return Routing(True, handoff.id)


def get(session: Session, handoff_id: int, *, lock: bool = False) -> Handoff:
    """The handoff ``handoff_id``, or :class:`NoSuchHandoff`."""
    query = select(Handoff).where(Handoff.id == handoff_id)
    if lock:
        query = query.with_for_update()
    handoff = session.execute(query).scalar_one_or_none()
    if handoff is None:
        raise NoSuchHandoff(f"handoff {handoff_id} does not exist")
    return handoff


def _holder_name(session: Session, handoff: Handoff) -> str:
    holder = session.get(Operator, handoff.operator_id) if handoff.operator_id else None
    return holder.display_name if holder is not None else "another agent"


def take(
    session: Session,
    handoff_id: int,
    operator: Operator,
    *,
    override: bool = False,
    now: dt.datetime | None = None,
) -> Handoff:
    """Give the conversation to ``operator``; ``override`` takes it from another agent."""
    moment = _naive_utc(now or utcnow())
    handoff = get(session, handoff_id, lock=True)
    if handoff.state == CLOSED:
        raise HandoffClosed("this conversation is closed")
    if handoff.state == HELD and handoff.operator_id == operator.id:
        return handoff
    if handoff.state == HELD and not override:
        raise HeldByAnother(f"{_holder_name(session, handoff)} is answering this conversation")
    taken_from = handoff.operator_id if handoff.state == HELD else None
    handoff.state = HELD
    handoff.operator_id = operator.id
    handoff.taken_at = moment
    audit(
        session,
        f"operator:{operator.username}",
        "handoff_taken",
        str(handoff.id),
        taken_from=taken_from,
    )
    log.info(kv("handoff_taken", handoff_id=handoff.id, operator=operator.username))
    return handoff


def add_reply(
    session: Session,
    handoff_id: int,
    operator: Operator,
    body: str,
    form_token: str,
    *,
    override: bool = False,
    now: dt.datetime | None = None,
) -> tuple[HandoffReply, bool]:
    """Record an agent's reply (taking a waiting conversation); return it and whether it is new.

    The form's token makes a form posted twice (a double click, a browser resend) one reply.
    """
    moment = _naive_utc(now or utcnow())
    found = session.execute(
        select(HandoffReply).where(HandoffReply.form_token == form_token)
    ).scalar_one_or_none()
    if found is not None:
        return found, False
    handoff = take(session, handoff_id, operator, override=override, now=moment)
    reply = HandoffReply(
        handoff_id=handoff.id,
        operator_id=operator.id,
        body=body,
        form_token=form_token,
        status="queued",
        created_at=moment,
    )
    session.add(reply)
    session.flush()
    handoff.last_agent_at = moment
    audit(
        session, f"operator:{operator.username}", "handoff_reply", str(handoff.id), reply=reply.id
    )
    return reply, True


def close(
    session: Session,
    handoff_id: int,
    reason: str,
    *,
    operator: Operator | None = None,
    override: bool = False,
    now: dt.datetime | None = None,
) -> Handoff:
    """Close the handoff (an agent's close, or a timeout); the bot answers the sender again."""
    moment = _naive_utc(now or utcnow())
    handoff = get(session, handoff_id, lock=True)
    if handoff.state == CLOSED:
        raise HandoffClosed("this conversation is closed")
    if (
        operator is not None
        and handoff.state == HELD
        and handoff.operator_id != operator.id
        and not override
    ):
        raise HeldByAnother(f"{_holder_name(session, handoff)} is answering this conversation")
    # Conditional, so that of two closers (an agent and the timeout) exactly one wins.
    changed = session.execute(
        update(Handoff)
        .where(Handoff.id == handoff.id, Handoff.state != CLOSED)
        .values(state=CLOSED, closed_at=moment, close_reason=reason)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    if not changed:
        raise HandoffClosed("this conversation is closed")
    actor = f"operator:{operator.username}" if operator is not None else "worker"
    audit(session, actor, "handoff_closed", str(handoff.id), reason=reason)
    log.info(
        kv("handoff_closed", handoff_id=handoff.id, reason=reason, sender=mask(handoff.mobile))
    )
    return handoff


def expire_if_due(
    session: Session, cfg: Settings, handoff_id: int, now: dt.datetime | None = None
) -> tuple[str | None, dt.datetime | None]:
    """Close the handoff if its time is up: (close reason, None); else (None, next deadline).

    ``(None, None)`` when it is closed already or gone.
    """
    moment = _naive_utc(now or utcnow())
    handoff = session.execute(
        select(Handoff).where(Handoff.id == handoff_id).with_for_update()
    ).scalar_one_or_none()
    if handoff is None or handoff.state == CLOSED:
        return None, None
    due = deadline(handoff, cfg)
    if due > moment:
        return None, due
    reason = TIMEOUT if handoff.state == HELD else UNANSWERED
    close(session, handoff.id, reason, now=moment)
    return reason, None


def schedule_expiry(conn: redis.Redis, handoff_id: int, at: dt.datetime) -> None:
    """Have a worker run the expiry job of ``handoff_id`` at ``at`` (naive UTC).

    The job id names the moment, so scheduling the same moment twice makes one job.
    """
    when = _aware(at)
    Queue(NOTIFICATIONS, connection=conn).enqueue_at(
        when,
        EXPIRE_JOB,
        handoff_id,
        job_id=f"handoff-expire-{handoff_id}-{int(when.timestamp())}",
        job_timeout=60,
        retry=Retry(max=3, interval=[10, 60, 300]),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"close handoff {handoff_id} if its time is up",
    )


__all__ = [
    "BY_AGENT",
    "CLOSED",
    "EXPIRE_JOB",
    "HELD",
    "TIMEOUT",
    "UNANSWERED",
    "WAITING",
    "HandoffClosed",
    "HandoffError",
    "HeldByAnother",
    "NoSuchHandoff",
    "Promise",
    "Routing",
    "add_reply",
    "close",
    "deadline",
    "expire_if_due",
    "get",
    "open_for",
    "open_handoff",
    "promise",
    "route_to_agent",
    "schedule_expiry",
    "take",
]
