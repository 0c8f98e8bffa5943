"""The one place that sends through Twilio: gateway replies and (later) campaign messages.

``send`` records an :class:`~bot.store.OutboundMessage` under an idempotency key before it calls
Twilio, so a retried job never sends the same message twice, and it sorts Twilio's errors into
the ones worth retrying (429, 5xx, network) and the permanent ones (bad number, unsubscribed,
outside WhatsApp's 24-hour window), which are recorded and not retried.

Two failures need more than a retry:

- A request that got no answer (a timeout, a dropped connection) may have been accepted. Before
  sending again, ``send`` looks for the message: a status callback carrying its idempotency key
  (the key is in the ``StatusCallback`` URL) may have given it its sid; otherwise Twilio's list
  of messages to that number since the first attempt is searched. Only a message found in
  neither is sent again. A message is held ``in_flight`` while an attempt sends it, so two
  attempts never send it at once, and one whose worker died is looked for in the same way.
- A 401 or 403 means Twilio refuses the credentials (a wrong or rotated token, a suspended
  account): every send would fail the same way. Sending is paused for the account (a Redis
  hash, one alert in the logs, ``/healthz`` unhealthy) and nothing is sent until
  :func:`probe_credentials`, which the inbox sweep runs, sees Twilio accept them again.

Every send takes a token from its sender's rate limiter first (:mod:`bot.ratelimit`; replies
before campaign messages), and a WhatsApp message may go two ways: free text inside the
24-hour customer-service window (the recipient wrote to us less than 24 hours ago), a Content
template (``ContentSid`` + ``ContentVariables``) outside it, as WhatsApp requires. A reply with
buttons goes as a ``twilio/quick-reply`` Content template whatever the window
(``template_only``); :func:`create_content` makes such templates through Twilio's Content API
(bot/gateway/quick_replies.py decides when, and caches their sids).

The client's requests go through urllib3 (:mod:`bot.twilio_http`) unless a proxy variable or a
netrc file is set, when twilio-python's own ``requests`` client reads them; both fail with
``requests``' exceptions.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis
import requests
import twilio.rest.api
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageList
from urllib3.exceptions import NewConnectionError

from bot import connections, ratelimit
from bot import delivery_status as status_mod
from bot.clock import utcnow
from bot.delivery_status import IN_FLIGHT, RETRYING, UNCONFIRMED
from bot.logfmt import kv
from bot.phone import mask, twilio_address
from bot.settings import Settings
from bot.store import (
    OptOut,
    OutboundMessage,
    audit,
    last_inbound_at,
    session_scope,
    set_opt_out,
)
from bot.twilio_http import Urllib3HttpClient

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
#: Seconds an attempt may hold a message ``in_flight`` (a connect and a read timeout, twice
#: over); one held longer belongs to an attempt whose worker died.
SEND_LEASE = 4 * HTTP_TIMEOUT
#: Seconds before a message's first attempt from which Twilio's list is searched for it (clock
#: skew, and Twilio's timestamps have whole seconds).
RECONCILE_SLACK = 60
#: Most messages to one number read from Twilio's list when searching for an accepted one.
RECONCILE_SCAN = 100
#: HTTP statuses with which Twilio refuses the credentials themselves: sending pauses.
CREDENTIALS_REJECTED = (401, 403)
#: Redis hash that holds a paused account's reason (``http``, ``code``, ``since``).
PAUSE_KEY = "bijli:twilio:paused:{account}"

#: WhatsApp's customer-service window: free text within this long of the person's last message.
WHATSAPP_WINDOW = dt.timedelta(hours=24)
#: Margin kept before the window closes, so a message queued at Twilio is not sent just after.
WINDOW_MARGIN = dt.timedelta(minutes=10)
#: A Content template's sid, as Twilio checks it (error 21655).
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
#: Longest a send waits inline for a rate-limit token (below SEND_LEASE, which it holds meanwhile);
#: a longer wait raises :class:`SendRateLimited` so the job can come back later.
RATE_LIMIT_MAX_WAIT = 20.0

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
    21654: "content_sid_required",
    21655: "content_sid_invalid",
    21656: "content_variables_invalid",
    63003: "whatsapp_invalid_recipient",
}


class TwilioTransientError(RuntimeError):
    """Twilio answered 429 or 5xx, or could not be reached: the job should retry."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SendInFlight(TwilioTransientError):
    """Another attempt is sending this message right now: retry once it has finished."""


