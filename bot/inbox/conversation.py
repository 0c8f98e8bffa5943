"""A sender's conversation as an agent reads it: messages in and out, who wrote each, in order.

Everything comes from the tables the gateway already fills (``inbound_messages`` and
``outbound_messages``); an outbound message's idempotency key says who sent it: the bot
(``reply:``), an agent (``handoff-reply:`` → :class:`~bot.store.HandoffReply`), the inbox itself
(``handoff-notice:``) or a campaign. Agents' replies that are queued or failed, and so have no
outbound row yet (or never will), are shown too, so nothing an agent wrote disappears.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store import Handoff, HandoffReply, InboundMessage, Operator, OutboundMessage

#: Messages shown: the newest this many.
LIMIT = 60
#: Idempotency-key prefixes of the inbox's own sends.
REPLY_KEY = "handoff-reply:{id}"
NOTICE_KEY = "handoff-notice:{id}:{kind}"


@dataclass(frozen=True)
class Entry:
    """One message of the conversation."""

    at: dt.datetime  # naive UTC
    direction: str  # "in" or "out"
    author: str  # "consumer", "bot", "inbox", "campaign" or an agent's display name
    body: str
    status: str = ""  # outbound: Twilio's status, or the reply's own (queued, failed)
    media: bool = False
    inbound_id: int | None = None
    outbound_id: int | None = None
    reply_id: int | None = None
    error_code: int | None = None

    @property
    def key(self) -> str:
        """A stable id for the page (so polling can tell what is new)."""
        if self.inbound_id is not None:
            return f"in-{self.inbound_id}"
        if self.outbound_id is not None:
            return f"out-{self.outbound_id}"
        return f"reply-{self.reply_id}"


def _author_of(key: str) -> tuple[str, int | None]:
    if key.startswith("reply:"):
        return "bot", None
    if key.startswith("handoff-reply:"):
        # handoff-reply:<reply id>, then :<part> for the second part of a long reply
        raw = key.split(":")[1]
        return "agent", int(raw) if raw.isdigit() else None
    if key.startswith("handoff-notice:"):
        return "inbox", None
    return "campaign", None


def entries(session: Session, channel: str, mobile: str, limit: int = LIMIT) -> list[Entry]:
    """The newest ``limit`` messages between us and ``mobile`` on ``channel``, oldest first."""
    inbound = session.execute(
        select(InboundMessage)
        .where(InboundMessage.channel == channel, InboundMessage.from_number == mobile)
        .order_by(InboundMessage.id.desc())
        .limit(limit)
    ).scalars()
    outbound = session.execute(
        select(OutboundMessage)
        .where(OutboundMessage.channel == channel, OutboundMessage.to_number == mobile)
        .order_by(OutboundMessage.id.desc())
        .limit(limit)
    ).scalars()
    found: list[Entry] = [
        Entry(
            at=row.received_at,
            direction="in",
            author="consumer",
            body=row.body,
            media=bool(row.num_media),
            inbound_id=row.id,
        )
        for row in inbound
    ]
    replies = _agent_replies(session, channel, mobile, limit)
    sent_replies: set[int] = set()
    for row in outbound:
        author, reply_id = _author_of(row.idempotency_key)
        known = replies.get(reply_id) if reply_id is not None else None
        if reply_id is not None:
            sent_replies.add(reply_id)
        found.append(
            Entry(
                at=row.created_at,
                direction="out",
                author=known[1] if known is not None else author,
                body=row.body,
                status=row.status,
                media=bool(row.media_url),
                outbound_id=row.id,
                reply_id=reply_id,
                error_code=row.error_code,
            )
        )
    for reply_id, (reply, name) in replies.items():
        if reply_id not in sent_replies:
            found.append(
                Entry(
                    at=reply.created_at,
                    direction="out",
                    author=name,
                    body=reply.body,
                    status=reply.status,
                    reply_id=reply_id,
                    error_code=reply.error_code,
                )
            )
    found.sort(key=lambda e: (e.at, e.direction == "out"))
    return found[-limit:]


def _agent_replies(
    session: Session, channel: str, mobile: str, limit: int
) -> dict[int, tuple[HandoffReply, str]]:
    rows = session.execute(
        select(HandoffReply, Operator.display_name)
        .join(Handoff, Handoff.id == HandoffReply.handoff_id)
        .join(Operator, Operator.id == HandoffReply.operator_id)
        .where(Handoff.channel == channel, Handoff.mobile == mobile)
        .order_by(HandoffReply.id.desc())
        .limit(limit)
    ).all()
    return {int(reply.id): (reply, str(name)) for reply, name in rows}


__all__ = ["LIMIT", "NOTICE_KEY", "REPLY_KEY", "Entry", "entries"]
