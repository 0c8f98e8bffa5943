"""Twilio message statuses: their order, and recording a callback without ever moving backwards.

Statuses feed each campaign's funnel (queued → sent → delivered → read, or failed/undelivered
with Twilio's error code). A campaign's WhatsApp message that ends ``undelivered``, or ``failed``
with an error meaning the person cannot get it on WhatsApp (:data:`SMS_FALLBACK_ERRORS`), is
sent again by SMS, once: :func:`enqueue_sms_fallback` queues the notifier's job
(``notifier.jobs.send_sms_fallback``) by its dotted name (the core never imports the notifier),
and the SMS has an idempotency key of its own (the WhatsApp message's key + ``:sms``), so however
many callbacks or retries come, one SMS goes. A callback that stored its status while Redis was
down could not queue the fallback, and Twilio does not post it again: the cron's campaign sweep
(:func:`queue_missed_fallbacks`) queues those.

Twilio posts about three callbacks for every message (queued, sent, delivered; read on
WhatsApp), and writing each at once cost the web process most of its CPU per reply. So only the
ones something acts on are written at once: the terminal statuses (``failed``, ``undelivered``,
``canceled``), which drive the SMS fallback and the inbox's retry button. The others only move a
funnel count or a tick: the webhook parks them in a Redis hash (:func:`defer`, one round trip)
and a job on the worker writes them in one transaction a couple of seconds later
(:func:`flush`). The hash holds one field per message and status, so a repeated callback is one
field and several statuses of one message are written as the highest. A field is removed only
after the transaction that wrote it committed; a flush that dies half-way leaves them for the
next one, which writes them again (a status never moves backwards, so writing twice is
harmless). What a Redis crash can lose is what its append-only file had not yet written (at
most a second with ``appendfsync everysec``): queued, sent, delivered or read of messages whose
later status then does not arrive, a tick or a funnel count, never a fallback or a send.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid

import redis
from rq import Queue, Retry
from sqlalchemy import bindparam, exists, literal_column, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from bot.logfmt import kv
from bot.queues import CAMPAIGNS, NOTIFICATIONS
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

#: WhatsApp errors after which the message can only reach the person by SMS (Twilio's codes; the
#: WhatsApp codes they stand for in brackets).
SMS_FALLBACK_ERRORS = {
    63003: "not on WhatsApp: the channel could not find the To address (1006, 1013, 1021)",
    63016: "outside the 24-hour window, and the message was not a template (470)",
    63024: "invalid message recipient: not eligible for this message (1002, 1026)",
    63032: "WhatsApp will not deliver to this user (472)",
}
#: Appended to a WhatsApp message's idempotency key for its SMS fallback.
FALLBACK_SUFFIX = ":sms"
#: The notifier's job that sends the fallback, by dotted name; its arguments are the campaign id
#: and the account, the last part of the message's key (``campaign:<id>:<account>``).
SMS_FALLBACK_JOB = "notifier.jobs.send_sms_fallback"
#: Queue it runs on: campaign traffic, served after replies to people.
FALLBACK_QUEUE = CAMPAIGNS
#: Set once a message's fallback is queued, so repeated callbacks queue it once.
FALLBACK_MARK = "bijli:status:sms-fallback:{outbound_id}"
#: Seconds the mark is kept (the fallback's own idempotency key keeps it to one SMS for ever).
FALLBACK_MARK_TTL = 7 * 24 * 3600
#: Seconds the mark lives until its job is queued: if Redis fails (or the process dies) between
#: the two, the mark lapses soon and the cron's sweep queues the fallback.
FALLBACK_CLAIM_TTL = 60
#: How far back :func:`queue_missed_fallbacks` looks for a message whose fallback was never
#: queued: well inside the mark's life, so one it queued before (and that sent nothing: the
#: consumer had paid, the SMS opted out) is still marked and not queued again.
MISSED_FALLBACK_WINDOW = dt.timedelta(hours=48)
#: Fallbacks :func:`queue_missed_fallbacks` queues in one run at most (the next run goes on).
MISSED_FALLBACK_LIMIT = 2000
#: Messages it reads (and marks it looks up in Redis) at a time.
MISSED_FALLBACK_PAGE = 500

#: Statuses a callback parks in Redis for the next flush instead of writing them at once.
DEFERRED = frozenset(RANK) - {PENDING, RETRYING, IN_FLIGHT, UNCONFIRMED}
#: Redis hash of parked callbacks: field ``<sid>|<status>``, value ``<error code>|<key>``.
PARKED_KEY = "bijli:status:parked"
#: Set while a flush is scheduled: the first callback after it expires schedules the next one.
FLUSH_SCHEDULED_KEY = "bijli:status:flush-scheduled"
#: Seconds from a callback being parked to the flush that writes it (and the flag's life).
FLUSH_DELAY = 2
#: The flush job, by dotted name, and the queue it runs on (after replies to people).
FLUSH_JOB = "bot.delivery_status.flush_job"
FLUSH_QUEUE = NOTIFICATIONS
#: Parked callbacks written in one transaction.
FLUSH_BATCH = 500
#: Held by the flush job that is writing; seconds it lives if that job's worker dies.
FLUSH_LOCK_KEY = "bijli:status:flush-lock"
FLUSH_LOCK_TTL = 120
#: Seconds ``bijli cron`` waits between flushes of its own: the backstop for a flush job that
#: was lost (a Redis crash between the flag and the job) or failed every retry (database down).
FLUSH_BACKSTOP_INTERVAL = 60


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
    if "updated" in outcomes:
        enqueue_sms_fallback(conn, engine, sid)


def fallback_retry() -> Retry:
    """RQ's retries of a fallback whose send failed with a 429/5xx, seconds apart."""
    return Retry(max=8, interval=[5, 15, 30, 60, 120, 300, 600, 1800])


