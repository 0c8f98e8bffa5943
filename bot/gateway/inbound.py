"""The gateway's RQ job: answer one inbound message (dead letters: :mod:`bot.gateway.dead_letters`).

A job takes the id of an :class:`~bot.store.InboundMessage` and re-reads everything else, so it
tolerates a vanished row and a replay. The replies it plans (Rasa's answer, or the gateway's own
text for STOP/START and empty messages) are cached in Redis before anything is sent, so a
retry after a Twilio failure neither asks Rasa twice nor sends a confirmation twice; every send
carries an idempotency key derived from the message id and the reply's position.

A reply with buttons goes on WhatsApp as a quick-reply Content template
(:mod:`bot.gateway.quick_replies`), and as numbered lines on SMS, or whenever the template
cannot be had (the Content API failing, Twilio no longer knowing it): the reply is never lost.
A tapped button reaches Rasa as its payload (``ButtonPayload``, which Twilio signs with the
rest of the webhook), so a tap and a typed "1" read the same.

While Twilio refuses the credentials (sending is paused, see :mod:`bot.twilio_client`) a job
ends without answering and without asking Rasa: the message stays unanswered in the inbox, and
the sweep enqueues it again once Twilio accepts the credentials.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import redis
import urllib3
from sqlalchemy import bindparam, exists, literal_column, select, update
from sqlalchemy.engine import Engine

from bot import connections, handoffs, signing, twilio_client
from bot import settings as settings_mod
from bot.clock import utcnow
from bot.gateway import quick_replies, texts
from bot.gateway.ordering import PROFILE_KEY
from bot.gateway.quick_replies import Button
from bot.logfmt import kv
from bot.phone import mask
from bot.store import (
    Consumer,
    Handoff,
    InboundMessage,
    Staff,
    audit,
    session_scope,
    set_opt_out,
)

log = logging.getLogger(__name__)

# Workers import this module once, before their first job: read the texts here, not per job.
texts.preload()

#: Longest text passed to Rasa; longer messages are cut at a word end (NLU on essays is slow
#: and never better).
MAX_INBOUND_CHARS = 500
#: What Rasa reads for a location pin sent without words: Rasa's own syntax for an intent
#: (RegexMessageHandler), so the pin is a power-cut report whatever the NLU model would guess.
LOCATION_ONLY_TEXT = "/report_power_cut"
#: Seconds to wait for Rasa's answer (it runs custom actions, which read the database).
RASA_TIMEOUT = 30.0
#: Planned replies are kept this long, so that retries resend the same ones.
REPLIES_TTL = 24 * 3600
REPLIES_KEY = "bijli:inbound:replies:{id}"


# Built once (building a statement costs more than running it): the message, whether its
# sender is active staff, the language of the sender's first account, and whether the sender
# has an open handoff (only then can an agent hold the conversation).
_JOB_INPUT = select(
    InboundMessage.channel,
    InboundMessage.from_number,
    InboundMessage.body,
    InboundMessage.num_media,
    InboundMessage.latitude,
    InboundMessage.longitude,
    InboundMessage.processed_at,
    InboundMessage.button_payload,
    exists()
    .where(Staff.mobile == InboundMessage.from_number, Staff.active.is_(True))
    .label("staff"),
    select(Consumer.language)
    .where(Consumer.mobile == InboundMessage.from_number)
    .order_by(Consumer.new_account_no)
    .limit(1)
    .scalar_subquery()
    .label("language"),
    exists()
    .where(
        Handoff.channel == InboundMessage.channel,
        Handoff.mobile == InboundMessage.from_number,
        # A literal, as in the partial index of open handoffs, so that the index serves it.
        Handoff.state != literal_column(f"'{handoffs.CLOSED}'"),
    )
    .label("handoff_open"),
).where(InboundMessage.id == bindparam("id"))
_MARK_ANSWERED = (
    update(InboundMessage.__table__)
    .where(InboundMessage.__table__.c.id == bindparam("inbound_id"))
    .values(processed_at=bindparam("answered_at"))
)


class RasaUnavailable(RuntimeError):
    """Rasa (or the action server behind it) did not answer; the job retries."""


class RasaTurnFailed(RuntimeError):
    """Rasa answered, but its turn failed (an action, its stores) or gave nothing to send."""


@dataclass(frozen=True)
class Reply:
    """One message to send back: text, an image URL, or both; options as ``buttons``."""

    text: str = ""
    image: str | None = None
    buttons: tuple[Button, ...] = ()

    @classmethod
    def from_dict(cls, item: dict[str, Any]) -> Reply:
        """A reply as :func:`dataclasses.asdict` stored it (replies cached before buttons
        were kept have none)."""
        buttons = tuple(Button(**b) for b in item.get("buttons") or ())
        return cls(text=item.get("text") or "", image=item.get("image"), buttons=buttons)

    def numbered(self) -> str:
        """The text with the options as numbered lines."""
        return quick_replies.numbered(self.text, self.buttons)


# --------------------------------------------------------------------------- the job


def handle_inbound(inbound_id: int) -> str:
    """Answer inbound message ``inbound_id``: keywords here, everything else through Rasa."""
    # Read per job, so that a long-lived worker follows its environment (load() hands back the
    # settings it built last while the environment is unchanged).
    cfg = settings_mod.load()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    # Whether sending is paused, the replies an earlier attempt planned and the sender's
    # profile name, in one round trip.
    with conn.pipeline(transaction=False) as pipe:
        pipe.exists(twilio_client.pause_key(cfg))
        pipe.mget(REPLIES_KEY.format(id=inbound_id), PROFILE_KEY.format(id=inbound_id))
        pause_keys, (cached, profile) = pipe.execute()
    paused = bool(pause_keys)
    replies = _decoded_replies(cached)
    routing: handoffs.Routing | None = None
    # One transaction reads the message, who sent it and whether an agent holds the sender.
    with session_scope(engine) as session:
        row = session.execute(_JOB_INPUT, {"id": inbound_id}).one_or_none()
        if row is None:
            log.warning(kv("inbound_vanished", inbound_id=inbound_id))
            return "vanished"
        if row.processed_at is not None:
            return "already_processed"
        channel, mobile, body, num_media = row.channel, row.from_number, row.body, row.num_media
        # A tapped WhatsApp button: the bot reads its payload, the title stays in the inbox.
        body = row.button_payload or body
        pin = (
            (row.latitude, row.longitude)
            if row.latitude is not None and row.longitude is not None
            else None
        )
        role = "staff" if row.staff else "consumer"
        language = row.language
        if row.handoff_open and not paused and replies is None and texts.keyword(body) is None:
            # STOP, START and HELP are still the gateway's to answer when an agent holds the
            # conversation; the message is in the inbox either way (the agent's page reads it).
            routing = handoffs.route_to_agent(session, cfg, channel, mobile)

    if paused:
        # Rasa is not asked either: its conversation moves on only with what the person sees.
        log.info(kv("inbound_waiting_twilio_paused", inbound_id=inbound_id))
        return "paused"
    if routing is not None:
        if routing.overdue and routing.handoff_id is not None:
            handoffs.schedule_expiry(conn, routing.handoff_id, utcnow())
        if routing.to_agent:
            # The bot stays quiet while an agent holds the conversation (bot.handoffs).
            log.info(kv("inbound_to_agent", inbound_id=inbound_id, handoff=routing.handoff_id))
            replies = []
    if replies is None:
        replies = plan_replies(
            cfg,
            engine,
            inbound_id,
            channel,
            mobile,
            body,
            num_media,
            role,
            language,
            (profile or b"").decode(),
            location=pin,
        )
        conn.set(
            REPLIES_KEY.format(id=inbound_id),
            json.dumps([asdict(r) for r in replies], ensure_ascii=False),
            ex=REPLIES_TTL,
        )

    sent = 0
    messages = [
        (f"reply:{inbound_id}:{index}:{part_no}", part, media, reply if part_no == 0 else None)
        for index, reply in enumerate(replies)
        for part_no, (part, media) in enumerate(_messages_for(reply, channel))
    ]
    for key, part, media, reply in messages:
        try:
            if reply is not None and channel == "whatsapp" and _as_buttons(reply):
                outcome = _send_with_buttons(cfg, engine, conn, mobile, key, reply, part)
            else:
                outcome = twilio_client.send(
                    cfg,
                    channel=channel,
                    to=mobile,
                    body=part,
                    media_url=media,
                    idempotency_key=key,
                    engine=engine,
                    redis_conn=conn,
                )
        except twilio_client.TwilioSendingPaused:
            # What was sent stays sent (idempotency keys); the rest goes once sending resumes.
            log.info(kv("inbound_waiting_twilio_paused", inbound_id=inbound_id, sent=sent))
            return "paused"
        if outcome.result == "rejected":
            # Permanent (bad number, unsubscribed, outside the 24-hour window): the rest would
            # fail the same way.
            log.warning(
                kv(
                    "inbound_reply_rejected",
                    inbound_id=inbound_id,
                    code=outcome.error_code,
                    to=mask(mobile),
                )
            )
            break
        sent += 1

    with engine.begin() as db:
        db.execute(_MARK_ANSWERED, {"inbound_id": inbound_id, "answered_at": utcnow()})
    log.info(
        kv(
            "inbound_answered",
            inbound_id=inbound_id,
            to=mask(mobile),
            channel=channel,
            role=role,
            replies=len(replies),
            sent=sent,
        )
    )
    return f"answered:{sent}"


def _as_buttons(reply: Reply) -> bool:
    """Whether a WhatsApp reply goes as a quick-reply template (buttons that fit, no image)."""
    return not reply.image and quick_replies.fits(reply.text, reply.buttons)


def _send_with_buttons(
    cfg: settings_mod.Settings,
    engine: Engine,
    conn: redis.Redis,
    mobile: str,
    key: str,
    reply: Reply,
    numbered: str,
) -> twilio_client.SendOutcome:
    """Send a reply as its quick-reply template; as ``numbered`` text when there is none.

    The text goes under the same key as the template would (a reply that fits is one
    message either way), so a retry never sends both. Only when Twilio refused the template
    as unknown (it was deleted there) does the text go under a key of its own.
    """
    sid = quick_replies.content_sid_for(cfg, engine, reply.buttons)

    def as_text(idempotency_key: str) -> twilio_client.SendOutcome:
        return twilio_client.send(
            cfg,
            channel="whatsapp",
            to=mobile,
            body=numbered,
            idempotency_key=idempotency_key,
            engine=engine,
            redis_conn=conn,
        )

    if sid is None:
        return as_text(key)
    outcome = twilio_client.send(
        cfg,
        channel="whatsapp",
        to=mobile,
        body=reply.text,
        content_sid=sid,
        content_variables={"1": reply.text},
        template_only=True,
        idempotency_key=key,
        engine=engine,
        redis_conn=conn,
    )
    if outcome.twilio_sid is None and outcome.error_code == quick_replies.UNKNOWN_CONTENT:
        quick_replies.forget(engine, sid)
        return as_text(f"{key}:numbered")
    return outcome


def plan_replies(
    cfg: settings_mod.Settings,
    engine: Engine,
    inbound_id: int,
    channel: str,
    mobile: str,
    body: str,
    num_media: int,
    role: str,
    language: str | None,
    profile_name: str = "",
    *,
    location: tuple[float, float] | None = None,
) -> list[Reply]:
    """Decide the answer: a keyword's confirmation, a prompt for empty input, or Rasa's reply.

    A location pin goes to Rasa with the message (signed, see bot.signing); a pin without words
    is a power-cut report, the one thing this bot uses a place for.
    """
    found = texts.keyword(body)
    if found is not None:
        kind, kw_language = found
        if kind == "help":
            # The bot's own replies tell people to send "help" for its menu: one message, the
            # menu from Rasa with the STOP/START line under it.
            menu = ask_rasa(cfg, channel, mobile, body.strip(), role, profile_name)
            return _with_help_footer(menu, language or kw_language)
        return _keyword_replies(engine, inbound_id, channel, mobile, kind, kw_language)
    if not body.strip() and location is not None:
        return ask_rasa(cfg, channel, mobile, LOCATION_ONLY_TEXT, role, profile_name, location)
    if not body.strip():
        key = "media_only" if num_media else "empty_message"
        return [Reply(_localised(key, language))]
    message = twilio_client.truncate(body, MAX_INBOUND_CHARS)
    return ask_rasa(cfg, channel, mobile, message, role, profile_name, location)


def _with_help_footer(menu: list[Reply], language: str) -> list[Reply]:
    """Rasa's menu as one message ending with how to stop and restart alerts."""
    footer = texts.text("help_footer", language)
    text = "\n\n".join(reply.numbered() for reply in menu if reply.text)
    if not text:
        return [Reply(texts.text("help", language))]
    images = [reply.image for reply in menu if reply.image]
    return [Reply(f"{text}\n\n{footer}", images[0] if images else None)]


