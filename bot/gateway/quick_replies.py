"""WhatsApp buttons: a reply's options as a Twilio ``twilio/quick-reply`` Content template.

Rasa answers a question with ``buttons`` (title and payload). On WhatsApp a reply with 1 to
:data:`MAX_BUTTONS` buttons whose titles fit goes as a quick-reply template: the template's
body is the variable ``{{1}}`` (the reply's text goes in ``ContentVariables``) and its buttons
are fixed in it, each with the payload as its id, so a tap comes back as ``ButtonPayload`` =
what the bot would read from a typed answer. SMS, and any reply that does not fit, gets the
numbered lines (:func:`numbered`).

One template serves every reply with the same buttons in the same language, so it is created
once through Twilio's Content API and its sid kept in ``quick_reply_templates``. The database,
not Redis, holds it: the sid must outlive a Redis flush (a template recreated per flush would
pile up in the Twilio account), the row's unique ``key`` settles concurrent workers, and a
lookup is one indexed read per reply with buttons, which only staff visits have. A worker that
finds no row inserts one first (the claim) and only then calls Twilio; a worker that loses the
insert waits for the winner's sid and reuses it, so concurrent workers create one template.
A creation that fails leaves the row marked failed: replies go as numbered text, and the next
attempt waits :data:`RETRY_FAILED_AFTER`; a claim whose worker died is taken over after
:data:`CLAIM_LEASE`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from twilio.base.exceptions import TwilioException, TwilioRestException

from bot import twilio_client
from bot.clock import utcnow
from bot.logfmt import kv
from bot.settings import Settings
from bot.store import QuickReplyTemplate, session_scope

log = logging.getLogger(__name__)

#: WhatsApp takes at most this many quick-reply buttons in a session message.
MAX_BUTTONS = 3
#: WhatsApp's limit on a button's title, in characters.
MAX_TITLE = 20
#: Twilio's limit on a button's id.
MAX_ID = 200
#: WhatsApp's limit on a quick-reply body, in characters; longer text goes numbered.
MAX_BODY = 1024
#: Seconds a worker's claim on creating a template holds before another may take it over
#: (the creating request's own timeout, twice).
CLAIM_LEASE = 2 * twilio_client.HTTP_TIMEOUT
#: Seconds after a failed creation before another is tried; replies go numbered meanwhile.
RETRY_FAILED_AFTER = 60
#: Seconds a worker waits for another worker's creation before it sends numbered text.
WAIT_FOR_OTHER = 10.0
#: Seconds between looks at another worker's creation.
POLL_INTERVAL = 0.1
#: Twilio's answer to a send whose template it does not know (deleted, or another account's).
UNKNOWN_CONTENT = 21655
#: The sample value of the body's variable, which Twilio requires with a template.
SAMPLE_BODY = "Question"

_DEVANAGARI = re.compile(r"[\u0900-\u097F]")


@dataclass(frozen=True)
class Button:
    """One option of a reply: what the person sees and what the bot reads back."""

    title: str
    payload: str


def buttons_of(raw: object) -> tuple[Button, ...]:
    """The buttons of a Rasa REST message's ``buttons`` field (titles without payload kept)."""
    if not isinstance(raw, list):
        return ()
    found = []
    for item in raw:
        if isinstance(item, dict) and str(item.get("title") or "").strip():
            title = str(item["title"]).strip()
            found.append(Button(title, str(item.get("payload") or title)))
    return tuple(found)


def numbered(text: str, buttons: Sequence[Button]) -> str:
    """The text with its options as numbered lines: how SMS (and the fallback) shows them."""
    return "\n".join([text, *(f"{n}. {b.title}" for n, b in enumerate(buttons, 1))]).strip()


def fits(text: str, buttons: Sequence[Button]) -> bool:
    """Whether a reply can go as a quick-reply template on WhatsApp."""
    return (
        0 < len(buttons) <= MAX_BUTTONS
        and 0 < len(text.strip()) <= MAX_BODY
        and all(0 < len(b.title) <= MAX_TITLE and 0 < len(b.payload) <= MAX_ID for b in buttons)
        and len({b.payload for b in buttons}) == len(buttons)
    )


def language_of(buttons: Sequence[Button]) -> str:
    """The template's language: ``hi`` for Devanagari titles, else ``en`` (Roman script)."""
    return "hi" if any(_DEVANAGARI.search(b.title) for b in buttons) else "en"


def actions_of(buttons: Sequence[Button]) -> list[dict[str, str]]:
    """The template's quick-reply actions: the title shown, the payload as the id."""
    return [{"title": b.title, "id": b.payload} for b in buttons]


