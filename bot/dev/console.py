"""``/console``: chat with the bot as a phone would, through the real Twilio webhook path.

The page posts what the person types to ``/console/send``; the server builds the form Twilio
would send, signs it with the auth token exactly as Twilio does, and hands it to this app's own
``/twilio/messages`` (in-process WSGI, so a single-worker server cannot deadlock on itself). The
replies are what the worker recorded as sent (the OutboundMessage table), polled by the page.
A WhatsApp reply sent as a quick-reply template shows its buttons; tapping one posts what Twilio
posts for a tap: ``Body`` and ``ButtonText`` the title, ``ButtonPayload`` its id, signed.

Only available with Twilio's development credentials: with real ones it could forge any sender's
messages. ``create_app()`` registers it only then, and every request checks again.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any
from xml.etree import ElementTree

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import Client

from bot import connections
from bot.gateway import quick_replies
from bot.logfmt import kv
from bot.phone import mask, normalise_indian_mobile, twilio_address
from bot.store import Consumer, InboundMessage, OutboundMessage, Staff, session_scope
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint(
    "console",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Longest text the console accepts (Twilio's own limit on an incoming body).
MAX_BODY = 1600
#: Numbers offered in the picker, per role, when the database has them.
PICKER_SIZE = 5


@bp.before_request
def _only_in_development() -> None:
    if not app_settings().twilio_is_dev:
        abort(404)


def demo_numbers() -> list[dict[str, str]]:
    """Numbers to offer: demo_data's constants when present, then staff and consumers on file."""
    found: list[dict[str, str]] = []
    seen: set[str] = set()

    def add(mobile: str | None, role: str, label: str) -> None:
        e164 = normalise_indian_mobile(mobile)
        if e164 and e164 not in seen:
            seen.add(e164)
            found.append({"mobile": e164, "role": role, "label": label})

    try:
        from bot.importers import demo_data
    except ImportError:
        demo_data = None  # type: ignore[assignment]
    if demo_data is not None:
        for name in dir(demo_data):
            if not name.isupper() or "MOBILE" not in name and "NUMBER" not in name:
                continue
            role = "staff" if any(w in name for w in ("STAFF", "READER", "OFFICER")) else "consumer"
            values = getattr(demo_data, name)
            label = name.removeprefix("DEMO_").removesuffix("_MOBILE").replace("_", " ").lower()
            for value in values if isinstance(values, (list, tuple)) else [values]:
                if isinstance(value, str):
                    add(value, role, f"demo {label}")
    with session_scope(connections.engine(app_settings())) as session:
        for staff in session.execute(
            select(Staff).where(Staff.active.is_(True)).order_by(Staff.id).limit(PICKER_SIZE)
        ).scalars():
            add(staff.mobile, "staff", f"{staff.name} ({staff.role})")
        for consumer in session.execute(
            select(Consumer)
            .where(Consumer.mobile.isnot(None))
            .order_by(Consumer.id)
            .limit(PICKER_SIZE)
        ).scalars():
            add(consumer.mobile, "consumer", f"{consumer.name} ({consumer.discom})")
    add("+919876543210", "consumer", "unregistered number")
    return found


@bp.get("/console")
def page() -> ResponseReturnValue:
    """The chat page."""
    return render_template("console.html", numbers=demo_numbers())