def _keyword_replies(
    engine: Engine, inbound_id: int, channel: str, mobile: str, kind: str, language: str
) -> list[Reply]:
    opted_out = kind == "opt_out"
    with session_scope(engine) as session:
        changed = set_opt_out(session, mobile, channel, opted_out)
        if changed:
            audit(
                session,
                mask(mobile),
                "opt_out" if opted_out else "opt_in",
                channel,
                inbound_id=inbound_id,
            )
    log.info(
        kv("opt_out" if opted_out else "opt_in", to=mask(mobile), channel=channel, changed=changed)
    )
    if opted_out:
        # One confirmation: a second STOP from an opted-out number gets no answer.
        return [Reply(texts.text("opt_out_confirmation", language))] if changed else []
    key = "opt_in_confirmation" if changed else "opt_in_already"
    return [Reply(texts.text(key, language))]


def _localised(key: str, language: str | None) -> str:
    return texts.text(key, language) if language else texts.bilingual(key)


def ask_rasa(
    cfg: settings_mod.Settings,
    channel: str,
    mobile: str,
    message: str,
    role: str,
    profile_name: str = "",
    location: tuple[float, float] | None = None,
) -> list[Reply]:
    """Post the message, signed, to Rasa's gateway channel and turn its answer into replies.

    A failed turn (the channel's 500 naming the failure) and an answer with nothing to send raise
    :class:`RasaTurnFailed`, so the job is retried and, after the last retry, dead-lettered.
    """
    signed = signing.new_message(channel, mobile, role, message, profile_name, location)
    body, headers = signing.signed_request(cfg.gateway_signing_secret, signed)
    url = f"{cfg.rasa_url}{signing.WEBHOOK_PATH}"
    try:
        # A new connection per message: a kept-alive one would stick to the Sanic worker that
        # accepted it, so a few RQ workers could all land on one Rasa worker.
        response = connections.rasa_http(cfg).request(
            "POST",
            url,
            body=body,
            headers={**headers, "Connection": "close"},
            timeout=urllib3.Timeout(connect=3.05, read=RASA_TIMEOUT),
        )
    except urllib3.exceptions.HTTPError as exc:
        raise RasaUnavailable(f"Rasa unreachable: {type(exc).__name__}") from exc
    if response.status != 200:
        error = _error_of(response)
        if response.status == 500 and error:
            raise RasaTurnFailed(f"Rasa's turn failed: {error}")
        raise RasaUnavailable(
            f"Rasa answered HTTP {response.status}" + (f": {error}" if error else "")
        )
    try:
        answer = response.json()
    except ValueError as exc:
        raise RasaUnavailable("Rasa answered something that is not JSON") from exc
    replies = rasa_replies(answer if isinstance(answer, list) else [])
    if not replies:
        raise RasaTurnFailed("Rasa answered nothing to send")
    return replies