class TwilioSendingPaused(TwilioTransientError):
    """Twilio refuses our credentials (HTTP 401/403): nothing is sent until a probe succeeds."""


class SendRateLimited(TwilioTransientError):
    """No rate-limit token within RATE_LIMIT_MAX_WAIT: retry after ``retry_after`` seconds.

    Nothing was sent; the message is ``retrying``. A job re-enqueues itself for that long.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    http_client: HttpClient
    if connections.environment_read_per_request(cfg):
        # A proxy variable or a netrc file: twilio-python's own client (requests) reads them.
        http_client = TwilioHttpClient(timeout=HTTP_TIMEOUT)
    else:
        http_client = Urllib3HttpClient(HTTP_TIMEOUT, connections.ca_bundle(cfg))
    client = Client(cfg.twilio_account_sid, cfg.twilio_auth_token, http_client=http_client)
    if cfg.twilio_api_base_url:
        # twilio 8.x: each domain holds its base URL; Messages live on the ``api`` domain,
        # Content templates on ``content`` (the fake serves both).
        client.api.base_url = cfg.twilio_api_base_url.rstrip("/")
        client.content.base_url = cfg.twilio_api_base_url.rstrip("/")
    return client


def client_for(cfg: Settings) -> Client:
    """The process's cached client for these settings (one HTTP connection pool per process)."""
    key = (os.getpid(), cfg.twilio_account_sid, cfg.twilio_auth_token, cfg.twilio_api_base_url)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = make_client(cfg)
        return _clients[key]


def status_callback_url(cfg: Settings, idempotency_key: str | None = None) -> str:
    """Where Twilio posts a message's statuses; the key tells which send the message came from.

    The key is percent-encoded into the query, which Twilio signs with the rest of the URL.
    """
    url = f"{cfg.public_base_url}/twilio/status"
    return f"{url}?key={quote(idempotency_key, safe='')}" if idempotency_key else url


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
    content_variables: str | Mapping[str, object] | None = None,
    template_only: bool = False,
    respect_opt_out: bool = False,
    engine: Engine | None = None,
    redis_conn: redis.Redis | None = None,
) -> SendOutcome:
    """Send one message to E.164 ``to`` on ``channel`` at most once per ``idempotency_key``.

    ``content_sid`` (a Content template, ``HX`` + 32 hex) with ``content_variables`` (a JSON
    object string, or a mapping that is serialised) is how a WhatsApp push reaches someone
    outside the 24-hour window. Given both a template and a ``body``, a WhatsApp message goes
    as free text ``body`` while the recipient wrote within the last 24 hours and as the
    template otherwise; ``body`` is recorded either way (it should be the template's text).
    ``template_only`` sends the template inside the window too (a reply with buttons: the
    template is what carries them), and records its sid on the message.

    Every send first takes a token from its sender's rate limiter: campaign messages
    (``campaign_id`` set) in the ``bulk`` lane, everything else in the ``reply`` lane.

    Raises :class:`TwilioTransientError` when a retry may succeed (:class:`SendInFlight` while
    another attempt holds the message, :class:`TwilioSendingPaused` while Twilio refuses the
    credentials, :class:`SendRateLimited` when no token came in time); permanent Twilio errors
    come back as a ``rejected`` outcome. ``respect_opt_out`` is for pushed messages
    (campaigns): a number that opted out on the channel is skipped.
    """
    engine = engine or connections.engine(cfg)
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} characters exceeds Twilio's {MAX_BODY}: split it")
    variables = content_variables_json(content_sid, content_variables)
    if redis_conn is None and cfg.redis_url:
        redis_conn = connections.redis(cfg)
    paused = pause_state(cfg, redis_conn)
    if paused is not None:
        raise TwilioSendingPaused(f"sending paused since {paused.since}: {paused.reason}")
    claim = claim_message(
        engine,
        idempotency_key,
        channel=channel,
        to=to,
        body=body,
        media_url=media_url,
        campaign_id=campaign_id,
        respect_opt_out=respect_opt_out,
        content_sid=content_sid if template_only else None,
    )
    if isinstance(claim, SendOutcome):
        return claim
    outbound_id = claim.outbound_id
    if claim.may_be_accepted:
        found = find_accepted(
            cfg, engine, claim, channel, to, body, media_url, redis_conn, bool(content_sid)
        )
        if found is not None:
            return found

    kwargs, as_template = message_kwargs(
        cfg,
        channel=channel,
        to=to,
        idempotency_key=idempotency_key,
        body=body,
        media_url=media_url,
        content_sid=content_sid,
        variables=variables,
        in_window=lambda: in_whatsapp_window(engine, to),
        template_only=template_only,
    )
    handed = hand_over(cfg, engine, redis_conn, kwargs, outbound_id, channel, to, campaign_id)
    if isinstance(handed, SendOutcome):
        return handed
    sid, status = handed
    _record_sid(engine, outbound_id, sid, status)
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
            template=content_sid if as_template else None,
        )
    )
    return SendOutcome("sent", outbound_id, sid)


