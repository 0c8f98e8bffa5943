"""Twilio's webhooks: ``POST /twilio/messages`` (SMS and WhatsApp in) and ``POST /twilio/status``.

The webhook checks the signature, drops Twilio's retries of a message it already has, stores
the message and enqueues a job on the ``inbound`` queue (in the sender's order: see
:mod:`bot.gateway.ordering`), then answers empty TwiML at once.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

import redis
from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from twilio.request_validator import RequestValidator

from bot import connections
from bot import delivery_status as status_mod
from bot.connections import RedisNotConfigured
from bot.gateway import texts
from bot.gateway.ordering import PROFILE_KEY, PROFILE_TTL, enqueue_inbound, job_id_for
from bot.logfmt import kv
from bot.phone import mask, parse_address
from bot.settings import Settings
from bot.store import InboundMessage, session_scope
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint("gateway", __name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: A MessageSid seen in the last this-many seconds is a Twilio retry (Twilio retries for hours).
DEDUPE_TTL = 48 * 3600
DEDUPE_KEY = "bijli:inbound:sid:{sid}"
#: Longest body stored; Twilio's own limit is 1,600 characters.
MAX_STORED_BODY = 4000
#: Seconds Twilio is asked to wait before retrying when Redis or the database is down.
RETRY_AFTER = 5


# --------------------------------------------------------------------------- signature


def signature_valid(cfg: Settings) -> bool:
    """True when ``X-Twilio-Signature`` signs PUBLIC_BASE_URL + path (+ query) and the form."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = cfg.public_base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return bool(RequestValidator(cfg.twilio_auth_token).validate(url, request.form, signature))


def _forbidden(kind: str) -> Response:
    # The body may be someone's message: log only where it came from.
    log.warning(
        kv(
            "twilio_signature_invalid",
            path=request.path,
            kind=kind,
            remote=request.remote_addr,
            has_signature="X-Twilio-Signature" in request.headers,
        )
    )
    return Response("invalid signature", status=403, mimetype="text/plain")


def twiml(message: str | None = None) -> Response:
    """A TwiML answer: empty, or one reply message."""
    if message is None:
        xml = EMPTY_TWIML
    else:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Response><Message>{escape(message)}</Message></Response>"
        )
    return Response(xml, status=200, mimetype="text/xml")


def _unavailable(event: str, exc: BaseException) -> Response:
    log.error(kv(event, error=type(exc).__name__))
    response = Response("temporarily unavailable", status=503, mimetype="text/plain")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def _int(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


# --------------------------------------------------------------------------- inbound


@bp.post("/twilio/messages")
def messages() -> ResponseReturnValue:
    """Twilio's incoming-message webhook."""
    cfg = app_settings()
    if not signature_valid(cfg):
        return _forbidden("message")
    form = request.form
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not sid or len(sid) > 40:
        log.warning(kv("twilio_message_without_sid", sid_len=len(sid)))
        return Response("MessageSid missing", status=400, mimetype="text/plain")
    sender = parse_address(form.get("From"))
    if sender.e164 is None:
        log.info(
            kv(
                "inbound_refused_not_indian_mobile",
                sid=sid,
                sender=mask(sender.raw),
                channel=sender.channel,
            )
        )
        # A clear answer, straight in TwiML: nothing is stored or queued for such a sender.
        return twiml(texts.bilingual("not_indian_mobile") if sender.raw else None)
    body = (form.get("Body") or "").replace("\x00", "")[:MAX_STORED_BODY]
    num_media = _int(form.get("NumMedia"))
    profile_name = (form.get("ProfileName") or "")[:100]

    try:
        conn = connections.redis(cfg)
        dedupe_key = DEDUPE_KEY.format(sid=sid)
        if not conn.set(dedupe_key, "1", nx=True, ex=DEDUPE_TTL):
            log.info(kv("inbound_duplicate", sid=sid, sender=mask(sender.e164)))
            return twiml()
        try:
            inbound_id, created, processed = _store_inbound(
                connections.engine(cfg), sid, sender.channel, sender.e164, body, num_media
            )
            job_id = job_id_for(inbound_id)
            if created or (not processed and not Job.exists(job_id, connection=conn)):
                # A new message, or one stored by an attempt that failed before enqueueing it.
                if profile_name:
                    # Kept beside the job, not in it: jobs carry only ids and E.164 numbers.
                    conn.set(PROFILE_KEY.format(id=inbound_id), profile_name, ex=PROFILE_TTL)
                enqueue_inbound(conn, inbound_id, sender.channel, sender.e164)
            else:
                log.info(kv("inbound_duplicate_row", sid=sid, inbound_id=inbound_id))
        except BaseException:
            # Let Twilio's retry of this request go through the whole path again.
            _forget(conn, dedupe_key)
            raise
    except (redis.RedisError, RedisNotConfigured) as exc:
        return _unavailable("inbound_redis_unavailable", exc)
    except SQLAlchemyError as exc:
        return _unavailable("inbound_database_unavailable", exc)
    log.info(
        kv(
            "inbound_accepted",
            sid=sid,
            inbound_id=inbound_id,
            sender=mask(sender.e164),
            channel=sender.channel,
            chars=len(body),
            media=num_media,
        )
    )
    return twiml()


def _forget(conn: redis.Redis, key: str) -> None:
    try:
        conn.delete(key)
    except redis.RedisError as exc:
        log.warning(kv("inbound_dedupe_key_not_cleared", error=type(exc).__name__))


def _store_inbound(
    engine: Engine, sid: str, channel: str, mobile: str, body: str, num_media: int
) -> tuple[int, bool, bool]:
    """Insert the message; return (id, created, already processed)."""
    try:
        with session_scope(engine) as session:
            row = InboundMessage(
                message_sid=sid, channel=channel, from_number=mobile, body=body, num_media=num_media
            )
            session.add(row)
            session.flush()
            return int(row.id), True, False
    except IntegrityError:
        with session_scope(engine) as session:
            existing = session.execute(
                select(InboundMessage).where(InboundMessage.message_sid == sid)
            ).scalar_one()
            return int(existing.id), False, existing.processed_at is not None


# --------------------------------------------------------------------------- status callbacks


@bp.post("/twilio/status")
def message_status() -> ResponseReturnValue:
    """Twilio's message status callback: record it, never moving a status backwards."""
    cfg = app_settings()
    if not signature_valid(cfg):
        return _forbidden("status")
    form = request.form
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    value = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not sid or not value:
        return Response("MessageSid and MessageStatus required", status=400, mimetype="text/plain")
    error_code = _int(form.get("ErrorCode")) or None
    key = request.args.get("key")
    try:
        engine = connections.engine(cfg)
        outcome = status_mod.record_status(engine, sid, value, error_code)
        if outcome == "unknown" and key:
            # The send this message came from may have timed out before it learnt the sid.
            outcome = status_mod.adopt_by_key(engine, key, sid, value, error_code)
        if outcome == "unknown":
            # The send that made this message may not have stored its sid yet; if it stored it
            # just now, after we looked, apply the status here rather than wait for it.
            conn = connections.redis(cfg)
            status_mod.remember_early(conn, sid, value, error_code)
            status_mod.apply_early(conn, engine, sid)
    except (redis.RedisError, RedisNotConfigured) as exc:
        return _unavailable("status_redis_unavailable", exc)
    except SQLAlchemyError as exc:
        return _unavailable("status_database_unavailable", exc)
    log.info(kv("twilio_status", sid=sid, status=value, error_code=error_code, outcome=outcome))
    return Response("", status=204)
