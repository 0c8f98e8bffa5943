"""``/admin/inbox``: the conversations handed to a person, and the page an agent answers on.

Behind the admin shell's guard, which signs operators in and checks the CSRF token of every form
posted under /admin (the buttons here carry ``csrf_token()``; the reply is a FlaskForm). An agent
takes a waiting conversation (or simply replies, which takes it); while they hold it the bot
stays quiet for that sender (bot/gateway/inbound.py asks :mod:`bot.handoffs`). Replies are
recorded first and sent by an RQ job (:mod:`bot.inbox.jobs`), so a Twilio hiccup is retried and
a form posted twice is one reply. What an operator sees of the consumer depends on their role
(:mod:`bot.inbox.masking`); officers and admins may also take a conversation over from an agent.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

import redis
from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from bot import connections, handoffs
from bot.clock import to_ist, utcnow
from bot.connections import RedisNotConfigured
from bot.inbox import conversation, jobs
from bot.inbox.masking import Masker, sees_full_details
from bot.logfmt import kv
from bot.office_hours import OfficeHours
from bot.settings import Settings
from bot.store import Handoff, HandoffReply, Operator, audit, consumers_by_mobile, session_scope
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint(
    "inbox",
    __name__,
    url_prefix="/admin/inbox",
    template_folder="templates",
    static_folder="static",
)

#: Longest reply an agent may write (with their name before it, it stays one WhatsApp message).
MAX_REPLY = 1000
#: Roles that may take a conversation another agent holds, or close it.
TAKE_OVER_ROLES = frozenset({"officer", "admin"})
#: Closed conversations listed below the open ones.
RECENTLY_CLOSED = 20


def _ist(moment: dt.datetime | None) -> str:
    return f"{to_ist(moment):%d-%m-%Y %H:%M}" if moment else ""


def init_app(app: Flask, cfg: Settings) -> None:
    """Register the inbox's pages; a mistyped BIJLI_OFFICE_HOURS stops the web process here."""
    OfficeHours.parse(cfg.office_hours)
    app.register_blueprint(bp)


@bp.app_template_filter("ist")
def ist_filter(moment: dt.datetime | None) -> str:
    """A naive-UTC moment as IST for people: ``05-11-2026 14:30``."""
    return _ist(moment)


