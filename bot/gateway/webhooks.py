"""Twilio's webhooks: ``POST /twilio/messages`` (SMS and WhatsApp in) and ``POST /twilio/status``.

The message webhook checks the signature and stores the message before it answers: the
database is the inbox, and its unique MessageSid turns Twilio's retries into no-ops. It then
enqueues a job on the ``inbound`` queue (in the sender's order: see :mod:`bot.gateway.ordering`)
and answers empty TwiML at once. With Redis down the message is stored all the same and the
answer is still 200: the inbox sweep (:mod:`bot.gateway.inbox`) enqueues it later. Only a
database that cannot store it gets a 503, which Twilio retries when the webhook URL carries the
connection overrides the README gives (by default Twilio does not retry a 5xx).

A tapped WhatsApp quick-reply button arrives as an ordinary message whose ``Body`` is the
button's title, with ``ButtonText`` and ``ButtonPayload``; the payload is stored beside the body
and is what the bot reads (the signature covers it as it covers the body).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qs, parse_qsl
from xml.sax.saxutils import escape

import redis
from flask import Blueprint, Flask, Response, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator, compare

from bot import connections, web
from bot import delivery_status as status_mod
from bot.areas import valid_coordinates
from bot.connections import RedisNotConfigured
from bot.gateway import inbox, texts
from bot.gateway.ordering import ensure_enqueued
from bot.logfmt import kv
from bot.phone import mask, parse_address
from bot.settings import Settings
from bot.web import app_settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

bp = Blueprint("gateway", __name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MESSAGES_PATH = "/twilio/messages"
STATUS_PATH = "/twilio/status"

#: What a Twilio MessageSid looks like (``SM`` or ``MM`` and 32 hex digits; looser here).
SID_SHAPE = re.compile(r"[A-Za-z0-9]{2,40}")
#: Longest body stored; Twilio's own limit is 1,600 characters.
MAX_STORED_BODY = 4000
#: Longest button payload stored (Twilio's limit on a quick-reply id is 200 characters).
MAX_BUTTON_PAYLOAD = 256
#: Most media Twilio attaches to one message is 10; anything above is not Twilio's.
MAX_MEDIA = 10
#: Seconds a 503 asks the caller to wait (Twilio's retries follow the URL's overrides instead).
RETRY_AFTER = 5
#: A sender the gateway does not serve is told so once per this many seconds (each refusal to
#: a foreign number is an international SMS).
REFUSAL_TTL = 24 * 3600
REFUSAL_KEY = "bijli:inbound:refused:{channel}:{sender}"
#: Largest status callback parked without Flask (Twilio's are a few hundred bytes).
MAX_PARKED_FORM = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
#: WSGI environ key set on a status callback parked before Flask (bot.gateway.access_log).
PARKED_ENVIRON = "bijli.status_parked"


# --------------------------------------------------------------------------- signature


def signature_valid(cfg: Settings) -> bool:
    """True when the request's ``X-Twilio-Signature`` signs it: see :func:`signature_matches`."""
    return signature_matches(
        cfg,
        request.path,
        request.query_string,
        request.form,
        request.headers.get("X-Twilio-Signature", ""),
    )


def signature_matches(
    cfg: Settings, path: str, query_string: bytes, form: Mapping[str, str], signature: str
) -> bool:
    """True when ``signature`` signs PUBLIC_BASE_URL + path (+ query) and the form.

    The connection overrides (``#rc=…``) are a fragment, which never reaches the server;
    Twilio's documentation does not say whether the signature covers them, so the URL is
    accepted signed either way: both need the auth token.
    """
    if not signature:
        return False
    url = cfg.public_base_url + path
    if query_string:
        url += "?" + query_string.decode("latin-1")
    validator = RequestValidator(cfg.twilio_auth_token)
    candidates = [url]
    if path == MESSAGES_PATH and cfg.twilio_webhook_overrides:
        candidates.append(f"{url}#{cfg.twilio_webhook_overrides}")
    # Twilio signs the URL as it was configured, which is PUBLIC_BASE_URL's: one signature
    # over that URL is checked first. ``validate`` parses the URL and signs it twice, with and
    # without a port; that is only needed for a signature the exact URL did not match.
    fields = SignedFields(form)
    if any(compare(validator.compute_signature(c, fields), signature) for c in candidates):
        return True
    return any(validator.validate(candidate, fields, signature) for candidate in candidates)


class SignedFields:
    """A form as RequestValidator reads it: its field names, and ``getall`` for their values.

    compute_signature asks a form for ``getall``, then ``getlist``, then indexes it, catching
    an AttributeError at each miss: two a field for a dict, one for Flask's form. That cost
    more than the signature itself (52 against 21 µs for a status callback's 14 fields).
    """

    __slots__ = ("_form", "getall")

    def __init__(self, form: Mapping[str, str]) -> None:
        self._form = form
        getlist = getattr(form, "getlist", None)
        self.getall: Callable[[str], list[str]] = (
            getlist if getlist is not None else (lambda name: [form[name]])
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)


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