def _error_of(response: urllib3.BaseHTTPResponse) -> str:
    """The channel's ``{"error": …}`` with its details, or "" for any other body."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return ""
    details = [f"{key}={value}" for key, value in data.items() if key != "error"]
    return " ".join([data["error"], *details])[:500]


def rasa_replies(answer: list[dict[str, Any]]) -> list[Reply]:
    """Replies from Rasa REST output: text with its buttons, images, custom text."""
    replies: list[Reply] = []
    for item in answer:
        if not isinstance(item, dict):
            continue
        text = str(item.get("text") or "")
        buttons = quick_replies.buttons_of(item.get("buttons"))
        custom = item.get("custom")
        if not text and isinstance(custom, dict) and custom.get("text"):
            text = str(custom["text"])
        image = item.get("image")
        if text or image or buttons:
            replies.append(Reply(text=text, image=str(image) if image else None, buttons=buttons))
    return replies


def _messages_for(reply: Reply, channel: str) -> list[tuple[str, str | None]]:
    """(body, media URL) messages for one reply on a channel; options as numbered lines."""
    text = reply.numbered()
    if reply.image and channel == "whatsapp":
        caption = twilio_client.truncate(text, twilio_client.MAX_BODY) if text else ""
        return [(caption, reply.image)]
    if reply.image:
        # SMS carries no pictures in India: send the link instead.
        text = f"{text}\n{reply.image}".strip()
    return [(part, None) for part in twilio_client.split_body(text)] if text else []


def _decoded_replies(raw: bytes | None) -> list[Reply] | None:
    """The replies an earlier attempt planned, as cached, or None."""
    if raw is None:
        return None
    return [Reply.from_dict(item) for item in json.loads(raw)]