class ReplyForm(FlaskForm):
    """The agent's reply, with a one-time token that makes a double post one reply."""

    body = TextAreaField(
        "Reply", validators=[DataRequired(), Length(max=MAX_REPLY, message="Reply too long")]
    )
    form_token = HiddenField(validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{16,40}$")])


@dataclass(frozen=True)
class Row:
    """A handoff as the list and the page show it, masked for the operator's role."""

    id: int
    state: str
    channel: str
    sender: str
    language: str
    account: str
    reason: str
    opened: str
    promised: str
    overdue: bool
    holder: str
    mine: bool
    unread: bool
    closed: str
    close_reason: str


def _row(handoff: Handoff, names: dict[int, str], masker: Masker, now: dt.datetime) -> Row:
    last_in, last_out = handoff.last_consumer_at, handoff.last_agent_at
    return Row(
        id=handoff.id,
        state=handoff.state,
        channel=handoff.channel,
        sender=masker.mobile(handoff.mobile),
        language=handoff.language,
        account=masker.account(handoff.new_account_no) if handoff.new_account_no else "",
        reason=masker.text(handoff.reason),
        opened=_ist(handoff.opened_at),
        promised=_ist(handoff.promised_by),
        overdue=handoff.state == handoffs.WAITING and handoff.promised_by < now,
        holder=names.get(handoff.operator_id or 0, ""),
        mine=handoff.operator_id == current_user.id,
        unread=last_in is not None and (last_out is None or last_in > last_out),
        closed=_ist(handoff.closed_at),
        close_reason=handoff.close_reason or "",
    )


def _names(session: Session) -> dict[int, str]:
    return {int(i): str(n) for i, n in session.execute(select(Operator.id, Operator.display_name))}


def _operator(session: Session) -> Operator:
    operator = session.get(Operator, current_user.id)
    if operator is None:  # deleted while signed in
        abort(403)
    return operator


def _may_take_over() -> bool:
    return current_user.role in TAKE_OVER_ROLES


def _engine() -> Engine:
    return connections.engine(app_settings())


@bp.get("/")
def index() -> ResponseReturnValue:
    """Open conversations (waiting first, by promised time), then recently closed ones."""
    masker = Masker(current_user.role)
    now = utcnow()
    with session_scope(_engine()) as session:
        names = _names(session)
        open_rows = session.execute(
            select(Handoff)
            .where(Handoff.state != handoffs.CLOSED)
            .order_by(Handoff.state.desc(), Handoff.promised_by, Handoff.id)
        ).scalars()
        closed_rows = session.execute(
            select(Handoff)
            .where(Handoff.state == handoffs.CLOSED)
            .order_by(Handoff.closed_at.desc())
            .limit(RECENTLY_CLOSED)
        ).scalars()
        waiting_and_held = [_row(h, names, masker, now) for h in open_rows]
        closed = [_row(h, names, masker, now) for h in closed_rows]
    return render_template("inbox/index.html", open_rows=waiting_and_held, closed_rows=closed)


def _page_data(session: Session, handoff_id: int) -> tuple[Row, list[conversation.Entry]]:
    handoff = session.get(Handoff, handoff_id)
    if handoff is None:
        abort(404)
    masker = Masker(current_user.role)
    row = _row(handoff, _names(session), masker, utcnow())
    entries = [
        conversation.Entry(
            at=e.at,
            direction=e.direction,
            author=e.author,
            body=masker.text(e.body),
            status=e.status,
            media=e.media,
            inbound_id=e.inbound_id,
            outbound_id=e.outbound_id,
            reply_id=e.reply_id,
            error_code=e.error_code,
        )
        for e in conversation.entries(session, handoff.channel, handoff.mobile)
    ]
    return row, entries


@bp.get("/<int:handoff_id>")
def show(handoff_id: int) -> ResponseReturnValue:
    """The conversation so far, and the reply form."""
    masker = Masker(current_user.role)
    with session_scope(_engine()) as session:
        row, entries = _page_data(session, handoff_id)
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None
        accounts = [
            {
                "number": masker.account(c.new_account_no),
                "name": masker.name(c.name),
                "area": c.area,
                "discom": c.discom,
            }
            for c in consumers_by_mobile(session, handoff.mobile)
        ]
        if sees_full_details(current_user.role):
            # Who saw a consumer's details in full, for the data-protection record.
            audit(session, f"operator:{current_user.username}", "handoff_viewed", str(handoff_id))
    return render_template(
        "inbox/conversation.html",
        handoff=row,
        entries=entries,
        accounts=accounts,
        form=ReplyForm(form_token=secrets.token_urlsafe(24)),
        may_take_over=_may_take_over(),
        max_reply=MAX_REPLY,
    )


@bp.get("/<int:handoff_id>/messages")
def messages(handoff_id: int) -> ResponseReturnValue:
    """The message list alone, which the page fetches every few seconds."""
    with session_scope(_engine()) as session:
        row, entries = _page_data(session, handoff_id)
    return render_template("inbox/_messages.html", handoff=row, entries=entries)


def _back(handoff_id: int) -> ResponseReturnValue:
    return redirect(url_for("inbox.show", handoff_id=handoff_id))


def _redis() -> redis.Redis:
    return connections.redis(app_settings())


def _schedule_expiry(handoff_id: int) -> None:
    """Taking or answering moves the deadline: have the expiry job look at the new one."""
    cfg = app_settings()
    with session_scope(_engine()) as session:
        handoff = session.get(Handoff, handoff_id)
        if handoff is None or handoff.state == handoffs.CLOSED:
            return
        due = handoffs.deadline(handoff, cfg)
    try:
        handoffs.schedule_expiry(_redis(), handoff_id, due)
    except (redis.RedisError, RedisNotConfigured) as exc:
        # The gateway still ends an overdue hold on the consumer's next message.
        log.error(kv("handoff_expiry_not_scheduled", handoff_id=handoff_id, error=str(exc)))


@bp.post("/<int:handoff_id>/take")
def take(handoff_id: int) -> ResponseReturnValue:
    """Hold the conversation: the bot stops answering this sender."""
    try:
        with session_scope(_engine()) as session:
            handoffs.take(session, handoff_id, _operator(session), override=_may_take_over())
    except handoffs.NoSuchHandoff:
        abort(404)
    except handoffs.HandoffError as exc:
        flash(str(exc))
        return _back(handoff_id)
    _schedule_expiry(handoff_id)
    flash("You are answering this conversation; the bot is quiet for this sender until you close.")
    return _back(handoff_id)


@bp.post("/<int:handoff_id>/reply")
def reply(handoff_id: int) -> ResponseReturnValue:
    """Record the agent's reply (taking the conversation if it waits) and queue its send."""
    form = ReplyForm()
    if not form.validate_on_submit():
        flash(f"A reply needs some text, at most {MAX_REPLY} characters.")
        return _back(handoff_id)
    try:
        with session_scope(_engine()) as session:
            row, created = handoffs.add_reply(
                session,
                handoff_id,
                _operator(session),
                (form.body.data or "").strip(),
                form.form_token.data or "",
                override=_may_take_over(),
            )
            reply_id = row.id
    except handoffs.NoSuchHandoff:
        abort(404)
    except handoffs.HandoffError as exc:
        flash(str(exc))
        return _back(handoff_id)
    if created:
        _queue_reply(reply_id)
        _schedule_expiry(handoff_id)
    return _back(handoff_id)


def _queue_reply(reply_id: int, resend: bool = False) -> None:
    try:
        jobs.enqueue_reply(_redis(), reply_id, resend=resend)
    except (redis.RedisError, RedisNotConfigured) as exc:
        log.error(kv("handoff_reply_not_queued", reply_id=reply_id, error=type(exc).__name__))
        flash("Your reply is saved but could not be queued for sending. Press “Send again”.")


@bp.post("/<int:handoff_id>/replies/<int:reply_id>/resend")
def resend(handoff_id: int, reply_id: int) -> ResponseReturnValue:
    """Queue a reply again that was never queued, or failed after every retry."""
    with session_scope(_engine()) as session:
        row = session.get(HandoffReply, reply_id)
        if row is None or row.handoff_id != handoff_id:
            abort(404)
        if row.status not in ("queued", "failed"):
            flash("That reply was sent already.")
            return _back(handoff_id)
        row.status = "queued"
    _queue_reply(reply_id, resend=True)
    return _back(handoff_id)


@bp.post("/<int:handoff_id>/close")
def close(handoff_id: int) -> ResponseReturnValue:
    """Close the conversation: the consumer is told, and the bot answers them again."""
    try:
        with session_scope(_engine()) as session:
            handoffs.close(
                session,
                handoff_id,
                handoffs.BY_AGENT,
                operator=_operator(session),
                override=_may_take_over(),
            )
    except handoffs.NoSuchHandoff:
        abort(404)
    except handoffs.HandoffError as exc:
        flash(str(exc))
        return _back(handoff_id)
    try:
        jobs.enqueue_notice(_redis(), handoff_id, handoffs.BY_AGENT)
    except (redis.RedisError, RedisNotConfigured) as exc:
        log.error(kv("handoff_notice_not_queued", handoff_id=handoff_id, error=type(exc).__name__))
        flash("Closed, but the consumer could not be told yet: the queue is unavailable.")
        return _back(handoff_id)
    flash("Closed. The consumer is told that the bot answers again.")
    return redirect(url_for("inbox.index"))


__all__ = ["MAX_REPLY", "ReplyForm", "bp"]
