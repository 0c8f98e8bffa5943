"""Twilio message statuses: their order, and recording a callback without ever moving backwards."""

from __future__ import annotations

import logging

import redis
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.logfmt import kv
from bot.store import OutboundMessage, session_scope, utcnow

log = logging.getLogger(__name__)

#: Our own statuses for a message Twilio has not given a sid for yet (see bot.twilio_client).
PENDING = "pending"
#: An attempt failed with Twilio's answer (429, 5xx, 401/403): nothing was accepted.
RETRYING = "retrying"
#: A request to Twilio is (or was, if its worker died) under way: the message may be accepted.
IN_FLIGHT = "in_flight"
#: A request got no answer (timeout, dropped connection): Twilio may have accepted it.
UNCONFIRMED = "unconfirmed"

#: Progress of a message; a callback may only move a message to a higher rank.
RANK = {
    PENDING: 0,
    RETRYING: 0,
    IN_FLIGHT: 0,
    UNCONFIRMED: 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 2,
    "sending": 3,
    "sent": 4,
    "delivered": 5,
    "read": 6,
}
#: Statuses after which nothing changes any more.
TERMINAL = frozenset({"failed", "undelivered", "canceled"})
#: Every status a callback may carry.
KNOWN = frozenset(RANK) | TERMINAL
#: Callbacks that arrive before ``send`` has stored the message's sid wait here (a Redis hash).
EARLY_KEY = "bijli:status:early:{sid}"
#: Seconds an early callback is kept.
EARLY_TTL = 3600


def allowed_predecessors(new: str) -> list[str]:
    """Statuses a message may hold for ``new`` to replace it."""
    if new in TERMINAL:
        # A delivered or read message cannot fail afterwards; a late failure is stale.
        return [s for s, rank in RANK.items() if rank < RANK["delivered"]]
    return [s for s, rank in RANK.items() if rank < RANK[new]]


def record_status(engine: Engine, sid: str, status: str, error_code: int | None = None) -> str:
    """Apply a status to the message with Twilio ``sid``: ``updated``, ``stale`` or ``unknown``."""
    status = status.lower()
    if status not in KNOWN:
        log.warning(kv("twilio_status_unknown_value", sid=sid, status=status))
        return "stale"
    with session_scope(engine) as session:
        result = session.execute(
            update(OutboundMessage)
            .where(
                OutboundMessage.twilio_sid == sid,
                OutboundMessage.status.in_(allowed_predecessors(status)),
            )
            .values(status=status, error_code=error_code, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            return "updated"
        exists = session.execute(
            select(OutboundMessage.id).where(OutboundMessage.twilio_sid == sid)
        ).first()
    return "stale" if exists else "unknown"


def adopt_by_key(
    engine: Engine, key: str, sid: str, status: str, error_code: int | None = None
) -> str:
    """Give ``sid`` to the message sent under idempotency ``key`` if it has none yet.

    A status callback carries the key in its URL (``send`` puts it there), so a message whose
    send timed out after Twilio accepted it still learns its sid: ``adopted``, ``unknown`` (no
    such key), or ``other_sid`` when the message already holds a different sid, which means
    Twilio accepted the same message twice.
    """
    status = status.lower()
    values: dict[str, object] = {"twilio_sid": sid, "updated_at": utcnow()}
    if status in KNOWN:
        values.update(status=status, error_code=error_code)
    try:
        with session_scope(engine) as session:
            result = session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.idempotency_key == key, OutboundMessage.twilio_sid.is_(None))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount:
                return "adopted"
            held = session.execute(
                select(OutboundMessage.twilio_sid).where(OutboundMessage.idempotency_key == key)
            ).first()
    except IntegrityError:
        # send() stored this very sid between our two statements.
        return record_status(engine, sid, status, error_code)
    if held is None:
        return "unknown"
    if held[0] == sid:
        return record_status(engine, sid, status, error_code)
    log.warning(kv("twilio_second_sid_for_one_message", key=key, sid=sid, kept=held[0]))
    return "other_sid"


def remember_early(conn: redis.Redis, sid: str, status: str, error_code: int | None) -> None:
    """Keep a callback for a sid that no row holds yet (``send`` applies it once it has the sid)."""
    key = EARLY_KEY.format(sid=sid)
    pipe = conn.pipeline()
    pipe.hset(key, status.lower(), "" if error_code is None else str(error_code))
    pipe.expire(key, EARLY_TTL)
    pipe.execute()


def apply_early(conn: redis.Redis, engine: Engine, sid: str) -> None:
    """Apply, in order, callbacks that came before ``sid`` was stored (kept until a row has it)."""
    key = EARLY_KEY.format(sid=sid)
    pending = conn.hgetall(key)
    if not pending:
        return
    entries = sorted(
        ((k.decode(), v.decode()) for k, v in pending.items()),
        key=lambda kv_: 100 if kv_[0] in TERMINAL else RANK.get(kv_[0], 0),
    )
    outcomes = [
        record_status(engine, sid, status, int(code) if code else None) for status, code in entries
    ]
    if "unknown" not in outcomes:
        conn.delete(key)