def template_key(language: str, buttons: Sequence[Button]) -> str:
    """The cache key of a button set in a language (order matters: it is the numbering)."""
    canonical = json.dumps(
        {"type": "twilio/quick-reply", "language": language, "actions": actions_of(buttons)},
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def definition(key: str, language: str, buttons: Sequence[Button]) -> dict[str, object]:
    """The Content API's JSON body for a button set."""
    return {
        "friendly_name": f"bijli_quick_reply_{language}_{key[:12]}",
        "language": language,
        "variables": {"1": SAMPLE_BODY},
        "types": {
            "twilio/quick-reply": {"body": "{{1}}", "actions": actions_of(buttons)},
            # What a channel without buttons shows (WhatsApp never does).
            "twilio/text": {"body": "{{1}}"},
        },
    }


# --------------------------------------------------------------------------- the cache

_CLAIMED, _BUSY, _FAILED = "claimed", "busy", "failed"


def content_sid_for(cfg: Settings, engine: Engine, buttons: Sequence[Button]) -> str | None:
    """The sid of the quick-reply template for ``buttons``, created if needed; None when
    there is none to use now (creation failed, or another worker's did not finish in time):
    the caller sends numbered text instead."""
    language = language_of(buttons)
    key = template_key(language, buttons)
    deadline = time.monotonic() + WAIT_FOR_OTHER
    while True:
        state = _claim(engine, key, language, buttons)
        if state == _CLAIMED:
            return _create(cfg, engine, key, language, buttons)
        if state == _FAILED:
            return None
        if state != _BUSY:
            return state  # the sid
        if time.monotonic() >= deadline:
            log.warning(kv("quick_reply_template_wait_expired", key=key[:12]))
            return None
        time.sleep(POLL_INTERVAL)


def _claim(engine: Engine, key: str, language: str, buttons: Sequence[Button]) -> str:
    """The template's sid, or whether this worker now creates it (claimed), another does
    (busy) or the last creation failed a moment ago (failed)."""
    now = utcnow()
    with session_scope(engine) as session:
        row = session.execute(
            select(QuickReplyTemplate).where(QuickReplyTemplate.key == key)
        ).scalar_one_or_none()
        if row is not None:
            if row.content_sid:
                return str(row.content_sid)
            if row.failed_at is not None:
                if now - row.failed_at < dt.timedelta(seconds=RETRY_FAILED_AFTER):
                    return _FAILED
            elif now - row.claimed_at < dt.timedelta(seconds=CLAIM_LEASE):
                return _BUSY
            # An old failure, or a claim whose worker died: whoever moves claimed_at takes it.
            won = session.execute(
                update(QuickReplyTemplate)
                .where(
                    QuickReplyTemplate.id == row.id,
                    QuickReplyTemplate.claimed_at == row.claimed_at,
                    QuickReplyTemplate.content_sid.is_(None),
                )
                .values(claimed_at=now, failed_at=None, error_code=None)
                .execution_options(synchronize_session=False)
            ).rowcount
            return _CLAIMED if won else _BUSY
    try:
        with session_scope(engine) as session:
            session.add(
                QuickReplyTemplate(
                    key=key,
                    language=language,
                    actions=json.dumps(actions_of(buttons), ensure_ascii=False),
                    claimed_at=now,
                )
            )
    except IntegrityError:
        return _BUSY  # another worker inserted it first: wait for its sid
    return _CLAIMED


def _create(
    cfg: Settings, engine: Engine, key: str, language: str, buttons: Sequence[Button]
) -> str | None:
    """Create the claimed template at Twilio and store its sid; None (and the row marked
    failed) when Twilio refuses or cannot be reached."""
    started = time.monotonic()
    error: int | str | None
    try:
        sid = twilio_client.create_content(cfg, definition(key, language, buttons))
    except TwilioRestException as exc:
        error = exc.code if isinstance(exc.code, int) else exc.status
    except (TwilioException, requests.RequestException) as exc:
        error = type(exc).__name__
    else:
        with session_scope(engine) as session:
            session.execute(
                update(QuickReplyTemplate)
                .where(QuickReplyTemplate.key == key)
                .values(content_sid=sid, failed_at=None, error_code=None)
                .execution_options(synchronize_session=False)
            )
        log.info(
            kv(
                "quick_reply_template_created",
                key=key[:12],
                sid=sid,
                language=language,
                buttons=len(buttons),
                ms=round((time.monotonic() - started) * 1000),
            )
        )
        return sid
    with session_scope(engine) as session:
        session.execute(
            update(QuickReplyTemplate)
            .where(QuickReplyTemplate.key == key, QuickReplyTemplate.content_sid.is_(None))
            .values(failed_at=utcnow(), error_code=error if isinstance(error, int) else None)
            .execution_options(synchronize_session=False)
        )
    log.warning(kv("quick_reply_template_failed", key=key[:12], error=error))
    return None


def forget(engine: Engine, content_sid: str) -> None:
    """Drop a template Twilio no longer knows (error 21655): the next reply creates it anew."""
    with session_scope(engine) as session:
        session.execute(
            delete(QuickReplyTemplate).where(QuickReplyTemplate.content_sid == content_sid)
        )
    log.warning(kv("quick_reply_template_unknown_to_twilio", sid=content_sid))


def buttons_by_sid(engine: Engine, sids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The actions (title, id) of known templates, by sid (the dev console shows them)."""
    if not sids:
        return {}
    with session_scope(engine) as session:
        rows = session.execute(
            select(QuickReplyTemplate.content_sid, QuickReplyTemplate.actions).where(
                QuickReplyTemplate.content_sid.in_(list(sids))
            )
        ).all()
    return {str(sid): json.loads(actions) for sid, actions in rows}


__all__ = [
    "MAX_BUTTONS",
    "MAX_TITLE",
    "UNKNOWN_CONTENT",
    "Button",
    "buttons_by_sid",
    "buttons_of",
    "content_sid_for",
    "definition",
    "fits",
    "forget",
    "numbered",
    "template_key",
]