def message_kwargs(
    cfg: Settings,
    *,
    channel: str,
    to: str,
    idempotency_key: str,
    body: str,
    media_url: str | None,
    content_sid: str | None,
    variables: str | None,
    in_window: Callable[[], bool],
    template_only: bool = False,
) -> tuple[dict[str, object], bool]:
    """The arguments of Twilio's create for a message, and whether it goes as a template.

    ``in_window`` tells (when asked) whether the recipient wrote within WhatsApp's window;
    ``variables`` are ``ContentVariables`` as :func:`content_variables_json` made them.
    """
    kwargs: dict[str, object] = {
        "to": twilio_address(channel, to),
        "from_": sender_for(cfg, channel),
        "status_callback": status_callback_url(cfg, idempotency_key),
    }
    as_template = content_sid is not None and (
        template_only or not body or channel != "whatsapp" or not in_window()
    )
    if as_template:
        # Twilio sends a template as it was approved: no Body or MediaUrl beside it.
        kwargs["content_sid"] = content_sid
        if variables:
            kwargs["content_variables"] = variables
    else:
        if body:
            kwargs["body"] = body
        if media_url:
            kwargs["media_url"] = [media_url]
    return kwargs, as_template


def hand_over(
    cfg: Settings,
    engine: Engine,
    redis_conn: redis.Redis | None,
    kwargs: Mapping[str, object],
    outbound_id: int,
    channel: str,
    to: str,
    campaign_id: int | None,
) -> tuple[str, str] | SendOutcome:
    """Take a rate-limit token and give a claimed message to Twilio: (sid, status) when it
    accepted it (not yet recorded: the caller records it), a ``rejected`` outcome for a
    permanent error. Raises as :func:`send` does for what a retry may fix."""
    _take_token(cfg, engine, redis_conn, channel, outbound_id, campaign_id)
    try:
        message = client_for(cfg).messages.create(**kwargs)
    except TwilioRestException as exc:
        return _handle_twilio_error(engine, cfg, exc, outbound_id, channel, to, redis_conn)
    except requests.RequestException as exc:
        status = UNCONFIRMED if _may_have_reached_twilio(exc) else RETRYING
        set_outbound_row(engine, outbound_id, status=status)
        log.warning(
            kv("twilio_unreachable", outbound_id=outbound_id, error=type(exc).__name__, row=status)
        )
        raise TwilioTransientError(f"Twilio unreachable: {type(exc).__name__}") from exc
    return str(message.sid), str(message.status or "queued")


def content_variables_json(
    content_sid: str | None, variables: str | Mapping[str, object] | None
) -> str | None:
    """``ContentVariables`` as the JSON object string Twilio takes; ValueError when malformed."""
    if content_sid is None:
        if variables:
            raise ValueError("content_variables without content_sid (Twilio error 21654)")
        return None
    if not CONTENT_SID.match(content_sid):
        raise ValueError(f"{content_sid!r} is not a Content template sid (HX + 32 hex digits)")
    if variables is None or variables == "":
        return None
    parsed = json.loads(variables) if isinstance(variables, str) else dict(variables)
    if not isinstance(parsed, dict) or any(v is None or v == "" for v in parsed.values()):
        raise ValueError("content_variables must be a JSON object without empty values")
    return json.dumps({str(k): str(v) for k, v in parsed.items()}, ensure_ascii=False)


