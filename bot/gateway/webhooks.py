"""Twilio's webhooks: ``POST /twilio/messages`` (SMS and WhatsApp in) and ``POST /twilio/status``.

The message webhook checks the signature and stores the message before it answers: the
database is the inbox, and its unique MessageSid turns Twilio's retries into no-ops. It then
enqueues a job on the ``inbound`` queue (in the sender's order: see :mod:`bot.gateway.ordering`)
and answers empty TwiML at once. With Redis down the message is stored all the same and the
answer is still 200: the inbox sweep (:mod:`bot.gateway.inbox`) enqueues it later. Only a
database that cannot store it gets a 503, which Twilio retries when the webhook URL carries the
connection overrides the README gives (by default Twilio does not retry a 5xx).
"""

from __future__ import annotations

import logging
import re
from xml.sax.saxutils import escape

import redis
from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from bot import connections
from bot import delivery_status as status_mod
from bot.connections import RedisNotConfigured
from bot.gateway import inbox, texts
from bot.gateway.ordering import PROFILE_KEY, PROFILE_TTL, ensure_enqueued
from bot.logfmt import kv
from bot.phone import mask, parse_address
from bot.settings import Settings
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint("gateway", __name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MESSAGES_PATH = "/twilio/messages"

#: What a Twilio MessageSid looks like (``SM`` or ``MM`` and 32 hex digits; looser here).
SID_SHAPE = re.compile(r"[A-Za-z0-9]{2,40}")
#: Longest body stored; Twilio's own limit is 1,600 characters.
MAX_STORED_BODY = 4000
#: Most media Twilio attaches to one message is 10; anything above is not Twilio's.
MAX_MEDIA = 10
#: Seconds a 503 asks the caller to wait (Twilio's retries follow the URL's overrides instead).
RETRY_AFTER = 5
#: A sender the gateway does not serve is told so once per this many seconds (each refusal to
#: a foreign number is an international SMS).
REFUSAL_TTL = 24 * 3600
REFUSAL_KEY = "bijli:inbound:refused:{channel}:{sender}"


# --------------------------------------------------------------------------- signature


def signature_valid(cfg: Settings) -> bool:
    """True when ``X-Twilio-Signature`` signs PUBLIC_BASE_URL + path (+ query) and the form.

    The connection overrides (``#rc=…``) are a fragment, which never reaches the server;
    Twilio's documentation does not say whether the signature covers them, so the URL is
    accepted signed either way: both need the auth token.
    """
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = cfg.public_base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    validator = RequestValidator(cfg.twilio_auth_token)
    candidates = [url]
    if request.path == MESSAGES_PATH and cfg.twilio_webhook_overrides:
        candidates.append(f"{url}#{cfg.twilio_webhook_overrides}")
    return any(validator.validate(candidate, request.form, signature) for candidate in candidates)


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


def _int(value: str | None, ceiling: int) -> int:
    try:
        return min(max(int(value or 0), 0), ceiling)
    except ValueError:
        return 0


# --------------------------------------------------------------------------- inbound


@bp.post(MESSAGES_PATH)
def messages() -> ResponseReturnValue:
    """Twilio's incoming-message webhook."""
    cfg = app_settings()
    if not signature_valid(cfg):
        return _forbidden("message")
    form = request.form
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not SID_SHAPE.fullmatch(sid):
        log.warning(kv("twilio_message_without_sid", sid_len=len(sid)))
        return Response("MessageSid missing", status=400, mimetype="text/plain")
    # A NUL is no part of an address, and PostgreSQL refuses it in text.
    sender = parse_address((form.get("From") or "").replace("\x00", ""))
    body = (form.get("Body") or "").replace("\x00", "")[:MAX_STORED_BODY]
    num_media = _int(form.get("NumMedia"), MAX_MEDIA)
    try:
        stored = inbox.store(
            connections.engine(cfg),
            sid,
            sender.channel,
            sender.e164 or sender.raw,
            body,
            num_media,
            # Nothing will answer a sender the gateway does not serve, beyond the refusal below.
            answered=sender.e164 is None,
        )
    except SQLAlchemyError as exc:
        return _unavailable("inbound_database_unavailable", exc)
    if not stored.created:
        log.info(kv("inbound_duplicate", sid=sid, inbound_id=stored.id, answered=stored.answered))
    if sender.e164 is None:
        return _refuse(cfg, sid, sender.channel, sender.raw, first=stored.created)
    if not stored.answered:
        _enqueue(cfg, stored, sender.channel, sender.e164, (form.get("ProfileName") or "")[:100])
    if stored.created:
        log.info(
            kv(
                "inbound_accepted",
                sid=sid,
                inbound_id=stored.id,
                sender=mask(sender.e164),
                channel=sender.channel,
                chars=len(body),
                media=num_media,
            )
        )
    return twiml()


def _enqueue(
    cfg: Settings, stored: inbox.Stored, channel: str, mobile: str, profile_name: str
) -> None:
    """Queue the stored message's job, after the sender's earlier unanswered ones.

    A failure here loses nothing: the message is stored, and the sweep enqueues it later.
    """
    try:
        conn = connections.redis(cfg)
        if stored.created and profile_name:
            # Kept beside the job, not in it: jobs carry only ids and E.164 numbers.
            conn.set(PROFILE_KEY.format(id=stored.id), profile_name, ex=PROFILE_TTL)
        inbox.enqueue_earlier(conn, connections.engine(cfg), channel, mobile, stored.id)
        ensure_enqueued(conn, stored.id, channel, mobile)
    except (redis.RedisError, RedisNotConfigured, SQLAlchemyError) as exc:
        log.warning(kv("inbound_enqueue_deferred", inbound_id=stored.id, error=type(exc).__name__))


def _refuse(cfg: Settings, sid: str, channel: str, raw: str, *, first: bool) -> Response:
    """The refusal for a sender the gateway does not serve: once a day per number, at most."""
    log.info(kv("inbound_refused_not_indian_mobile", sid=sid, sender=mask(raw), channel=channel))
    if not raw or not first:
        return twiml()
    try:
        key = REFUSAL_KEY.format(channel=channel, sender=raw[: inbox.MAX_SENDER])
        told = not connections.redis(cfg).set(key, "1", nx=True, ex=REFUSAL_TTL)
    except (redis.RedisError, RedisNotConfigured) as exc:
        # Better no answer than an unlimited number of international ones.
        log.warning(kv("inbound_refusal_skipped", error=type(exc).__name__))
        return twiml()
    if told:
        return twiml()
    # A clear answer, straight in TwiML: nothing is queued for such a sender.
    return twiml(texts.bilingual("not_indian_mobile"))


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
    error_code = _int(form.get("ErrorCode"), 10**9) or None
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