def needs_sms_fallback(
    channel: str, status: str, error_code: int | None, key: str, campaign_id: int | None
) -> bool:
    """Whether a message in this state is a campaign WhatsApp message to send again by SMS."""
    if channel != "whatsapp" or campaign_id is None or key.endswith(FALLBACK_SUFFIX):
        return False
    return status == "undelivered" or (status == "failed" and error_code in SMS_FALLBACK_ERRORS)


def enqueue_sms_fallback(conn: redis.Redis, engine: Engine, sid: str) -> bool:
    """Queue the SMS fallback of the message with ``sid`` if its status calls for one; True if so.

    Reads the message's stored state rather than the callback, so it is safe to call after every
    callback; the job runs once per message however often it is called.
    """
    with session_scope(engine) as session:
        row = session.execute(
            select(
                OutboundMessage.id,
                OutboundMessage.channel,
                OutboundMessage.status,
                OutboundMessage.error_code,
                OutboundMessage.idempotency_key,
                OutboundMessage.campaign_id,
            ).where(OutboundMessage.twilio_sid == sid)
        ).first()
    if row is None or not needs_sms_fallback(
        row.channel, row.status, row.error_code, row.idempotency_key, row.campaign_id
    ):
        return False
    campaign_id, account = int(row.campaign_id), row.idempotency_key.rsplit(":", 1)[-1]
    mark = FALLBACK_MARK.format(outbound_id=row.id)
    if not conn.set(mark, sid, nx=True, ex=FALLBACK_CLAIM_TTL):
        return False
    try:
        # The job and the mark's full life in one transaction: a mark that outlives its claim
        # always has a job behind it.
        with conn.pipeline() as pipe:
            Queue(FALLBACK_QUEUE, connection=conn).enqueue(
                SMS_FALLBACK_JOB,
                campaign_id,
                account,
                # The notifier's own id for a recipient's fallback job.
                job_id=f"campaign-{campaign_id}-sms-{account}",
                job_timeout=120,
                retry=fallback_retry(),
                failure_ttl=30 * 24 * 3600,
                pipeline=pipe,
            )
            pipe.expire(mark, FALLBACK_MARK_TTL)
            pipe.execute()
    except redis.RedisError:
        with contextlib.suppress(redis.RedisError):
            conn.delete(mark)  # else it lapses with its claim
        raise
    log.info(
        kv(
            "sms_fallback_queued",
            outbound_id=row.id,
            sid=sid,
            status=row.status,
            error_code=row.error_code,
        )
    )
    return True