def location_pin(latitude: str | None, longitude: str | None) -> tuple[float, float] | None:
    """A WhatsApp location pin from Twilio's ``Latitude``/``Longitude`` fields, if both are one."""
    try:
        place = (float(latitude or ""), float(longitude or ""))
    except ValueError:
        return None
    return place if valid_coordinates(*place) else None


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
            location=location_pin(form.get("Latitude"), form.get("Longitude")),
            button_payload=(form.get("ButtonPayload") or "").replace("\x00", "")[
                :MAX_BUTTON_PAYLOAD
            ],
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
        inbox.enqueue_waiting(conn, stored.earlier, stored.id)
        # The profile name is kept beside the job, not in it: jobs carry only ids and E.164
        # numbers.
        ensure_enqueued(
            conn, stored.id, channel, mobile, profile_name=profile_name if stored.created else ""
        )
    except (redis.RedisError, RedisNotConfigured) as exc:
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


def _apply_parked_for(cfg: Settings, engine: Engine, sid: str) -> None:
    try:
        status_mod.apply_parked_for(connections.redis(cfg), engine, sid)
    except (redis.RedisError, RedisNotConfigured) as exc:
        log.warning(kv("twilio_status_parked_unread", sid=sid, error=type(exc).__name__))


@bp.post(STATUS_PATH)
def message_status() -> ResponseReturnValue:
    """Twilio's message status callback: never moving a status backwards.

    Terminal statuses are written at once (they may queue the SMS fallback); the others are
    parked in Redis and written in batches (:func:`bot.delivery_status.defer`), or at once when
    Redis cannot take them. The signature is checked on every callback either way.
    """
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
    if value in status_mod.DEFERRED:
        # Nothing acts on it: parked in Redis, written with others by the next flush.
        try:
            status_mod.defer(connections.redis(cfg), sid, value, error_code, key)
        except (redis.RedisError, RedisNotConfigured) as exc:
            log.warning(kv("twilio_status_not_parked", sid=sid, error=type(exc).__name__))
        else:
            return Response("", status=204)
    try:
        engine = connections.engine(cfg)
        if value in status_mod.TERMINAL:
            # A delivered or read parked for this message comes first: a late failure is stale.
            _apply_parked_for(cfg, engine, sid)
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
        elif outcome in ("updated", "adopted") and value in status_mod.TERMINAL:
            # A campaign's WhatsApp message nobody can get there goes again by SMS, once.
            status_mod.enqueue_sms_fallback(connections.redis(cfg), engine, sid)
    except (redis.RedisError, RedisNotConfigured) as exc:
        # The status may be stored already and its SMS fallback not queued; Twilio does not post
        # the callback again, so the cron's campaign sweep queues it (queue_missed_fallbacks).
        return _unavailable("status_redis_unavailable", exc)
    except SQLAlchemyError as exc:
        return _unavailable("status_database_unavailable", exc)
    log.info(kv("twilio_status", sid=sid, status=value, error_code=error_code, outcome=outcome))
    return Response("", status=204)


# --------------------------------------------------------------------------- parking, before Flask


@bp.record_once
def _install_parking_path(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.wsgi_app = StatusParking(app.wsgi_app, app.extensions[web.EXTENSION])  # type: ignore[method-assign]


class StatusParking:
    """WSGI middleware: a signed callback with a status nothing acts on is parked in Redis here.

    Three callbacks come for every reply (``sent``, ``delivered``, ``read``), and Flask's
    request machinery cost more than the parking itself. This checks the same signature over the
    same form and parks as :func:`message_status` does; anything else (another path, a form it
    does not read the same way, a bad or missing signature, a status acted on at once, Redis
    away) goes on to Flask with the body intact, which answers it as before.
    """

    def __init__(self, wsgi_app: WSGIApplication, cfg: Settings) -> None:
        self.wsgi_app = wsgi_app
        self.cfg = cfg

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") == STATUS_PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and environ.get("CONTENT_TYPE", "").split(";")[0].strip() == FORM_TYPE
            and environ.get("HTTP_X_TWILIO_SIGNATURE")
            and self._parked(environ)
        ):
            environ[PARKED_ENVIRON] = True
            start_response("204 NO CONTENT", [("Content-Type", "text/html; charset=utf-8")])
            return [b""]
        return self.wsgi_app(environ, start_response)

    def _parked(self, environ: WSGIEnvironment) -> bool:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        if not 0 < length <= MAX_PARKED_FORM:
            return False
        body = environ["wsgi.input"].read(length)
        # Flask reads it again if this does not answer.
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return False
        form = dict(pairs)
        if len(form) != len(pairs):
            return False  # a repeated field: Flask's form reads it as Twilio signed it
        value = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
        sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
        if value not in status_mod.DEFERRED or not sid:
            return False
        query = environ.get("QUERY_STRING", "").encode("latin-1")
        if not signature_matches(
            self.cfg, STATUS_PATH, query, form, environ["HTTP_X_TWILIO_SIGNATURE"]
        ):
            return False  # refused by Flask, which logs it
        key = parse_qs(query.decode("latin-1")).get("key", [None])[0]
        try:
            status_mod.defer(
                connections.redis(self.cfg),
                sid,
                value,
                _int(form.get("ErrorCode"), 10**9) or None,
                key,
            )
        except (redis.RedisError, RedisNotConfigured):
            return False  # Flask writes it at once
        return True
