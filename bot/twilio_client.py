"""The one place that sends through Twilio: gateway replies and (later) campaign messages.

``send`` records an :class:`~bot.store.OutboundMessage` under an idempotency key before it calls
Twilio, so a retried job never sends the same message twice, and it sorts Twilio's errors into
the ones worth retrying (429, 5xx, network) and the permanent ones (bad number, unsubscribed,
outside WhatsApp's 24-hour window), which are recorded and not retried.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass

import redis
import requests
import twilio.rest.api
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageList

from bot import connections
from bot import delivery_status as status_mod
from bot.logfmt import kv
from bot.phone import mask, twilio_address
from bot.settings import Settings
from bot.store import OutboundMessage, audit, session_scope, set_opt_out

log = logging.getLogger(__name__)

#: The client imports its API modules on first use; they are imported with this module instead,
#: so that a worker which preloads the job code does not pay ~50 ms of imports in every job it
#: forks.
_PRELOADED = (twilio.rest.api, MessageList)

#: Twilio's limit on a message body, in characters.
MAX_BODY = 1600
#: A long reply is split into at most this many messages; the rest is cut.
MAX_PARTS = 3
#: Seconds the REST client waits for Twilio.
HTTP_TIMEOUT = 15.0

#: Twilio error codes that will not succeed on a retry.
INVALID_NUMBER = 21211
UNSUBSCRIBED = 21610
OUTSIDE_WHATSAPP_WINDOW = 63016
PERMANENT_ERRORS = {
    INVALID_NUMBER: "invalid_number",
    UNSUBSCRIBED: "unsubscribed",
    OUTSIDE_WHATSAPP_WINDOW: "outside_whatsapp_window",
    21408: "region_not_enabled",
    21612: "unreachable_to_from_pair",
    21614: "not_a_mobile",
    63003: "whatsapp_invalid_recipient",
}


class TwilioTransientError(RuntimeError):
    """Twilio answered 429 or 5xx, or could not be reached: the job should retry."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one message: ``sent``, ``duplicate``, ``rejected`` or ``opted_out``."""

    result: str
    outbound_id: int | None
    twilio_sid: str | None = None
    error_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.result in ("sent", "duplicate")


# --------------------------------------------------------------------------- client

_clients: dict[tuple[int, str, str, str | None], Client] = {}
_clients_lock = threading.Lock()


def make_client(cfg: Settings) -> Client:
    """A ``twilio.rest.Client`` for the settings, pointed at ``TWILIO_API_BASE_URL`` when set."""
    client = Client(
        cfg.twilio_account_sid,
        cfg.twilio_auth_token,
        http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT),
    )
    if cfg.twilio_api_base_url:
        # twilio 8.x: each domain holds its base URL; Messages live on the ``api`` domain.
        client.api.base_url = cfg.twilio_api_base_url.rstrip("/")
    return client


def client_for(cfg: Settings) -> Client:
    """The process's cached client for these settings (one HTTP connection pool per process)."""
    key = (os.getpid(), cfg.twilio_account_sid, cfg.twilio_auth_token, cfg.twilio_api_base_url)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = make_client(cfg)
        return _clients[key]


def status_callback_url(cfg: Settings) -> str:
    """Where Twilio posts message statuses."""
    return f"{cfg.public_base_url}/twilio/status"


def sender_for(cfg: Settings, channel: str) -> str:
    """The ``From`` of a channel."""
    return cfg.twilio_whatsapp_from if channel == "whatsapp" else cfg.twilio_sms_from


# --------------------------------------------------------------------------- bodies


def split_body(text: str, limit: int = MAX_BODY, max_parts: int = MAX_PARTS) -> list[str]:
    """Split ``text`` into at most ``max_parts`` messages of ``limit`` characters, at word ends.

    Breaks prefer paragraph, then sentence, then word ends; the last part is cut with an ellipsis.
    """
    text = text.strip()
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while rest and len(parts) < max_parts:
        if len(rest) <= limit:
            parts.append(rest)
            rest = ""
            break
        if len(parts) == max_parts - 1:
            parts.append(truncate(rest, limit))
            rest = ""
            break
        cut = _break_point(rest, limit)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [p for p in parts if p]