def queue_missed_fallbacks(
    conn: redis.Redis,
    engine: Engine,
    *,
    now: dt.datetime | None = None,
    window: dt.timedelta = MISSED_FALLBACK_WINDOW,
    limit: int = MISSED_FALLBACK_LIMIT,
) -> list[int]:
    """Queue the SMS fallbacks that a terminal callback should have queued and did not; the
    outbound ids of the messages whose fallback it queued.

    The callback writes the status first and queues the fallback after; with Redis down in
    between it answers 503, Twilio does not post it again, and nothing else would queue that
    fallback. ``bijli cron`` runs this every few minutes (``notifier.campaigns.sweep_job``):
    campaign WhatsApp messages whose stored state calls for a fallback, that ended within
    ``window``, that have no SMS under their fallback key yet and no mark in Redis, go through
    :func:`enqueue_sms_fallback` as the callback would have sent them. A fallback queued before
    keeps its mark (:data:`FALLBACK_MARK_TTL`, longer than ``window``) whatever its job did,
    so one that waits for its window, or that sent nothing because the consumer had paid, is
    not queued again.

    No index serves it: one on ``status``/``updated_at`` would stop PostgreSQL from updating the
    row in place (HOT) on each of the three status writes of every message, to save a scan of
    ``outbound_messages`` every few minutes (0.2 s at 5.3 lakh rows, 0.4 s at 26.5 lakh).
    """
    if window.total_seconds() >= FALLBACK_MARK_TTL:
        raise ValueError("the window must be shorter than the fallback mark's life")
    since = (now or utcnow()) - window
    message, sms = OutboundMessage, aliased(OutboundMessage)
    query = (
        select(
            message.id,
            message.twilio_sid,
            message.channel,
            message.status,
            message.error_code,
            message.idempotency_key,
            message.campaign_id,
        )
        .where(
            message.status.in_(("failed", "undelivered")),
            message.updated_at >= since,
            or_(
                message.status == "undelivered",
                message.error_code.in_(sorted(SMS_FALLBACK_ERRORS)),
            ),
            message.channel == "whatsapp",
            message.campaign_id.is_not(None),
            message.twilio_sid.is_not(None),
            ~exists().where(sms.idempotency_key == message.idempotency_key + FALLBACK_SUFFIX),
        )
        # Oldest first: the nearest to leaving the window go before the limit is reached.
        .order_by(message.updated_at, message.id)
        # One pass over the window, read a page at a time (a server-side cursor on PostgreSQL):
        # a query per page would scan the rest of the window again for each page.
        .execution_options(yield_per=MISSED_FALLBACK_PAGE)
    )
    queued: list[int] = []
    with session_scope(engine) as session:
        for rows in session.execute(query).partitions():
            due = [
                r
                for r in rows
                if needs_sms_fallback(
                    r.channel, r.status, r.error_code, r.idempotency_key, r.campaign_id
                )
            ]
            # One round trip for the page's marks: most were queued by their callback.
            pipe = conn.pipeline(transaction=False)
            for r in due:
                pipe.exists(FALLBACK_MARK.format(outbound_id=r.id))
            marked = pipe.execute() if due else []
            for r, is_marked in zip(due, marked, strict=True):
                if not is_marked and enqueue_sms_fallback(conn, engine, r.twilio_sid):
                    queued.append(int(r.id))
                    if len(queued) >= limit:
                        break
            if len(queued) >= limit:
                break
    if queued:
        # Each one is logged by enqueue_sms_fallback (sms_fallback_queued) as well.
        log.info(
            kv(
                "sms_fallback_missed_queued",
                count=len(queued),
                since=since.isoformat(timespec="seconds"),
                outbound_ids=",".join(map(str, queued[:20])),
                more=len(queued[20:]),
            )
        )
    return queued


# --------------------------------------------------------------------------- parked callbacks


def defer(
    conn: redis.Redis, sid: str, status: str, error_code: int | None, key: str | None
) -> None:
    """Park a non-terminal callback for the next flush, and schedule one if none is.

    One round trip, and an RQ enqueue at most once per FLUSH_DELAY. Raises RedisError: the
    caller then writes the status at once.
    """
    status = status.lower()
    pipe = conn.pipeline(transaction=False)
    pipe.hset(PARKED_KEY, f"{sid}|{status}", f"{error_code or ''}|{key or ''}")
    pipe.set(FLUSH_SCHEDULED_KEY, "1", nx=True, ex=FLUSH_DELAY)
    _, first = pipe.execute()
    if first:
        schedule_flush(conn)


def schedule_flush(conn: redis.Redis, delay: float = FLUSH_DELAY) -> None:
    """Queue a flush job ``delay`` seconds from now (RQ's scheduler, in the workers, runs it)."""
    Queue(FLUSH_QUEUE, connection=conn).enqueue_in(
        dt.timedelta(seconds=delay),
        FLUSH_JOB,
        job_timeout=120,
        retry=Retry(max=3, interval=[5, 30, 120]),
        result_ttl=0,
        failure_ttl=24 * 3600,
    )


def parked_count(conn: redis.Redis) -> int:
    """Callbacks parked and not yet written."""
    return int(conn.hlen(PARKED_KEY))


def flush(conn: redis.Redis, engine: Engine, batch: int = FLUSH_BATCH) -> int:
    """Write every parked callback to the database; return how many fields were written.

    Each page of fields is written in one transaction and removed from the hash only after it
    committed, and only if it still holds the value that was written. Several flushes may run at
    once: at worst both write a page, which changes nothing the second time.
    """
    written = 0
    cursor = 0
    while True:
        cursor, page = conn.hscan(PARKED_KEY, cursor, count=batch)
        if page:
            fields = {k.decode(): v.decode() for k, v in page.items()}
            apply_parked(conn, engine, fields)
            _forget(conn, fields)
            written += len(fields)
        if cursor == 0:
            break
    if written:
        log.info(kv("twilio_status_flushed", callbacks=written))
    return written