@bp.post("/console/send")
def send() -> ResponseReturnValue:
    """Sign a Twilio-shaped webhook for what the person typed and deliver it to /twilio/messages."""
    cfg = app_settings()
    data = request.get_json(silent=True) or {}
    number = str(data.get("mobile") or "").strip()
    channel = "whatsapp" if data.get("channel") == "whatsapp" else "sms"
    body = str(data.get("body") or "")[:MAX_BODY]
    button = data.get("button") if isinstance(data.get("button"), dict) else None
    with_media = bool(data.get("media"))
    if not number or not re.fullmatch(r"[+\d\s()-]{3,20}", number):
        return jsonify(error="Enter a phone number, e.g. +91 98765 43210."), 400
    e164 = normalise_indian_mobile(number) or re.sub(r"[^\d+]", "", number)
    sid = "SM" + secrets.token_hex(16)
    form: dict[str, str] = {
        "ToCountry": "IN",
        "SmsMessageSid": sid,
        "NumMedia": "1" if with_media else "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": cfg.twilio_whatsapp_from if channel == "whatsapp" else cfg.twilio_sms_from,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": cfg.twilio_account_sid,
        "From": twilio_address(channel, e164),
        "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        form["ProfileName"] = str(data.get("profile_name") or "Console")[:60]
        form["WaId"] = e164.lstrip("+")
    if button is not None:
        # A tapped quick-reply button: Twilio posts its title as the body, and its id.
        title, payload = str(button.get("title") or ""), str(button.get("payload") or "")
        if channel != "whatsapp" or not title or not payload:
            return jsonify(error="A button is tapped on WhatsApp, with a title and a payload."), 400
        form["Body"] = form["ButtonText"] = title[:MAX_BODY]
        form["ButtonPayload"] = payload[: quick_replies.MAX_ID]
    location = str(data.get("location") or "").strip()
    if location:
        # A WhatsApp location pin, as Twilio posts one: Latitude and Longitude fields.
        match = re.fullmatch(r"(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)", location)
        if channel != "whatsapp" or match is None:
            return jsonify(error="A location pin is 'latitude,longitude', on WhatsApp only."), 400
        form["Latitude"], form["Longitude"] = match.group(1), match.group(2)
    if with_media:
        form["MediaUrl0"] = f"{cfg.public_base_url}/static/console-photo.png"
        form["MediaContentType0"] = "image/png"
    url = f"{cfg.public_base_url}/twilio/messages"
    signature = RequestValidator(cfg.twilio_auth_token).compute_signature(url, form)
    client = Client(current_app)
    response = client.post(
        "/twilio/messages",
        data=form,
        headers={"X-Twilio-Signature": signature},
    )
    log.info(
        kv(
            "console_message",
            sid=sid,
            sender=mask(e164),
            channel=channel,
            status=response.status_code,
        )
    )
    return jsonify(
        message_sid=sid,
        status=response.status_code,
        mobile=e164,
        immediate=_twiml_messages(response.get_data(as_text=True)),
    )


def _twiml_messages(xml: str) -> list[str]:
    """Texts of ``<Message>`` elements in a TwiML answer (the refusal for a foreign number)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return []
    return [el.text or "" for el in root.iter("Message")]


@bp.get("/console/messages")
def messages() -> ResponseReturnValue:
    """The conversation with one number on one channel, after the given outbound/inbound ids."""
    mobile = normalise_indian_mobile(request.args.get("mobile"))
    channel = "whatsapp" if request.args.get("channel") == "whatsapp" else "sms"
    if mobile is None:
        return jsonify(items=[])
    after_out = _int(request.args.get("after_out"))
    after_in = _int(request.args.get("after_in"))
    items: list[dict[str, Any]] = []
    engine = connections.engine(app_settings())
    with session_scope(engine) as session:
        for row in session.execute(
            select(InboundMessage)
            .where(
                InboundMessage.from_number == mobile,
                InboundMessage.channel == channel,
                InboundMessage.id > after_in,
            )
            .order_by(InboundMessage.id)
            .limit(200)
        ).scalars():
            items.append(
                {
                    "direction": "in",
                    "id": row.id,
                    "body": row.body,
                    "media": row.num_media > 0,
                    "at": row.received_at.isoformat(),
                    "sid": row.message_sid,
                }
            )
        for out in session.execute(
            select(OutboundMessage)
            .where(
                OutboundMessage.to_number == mobile,
                OutboundMessage.channel == channel,
                OutboundMessage.id > after_out,
            )
            .order_by(OutboundMessage.id)
            .limit(200)
        ).scalars():
            items.append(
                {
                    "direction": "out",
                    "id": out.id,
                    "body": out.body,
                    "media_url": out.media_url,
                    "status": out.status,
                    "error_code": out.error_code,
                    "at": out.created_at.isoformat(),
                    "content_sid": out.content_sid,
                }
            )
    templates = quick_replies.buttons_by_sid(
        engine, sorted({i["content_sid"] for i in items if i.get("content_sid")})
    )
    for item in items:
        if item["direction"] == "out":
            item["buttons"] = templates.get(item.pop("content_sid") or "", [])
    items.sort(key=lambda item: (item["at"], item["direction"] == "out", item["id"]))
    return jsonify(items=items)


@bp.get("/console/statuses")
def statuses() -> ResponseReturnValue:
    """Current statuses of outbound messages by id (for the ticks under each reply)."""
    ids = [int(i) for i in request.args.get("ids", "").split(",") if i.isdigit()][:200]
    if not ids:
        return jsonify(statuses={})
    with session_scope(connections.engine(app_settings())) as session:
        rows = session.execute(
            select(OutboundMessage.id, OutboundMessage.status).where(OutboundMessage.id.in_(ids))
        ).all()
    return jsonify(statuses={str(i): s for i, s in rows})


def _int(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