def truncate(text: str, limit: int, marker: str = "…") -> str:
    """Cut ``text`` to at most ``limit`` characters at a word end, adding ``marker`` when cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    room = limit - len(marker)
    cut = _break_point(text, room)
    return text[:cut].rstrip() + marker


def _break_point(text: str, limit: int) -> int:
    """Index to cut ``text`` at, no later than ``limit``: a paragraph, sentence or word end."""
    window = text[:limit]
    for pattern in (r"\n\s*\n", r"[.!?।]\s", r"\s"):
        matches = list(re.finditer(pattern, window))
        # Only accept a break in the second half, so parts are not absurdly short.
        if matches and matches[-1].end() > limit // 2:
            return matches[-1].end()
    return limit


# --------------------------------------------------------------------------- sending


def send(
    cfg: Settings,
    *,
    channel: str,
    to: str,
    idempotency_key: str,
    body: str = "",
    media_url: str | None = None,
    campaign_id: int | None = None,
    content_sid: str | None = None,
    content_variables: str | None = None,
    respect_opt_out: bool = False,
    engine: Engine | None = None,
    redis_conn: redis.Redis | None = None,
) -> SendOutcome:
    """Send one message to E.164 ``to`` on ``channel`` at most once per ``idempotency_key``.

    Raises :class:`TwilioTransientError` when a retry may succeed; permanent Twilio errors
    come back as a ``rejected`` outcome. ``respect_opt_out`` is for pushed messages
    (campaigns): a number that opted out on the channel is skipped.
    """
    from bot.store import is_opted_out

    engine = engine or connections.engine(cfg)
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} characters exceeds Twilio's {MAX_BODY}: split it")
    with session_scope(engine) as session:
        row = _row_by_key(session, idempotency_key)
        if row is not None and (row.twilio_sid or row.status in status_mod.TERMINAL):
            return SendOutcome("duplicate", row.id, row.twilio_sid, row.error_code)
        if respect_opt_out and is_opted_out(session, to, channel):
            log.info(kv("twilio_send_skipped_opted_out", to=mask(to), channel=channel))
            return SendOutcome("opted_out", row.id if row else None)
        if row is None:
            row = OutboundMessage(
                idempotency_key=idempotency_key,
                channel=channel,
                to_number=to,
                body=body,
                media_url=media_url,
                campaign_id=campaign_id,
                status="pending",
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                # Another attempt holding the same key got there first: it sends, we don't.
                session.rollback()
                existing = _row_by_key(session, idempotency_key)
                if existing is None:
                    raise
                return SendOutcome("duplicate", existing.id, existing.twilio_sid)
        row.attempts = (row.attempts or 0) + 1
        outbound_id = row.id

    kwargs: dict[str, object] = {
        "to": twilio_address(channel, to),
        "from_": sender_for(cfg, channel),
        "status_callback": status_callback_url(cfg),
    }
    if body:
        kwargs["body"] = body
    if media_url:
        kwargs["media_url"] = [media_url]
    if content_sid:
        kwargs["content_sid"] = content_sid
    if content_variables:
        kwargs["content_variables"] = content_variables
    try:
        message = client_for(cfg).messages.create(**kwargs)
    except TwilioRestException as exc:
        return _handle_twilio_error(engine, cfg, exc, outbound_id, channel, to)
    except requests.RequestException as exc:
        _set_row(engine, outbound_id, status="retrying")
        log.warning(kv("twilio_unreachable", outbound_id=outbound_id, error=type(exc).__name__))
        raise TwilioTransientError(f"Twilio unreachable: {type(exc).__name__}") from exc

    sid = str(message.sid)
    _set_row(engine, outbound_id, status=str(message.status or "queued"), twilio_sid=sid)
    if redis_conn is None and cfg.redis_url:
        redis_conn = connections.redis(cfg)
    if redis_conn is not None:
        status_mod.apply_early(redis_conn, engine, sid)
    log.info(
        kv(
            "twilio_sent",
            outbound_id=outbound_id,
            sid=sid,
            to=mask(to),
            channel=channel,
            chars=len(body),
            media=bool(media_url),
        )
    )
    return SendOutcome("sent", outbound_id, sid)


def _row_by_key(session: Session, key: str) -> OutboundMessage | None:
    return session.execute(
        select(OutboundMessage).where(OutboundMessage.idempotency_key == key)
    ).scalar_one_or_none()


def _set_row(engine: Engine, outbound_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)


def is_transient(exc: TwilioRestException) -> bool:
    """True for Twilio answers a retry may fix: rate limiting and server errors."""
    return exc.status == 429 or exc.status >= 500 or exc.code == 20429


def _handle_twilio_error(
    engine: Engine,
    cfg: Settings,
    exc: TwilioRestException,
    outbound_id: int,
    channel: str,
    to: str,
) -> SendOutcome:
    code = exc.code if isinstance(exc.code, int) else None
    if is_transient(exc):
        _set_row(engine, outbound_id, status="retrying", error_code=code)
        log.warning(
            kv("twilio_transient_error", outbound_id=outbound_id, http=exc.status, code=code)
        )
        raise TwilioTransientError(f"Twilio answered {exc.status} (code {code})", code) from exc
    reason = PERMANENT_ERRORS.get(code or 0, "rejected")
    with session_scope(engine) as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is not None:
            row.status = "failed"
            row.error_code = code
        if code == UNSUBSCRIBED:
            # The person blocked us at the carrier or in WhatsApp: honour it as an opt-out.
            set_opt_out(session, to, channel, True)
        audit(
            session,
            "worker",
            "twilio_rejected",
            str(outbound_id),
            code=code,
            reason=reason,
            to=mask(to),
            channel=channel,
        )
    log.warning(
        kv(
            "twilio_permanent_error",
            outbound_id=outbound_id,
            http=exc.status,
            code=code,
            reason=reason,
            to=mask(to),
            channel=channel,
        )
    )
    return SendOutcome("rejected", outbound_id, None, code)


__all__ = [
    "MAX_BODY",
    "PERMANENT_ERRORS",
    "SendOutcome",
    "TwilioTransientError",
    "client_for",
    "make_client",
    "send",
    "split_body",
    "truncate",
]