def flush_job() -> int:
    """RQ job: :func:`flush` on this process's connections, one flush at a time.

    Flush jobs queue up behind a backlog of replies and then start together; only one writes.
    The others schedule one more flush (at most one: the flag), for the callbacks parked after
    the running flush's last page. A flush whose worker died holds the lock until it lapses;
    its fields wait in Redis till then.
    """
    from bot import connections

    cfg = connections.settings()
    conn = connections.redis(cfg)
    token = uuid.uuid4().hex
    if not conn.set(FLUSH_LOCK_KEY, token, nx=True, ex=FLUSH_LOCK_TTL):
        if conn.set(FLUSH_SCHEDULED_KEY, "1", nx=True, ex=FLUSH_DELAY):
            schedule_flush(conn)
        return 0
    try:
        return flush(conn, connections.engine(cfg))
    finally:
        conn.register_script(_RELEASE_SCRIPT)(keys=[FLUSH_LOCK_KEY], args=[token])


def apply_parked_for(conn: redis.Redis, engine: Engine, sid: str) -> None:
    """Write the parked callbacks of one message now (before a terminal status is written)."""
    names = [f"{sid}|{status}" for status in sorted(DEFERRED)]
    values = conn.hmget(PARKED_KEY, names)
    fields = {n: v.decode() for n, v in zip(names, values, strict=True) if v is not None}
    if fields:
        apply_parked(conn, engine, fields)
        _forget(conn, fields)


#: Deletes the lock only while it is still this flush's.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
#: Removes each field that still holds the value given beside it (atomically, in Redis).
_FORGET_SCRIPT = """
local removed = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return removed
"""


def _forget(conn: redis.Redis, fields: dict[str, str]) -> None:
    """Remove written fields; a field parked again with another value since stays."""
    args = [item for pair in fields.items() for item in pair]
    conn.register_script(_FORGET_SCRIPT)(keys=[PARKED_KEY], args=args)


def _parse(fields: dict[str, str]) -> dict[str, tuple[str, int | None, str | None]]:
    """The highest parked status of each sid: sid -> (status, error code, key)."""
    best: dict[str, tuple[str, int | None, str | None]] = {}
    for name, value in fields.items():
        sid, _, status = name.rpartition("|")
        code, _, key = value.partition("|")
        if status not in DEFERRED or not sid:
            continue
        error_code = int(code) if code.isdigit() else None
        held = best.get(sid)
        if held is None or RANK[status] > RANK[held[0]]:
            # A key from any of the message's callbacks will do: they all carry the same one.
            best[sid] = (status, error_code, key or (held[2] if held else None))
    return best


def apply_parked(conn: redis.Redis, engine: Engine, fields: dict[str, str]) -> None:
    """Write parked callbacks: the messages that hold their sid in one transaction.

    A sid no row holds yet goes the way a callback went when it was written at once: adopted by
    the idempotency key its URL carried, else kept as an early callback for ``send``.
    """
    best = _parse(fields)
    if not best:
        return
    now = utcnow()
    by_status: dict[str, list[dict[str, object]]] = {}
    for sid, (status, code, _) in best.items():
        by_status.setdefault(status, []).append({"b_sid": sid, "b_code": code, "b_now": now})
    table = OutboundMessage.__table__
    with session_scope(engine) as session:
        for status, params in by_status.items():
            # One executemany per status: a handful of statements for the whole page.
            session.execute(
                update(table)
                .where(
                    table.c.twilio_sid == bindparam("b_sid"),
                    # Our own constants, written into the SQL: executemany takes no expanding IN.
                    table.c.status.in_(
                        [literal_column(f"'{s}'") for s in allowed_predecessors(status)]
                    ),
                )
                .values(
                    status=status, error_code=bindparam("b_code"), updated_at=bindparam("b_now")
                ),
                params,
            )
        held = set(
            session.execute(
                select(OutboundMessage.twilio_sid).where(OutboundMessage.twilio_sid.in_(list(best)))
            ).scalars()
        )
    for sid in [sid for sid in best if sid not in held]:
        status, code, key = best[sid]
        outcome = adopt_by_key(engine, key, sid, status, code) if key else "unknown"
        if outcome == "unknown":
            remember_early(conn, sid, status, code)
            apply_early(conn, engine, sid)