def in_whatsapp_window(engine: Engine, mobile: str, now: dt.datetime | None = None) -> bool:
    """True while WhatsApp allows free text to ``mobile``: they wrote within 24 hours.

    A margin before the window closes keeps a message Twilio delivers a little later inside it.
    """
    with session_scope(engine) as session:
        last = last_inbound_at(session, "whatsapp", mobile)
    if last is None:
        return False
    return (now or utcnow()) - last < WHATSAPP_WINDOW - WINDOW_MARGIN


def limiter_for(cfg: Settings, conn: redis.Redis, channel: str) -> ratelimit.RateLimiter:
    """The rate limiter of a channel's sender, at its configured messages per second."""
    return ratelimit.RateLimiter(conn, sender_for(cfg, channel), cfg.mps_for(channel))


def _take_token(
    cfg: Settings,
    engine: Engine,
    conn: redis.Redis | None,
    channel: str,
    outbound_id: int,
    campaign_id: int | None,
) -> None:
    """Wait for the sender's rate limiter; the message is ``retrying`` if it must come back."""
    if conn is None or cfg.mps_for(channel) <= 0:
        return
    lane = ratelimit.BULK if campaign_id is not None else ratelimit.REPLY
    try:
        waited = limiter_for(cfg, conn, channel).acquire(lane, max_wait=RATE_LIMIT_MAX_WAIT)
    except ratelimit.RateLimited as exc:
        set_outbound_row(engine, outbound_id, status=RETRYING)
        log.info(kv("twilio_send_rate_limited", outbound_id=outbound_id, lane=lane))
        raise SendRateLimited(str(exc), exc.retry_after) from exc
    except redis.RedisError as exc:
        # Without the shared limiter nothing can say this send keeps within the sender's rate.
        set_outbound_row(engine, outbound_id, status=RETRYING)
        raise TwilioTransientError(f"rate limiter unavailable: {type(exc).__name__}") from exc
    if waited > 1.0:
        log.info(kv("twilio_send_waited_for_token", outbound_id=outbound_id, lane=lane, s=waited))


@dataclass(frozen=True)
class Claim:
    """This attempt holds the message ``in_flight``; an earlier one may have been accepted."""

    outbound_id: int
    first_attempt_at: dt.datetime
    may_be_accepted: bool


#: The send's hot statements, in SQLAlchemy Core and built once: building an ORM statement and
#: running it through a Session cost ~4× what the statement itself does (bench/RESULTS.md, "Web +
#: worker CPU, third pass").
_OUT = OutboundMessage.__table__
_CLAIM_READ = select(
    _OUT.c.id,
    _OUT.c.twilio_sid,
    _OUT.c.status,
    _OUT.c.error_code,
    _OUT.c.attempts,
    _OUT.c.created_at,
    _OUT.c.updated_at,
).where(_OUT.c.idempotency_key == bindparam("key"))
_OPTED_OUT = select(OptOut.__table__.c.mobile).where(
    OptOut.__table__.c.mobile == bindparam("mobile"),
    OptOut.__table__.c.channel == bindparam("channel"),
)
_CLAIM_NEW = _OUT.insert()
# The attempts counter is the row's version: of two attempts, one wins the update.
_CLAIM_AGAIN = (
    update(_OUT)
    .where(
        _OUT.c.id == bindparam("row_id"),
        _OUT.c.attempts == bindparam("seen_attempts"),
        _OUT.c.twilio_sid.is_(None),
    )
    .values(status=IN_FLIGHT, attempts=bindparam("next_attempts"), updated_at=bindparam("now"))
)
_RECORD_SID = (
    update(_OUT)
    .where(_OUT.c.id == bindparam("row_id"), _OUT.c.twilio_sid.is_(None))
    .values(
        twilio_sid=bindparam("sid"), status=bindparam("new_status"), updated_at=bindparam("now")
    )
)
_SID_OF = select(_OUT.c.twilio_sid).where(_OUT.c.id == bindparam("row_id"))


def claim_message(
    engine: Engine,
    key: str,
    *,
    channel: str,
    to: str,
    body: str,
    media_url: str | None,
    campaign_id: int | None,
    respect_opt_out: bool,
    content_sid: str | None = None,
) -> SendOutcome | Claim:
    """Hold the message under ``key`` for this attempt, or say why there is nothing to send."""
    with engine.begin() as db:
        row = db.execute(_CLAIM_READ, {"key": key}).one_or_none()
        if row is not None and (row.twilio_sid or row.status in status_mod.TERMINAL):
            return SendOutcome("duplicate", row.id, row.twilio_sid, row.error_code)
        if respect_opt_out and db.execute(_OPTED_OUT, {"mobile": to, "channel": channel}).first():
            log.info(kv("twilio_send_skipped_opted_out", to=mask(to), channel=channel))
            return SendOutcome("opted_out", row.id if row else None)
        now = utcnow()
        if row is None:
            try:
                created = db.execute(
                    _CLAIM_NEW,
                    {
                        "idempotency_key": key,
                        "channel": channel,
                        "to_number": to,
                        "body": body,
                        "media_url": media_url,
                        "campaign_id": campaign_id,
                        "status": IN_FLIGHT,
                        "attempts": 1,
                        "content_sid": content_sid,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            except IntegrityError:
                # Another attempt with the same key created it a moment ago and is sending it.
                raise SendInFlight(f"message {key!r} is being sent by another attempt") from None
            return Claim(int(created.inserted_primary_key[0]), now, may_be_accepted=False)
        if row.status == IN_FLIGHT and row.updated_at > now - dt.timedelta(seconds=SEND_LEASE):
            raise SendInFlight(f"message {row.id} is being sent by another attempt")
        won = db.execute(
            _CLAIM_AGAIN,
            {
                "row_id": row.id,
                "seen_attempts": row.attempts,
                "next_attempts": (row.attempts or 0) + 1,
                "now": now,
            },
        ).rowcount
        if not won:
            raise SendInFlight(f"message {row.id} is being sent by another attempt")
        return Claim(
            int(row.id), row.created_at, may_be_accepted=row.status in (IN_FLIGHT, UNCONFIRMED)
        )


def _may_have_reached_twilio(exc: requests.RequestException) -> bool:
    """False only when no connection was ever made, so Twilio cannot have the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = exc.args[0] if exc.args else None
    return not isinstance(getattr(reason, "reason", reason), NewConnectionError)


def find_accepted(
    cfg: Settings,
    engine: Engine,
    claim: Claim,
    channel: str,
    to: str,
    body: str,
    media_url: str | None,
    redis_conn: redis.Redis | None,
    template: bool = False,
) -> SendOutcome | None:
    """The message an earlier attempt made Twilio accept without telling us, if there is one."""
    with session_scope(engine) as session:
        row = session.get(OutboundMessage, claim.outbound_id)
        if row is not None and row.twilio_sid:
            # A status callback carrying this send's key arrived and gave the row its sid.
            log.info(
                kv("twilio_send_confirmed_by_callback", outbound_id=row.id, sid=row.twilio_sid)
            )
            return SendOutcome("duplicate", row.id, row.twilio_sid)
    try:
        found = _search_twilio_list(cfg, engine, claim, channel, to, body, media_url, template)
    except TwilioException as exc:
        set_outbound_row(engine, claim.outbound_id, status=UNCONFIRMED)
        http, code = _answer_of(exc)
        if http in CREDENTIALS_REJECTED:
            pause_sending(cfg, redis_conn, http, code)
            raise TwilioSendingPaused(f"Twilio answered {http} (code {code})", code) from exc
        raise TwilioTransientError(f"Twilio's message list answered {http}", code) from exc
    except requests.RequestException as exc:
        set_outbound_row(engine, claim.outbound_id, status=UNCONFIRMED)
        raise TwilioTransientError(f"Twilio unreachable: {type(exc).__name__}") from exc
    if found is None:
        log.info(kv("twilio_send_not_accepted_resending", outbound_id=claim.outbound_id))
        return None
    sid, status = found
    _record_sid(engine, claim.outbound_id, sid, status)
    log.info(kv("twilio_send_found_in_list", outbound_id=claim.outbound_id, sid=sid))
    return SendOutcome("duplicate", claim.outbound_id, sid)


def _search_twilio_list(
    cfg: Settings,
    engine: Engine,
    claim: Claim,
    channel: str,
    to: str,
    body: str,
    media_url: str | None,
    template: bool = False,
) -> tuple[str, str] | None:
    """(sid, status) of a message in Twilio's list that is this one and no other row's.

    A message sent as a Content template shows Twilio's rendering of it, not our ``body``: such a
    send matches any message to the number since its first attempt that no other row holds,
    those with our exact body first. (Its status callbacks, which carry the idempotency key,
    usually give it its sid before this search is needed.)
    """
    since = claim.first_attempt_at - dt.timedelta(seconds=RECONCILE_SLACK)
    media = 1 if media_url else 0
    candidates: list[tuple[int, dt.datetime, str, str]] = []
    # No DateSent filter: a message still queued has no date_sent yet. The list is read
    # newest first, and filtered here on what Twilio shows of it.
    for message in client_for(cfg).messages.stream(
        to=twilio_address(channel, to),
        from_=sender_for(cfg, channel),
        limit=RECONCILE_SCAN,
        page_size=50,
    ):
        created = message.date_created
        if created is None:
            continue
        created_utc = created.astimezone(dt.timezone.utc).replace(tzinfo=None)
        exact = (message.body or "") == body
        if created_utc < since or not (exact or template):
            continue
        if _int(message.num_media) != media and not template:
            continue
        rank = 0 if exact else 1
        candidates.append((rank, created_utc, str(message.sid), str(message.status or "queued")))
    if not candidates:
        return None
    with session_scope(engine) as session:
        owned = set(
            session.execute(
                select(OutboundMessage.twilio_sid).where(
                    OutboundMessage.twilio_sid.in_([c[2] for c in candidates])
                )
            ).scalars()
        )
    unowned = sorted(c for c in candidates if c[2] not in owned)
    return (unowned[0][2], unowned[0][3]) if unowned else None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def set_outbound_row(engine: Engine, outbound_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        row = session.get(OutboundMessage, outbound_id)
        if row is None:
            return
        for name, value in values.items():
            setattr(row, name, value)


def _record_sid(engine: Engine, outbound_id: int, sid: str, status: str) -> None:
    """Store the sid Twilio gave the message, unless a status callback already did."""
    with engine.begin() as db:
        params = {"row_id": outbound_id, "sid": sid, "new_status": status, "now": utcnow()}
        stored = db.execute(_RECORD_SID, params).rowcount
        held = None if stored else db.execute(_SID_OF, {"row_id": outbound_id}).first()
    if held is not None and held.twilio_sid != sid:
        log.warning(
            kv(
                "twilio_second_sid_for_one_message",
                outbound_id=outbound_id,
                sid=sid,
                kept=held.twilio_sid,
            )
        )


def is_transient(exc: TwilioRestException) -> bool:
    """True for Twilio answers a retry may fix: rate limiting and server errors."""
    return exc.status == 429 or exc.status >= 500 or exc.code == 20429


def _code(exc: TwilioRestException) -> int | None:
    return exc.code if isinstance(exc.code, int) else None


def _answer_of(exc: TwilioException) -> tuple[int | None, int | None]:
    """(HTTP status, Twilio error code) of a failed request.

    A create raises :class:`TwilioRestException`; reading a list raises a plain
    :class:`TwilioException` carrying the response ("Unable to fetch page").
    """
    if isinstance(exc, TwilioRestException):
        return exc.status, _code(exc)
    response = exc.args[1] if len(exc.args) > 1 else None
    http = getattr(response, "status_code", None)
    try:
        code = json.loads(getattr(response, "text", "") or "{}").get("code")
    except (ValueError, AttributeError):
        code = None
    return http, code if isinstance(code, int) else None


def _handle_twilio_error(
    engine: Engine,
    cfg: Settings,
    exc: TwilioRestException,
    outbound_id: int,
    channel: str,
    to: str,
    redis_conn: redis.Redis | None,
) -> SendOutcome:
    code = _code(exc)
    if exc.status in CREDENTIALS_REJECTED:
        # Twilio refused the request itself: nothing was accepted, and nothing else will be.
        set_outbound_row(engine, outbound_id, status=RETRYING, error_code=code)
        pause_sending(cfg, redis_conn, exc.status, code)
        raise TwilioSendingPaused(f"Twilio answered {exc.status} (code {code})", code) from exc
    if is_transient(exc):
        set_outbound_row(engine, outbound_id, status=RETRYING, error_code=code)
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


# --------------------------------------------------------------------------- content templates

#: Path of the Content API's templates on the ``content`` domain.
CONTENT_PATH = "/v1/Content"


def create_content(cfg: Settings, definition: Mapping[str, object]) -> str:
    """Create a Content template (Twilio's Content API) and return its sid.

    ``definition`` is the JSON body Twilio takes: ``friendly_name``, ``language``,
    ``variables`` and ``types``. twilio 8.2.2 can fetch, list and delete Content but not
    create it, so the client's own transport posts the JSON (its auth, timeout and base URL).
    Raises :class:`TwilioRestException` for Twilio's refusals and ``requests`` errors when it
    cannot be reached.
    """
    client = client_for(cfg)
    url = client.content.absolute_url(CONTENT_PATH)
    payload: Any = json.dumps(definition, ensure_ascii=False)
    response = client.request(
        "POST", url, data=payload, headers={"Content-Type": "application/json"}
    )
    try:
        answer = json.loads(response.text or "{}")
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if response.status_code not in (200, 201):
        code = answer.get("code")
        raise TwilioRestException(
            response.status_code,
            url,
            str(answer.get("message") or "Content create failed"),
            code if isinstance(code, int) else None,
            method="POST",
        )
    sid = str(answer.get("sid") or "")
    if not CONTENT_SID.match(sid):
        raise TwilioRestException(response.status_code, url, "no Content sid in the answer")
    return sid


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class Pause:
    """Why and since when sending is paused for an account."""

    http: int
    code: int | None
    since: str

    @property
    def reason(self) -> str:
        return f"Twilio answered HTTP {self.http} (code {self.code or '-'})"


def pause_key(cfg: Settings) -> str:
    """The Redis key of the account's pause."""
    return PAUSE_KEY.format(account=cfg.twilio_account_sid)


def pause_state(cfg: Settings, conn: redis.Redis | None) -> Pause | None:
    """The account's pause, or None while Twilio accepts the credentials (or Redis is down)."""
    if conn is None:
        return None
    try:
        raw = conn.hgetall(pause_key(cfg))
    except redis.RedisError:
        # A job cannot run without Redis; a direct caller sends and finds out from Twilio.
        return None
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    return Pause(
        http=_int(fields.get("http")),
        code=_int(fields.get("code")) or None,
        since=fields.get("since", ""),
    )


def _account(cfg: Settings) -> str:
    sid = cfg.twilio_account_sid
    return f"{sid[:2]}…{sid[-4:]}"


def pause_sending(cfg: Settings, conn: redis.Redis | None, http: int, code: int | None) -> None:
    """Record that Twilio refuses the credentials; alert once, when the pause begins."""
    since = utcnow().isoformat(timespec="seconds") + "Z"
    first = True
    if conn is not None:
        try:
            key = pause_key(cfg)
            first = bool(conn.hsetnx(key, "since", since))
            if first:
                conn.hset(key, mapping={"http": http, "code": code or ""})
        except redis.RedisError as exc:
            log.warning(kv("twilio_pause_not_recorded", error=type(exc).__name__))
    if first:
        log.error(
            kv(
                "twilio_credentials_rejected",
                account=_account(cfg),
                http=http,
                code=code,
                action="sending paused; messages wait until Twilio accepts the credentials",
            )
        )


def probe_credentials(cfg: Settings, conn: redis.Redis) -> bool:
    """Lift the account's pause once Twilio accepts the credentials; True when not paused.

    The probe reads one message from Twilio's list: it needs the same credentials as a send,
    and sends nothing.
    """
    paused = pause_state(cfg, conn)
    if paused is None:
        return True
    try:
        client_for(cfg).messages.list(limit=1)
    except TwilioException as exc:
        http, code = _answer_of(exc)
        event = "twilio_credentials_still_rejected" if http in CREDENTIALS_REJECTED else None
        log.info(kv(event or "twilio_probe_failed", http=http, code=code))
        return False
    except requests.RequestException as exc:
        log.info(kv("twilio_probe_failed", error=type(exc).__name__))
        return False
    conn.delete(pause_key(cfg))
    log.warning(kv("twilio_credentials_accepted", account=_account(cfg), paused_since=paused.since))
    return True


__all__ = [
    "MAX_BODY",
    "PERMANENT_ERRORS",
    "Pause",
    "SendInFlight",
    "SendOutcome",
    "TwilioSendingPaused",
    "TwilioTransientError",
    "client_for",
    "create_content",
    "make_client",
    "pause_sending",
    "pause_state",
    "probe_credentials",
    "send",
    "split_body",
    "truncate",
]
