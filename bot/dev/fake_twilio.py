"""``bijli fake-twilio``: a local stand-in for Twilio's Messages API, for development and tests.

It answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` the way Twilio does (201 and the
message's JSON, which the real ``twilio`` client accepts), lists messages on ``GET`` of the same
path (``To``, ``From`` and ``DateSent`` filters, newest first, pages with ``next_page_uri``),
fetches one, checks basic auth, posts status callbacks (queued → sent → delivered) signed with
the auth token exactly as Twilio signs them, and can answer 429 or 500 at configured rates.
Test helpers:

- ``GET /sent`` (``?to=…``) lists what was sent; ``DELETE /sent`` forgets it.
- ``POST /_fake/errors`` (JSON) sets ``error_rate_429``, ``error_rate_500``, ``fail_next`` (a list
  of HTTP statuses for the next requests, 0 meaning "answer normally"),
  ``reject`` (``{"+91…": 21211}``: answer that Twilio
  error for a number), ``undeliverable`` (numbers whose callbacks end ``undelivered``),
  ``whatsapp_failures`` (``{"+91…": 63003}``: WhatsApp messages to that number end ``failed``
  with that error code, as for someone not on WhatsApp; SMS to it is delivered),
  ``drop_after_accept`` (that many next messages are accepted, and then the connection is
  dropped without an answer), ``drop_before_accept`` (dropped without accepting),
  ``auth_token`` (the token the fake accepts from now on, as after a rotation: the old one gets
  401, code 20003) and ``account_status`` (``suspended``: every API request gets 403, code
  20005 "Account not active"; ``active`` again).
- ``GET /_fake/health``.
- For benchmarks, ``post_callbacks`` (false: statuses advance but no callback is posted) and
  ``keep_sent`` (false: only each message's arrival time is kept, not the message, so that
  lakhs of messages fit in memory; ``GET /_fake/received`` lists the times and senders).

A message is text (``Body``, ``MediaUrl``) or a Content template (``ContentSid``, which must be
``HX`` and 32 hex digits, with ``ContentVariables``, a JSON object of non-empty strings); the
fake checks them as Twilio does (errors 21602, 21654, 21655, 21656) and records both forms
(``content_sid``, ``content_variables`` in ``GET /sent``).

It also speaks the Content API: ``POST /v1/Content`` (JSON: ``friendly_name``, ``language``,
``variables``, ``types``) creates a template after checking it as Twilio does (``twilio/text``
and ``twilio/quick-reply`` types; a body; 1 to 3 quick-reply actions, each with a title of at most
20 characters and an id; a sample in ``variables`` for every ``{{n}}``), answering 400 with
code 20001 otherwise; ``GET /v1/Content`` lists, ``GET``/``DELETE /v1/Content/{sid}`` fetch and
delete. A message sent with a template the fake created records its rendered body (also as the
message's ``body``, as Twilio shows it) and its ``buttons`` in ``GET /sent``. Templates it
creates have sids beginning ``HX`` + :data:`CREATED_PREFIX`; such a sid it does not hold (deleted,
or created before the fake restarted) is refused with 21655 as Twilio refuses an unknown
template. Any other well-formed sid stands for a template registered in Twilio's console (the
campaign templates in notifier/templates) and is accepted as before, unrendered.
``content_fail_next`` (``/_fake/errors``) makes the next Content creations fail with those
HTTP statuses; ``content_created`` in ``/_fake/health`` counts creations.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import queue
import random
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from bot.logfmt import kv
from bot.phone import mask

log = logging.getLogger(__name__)

#: Twilio's limit on a message body, in characters.
MAX_BODY = 1600
API_VERSION = "2010-04-01"
#: A Content template's sid.
CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
#: What follows ``HX`` in the sid of every template this fake creates.
CREATED_PREFIX = "fa4e"
#: WhatsApp's limits on a session quick reply: buttons, title and body length.
MAX_QUICK_REPLIES = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 200
MAX_QUICK_REPLY_BODY = 1024
#: Content types the fake knows.
CONTENT_TYPES = ("twilio/text", "twilio/quick-reply")
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class FakeState:
    """What the fake remembers: sent messages and the errors to inject."""

    account_sid: str
    auth_token: str
    error_rate_429: float = 0.0
    error_rate_500: float = 0.0
    callback_delay: float = 0.05
    fail_next: list[int] = field(default_factory=list)
    reject: dict[str, int] = field(default_factory=dict)
    undeliverable: set[str] = field(default_factory=set)
    whatsapp_failures: dict[str, int] = field(default_factory=dict)
    post_callbacks: bool = True
    keep_sent: bool = True
    received: list[tuple[float, str]] = field(default_factory=list)
    drop_after_accept: int = 0
    drop_before_accept: int = 0
    account_status: str = "active"
    sent: list[dict[str, Any]] = field(default_factory=list)
    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_fail_next: list[int] = field(default_factory=list)
    content_created: int = 0
    requests_seen: int = 0
    lists_seen: int = 0
    errors_injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rng: random.Random = field(default_factory=random.Random)


def _error(status: int, code: int, message: str) -> Response:
    response = jsonify(
        code=code,
        message=message,
        more_info=f"https://www.twilio.com/docs/errors/{code}",
        status=status,
    )
    response.status_code = status
    return response


def _number(address: str) -> str:
    return address.split(":", 1)[1] if ":" in address else address


def create_fake_app(
    account_sid: str,
    auth_token: str,
    *,
    error_rate_429: float = 0.0,
    error_rate_500: float = 0.0,
    callback_delay: float = 0.05,
    seed: int | None = None,
) -> Flask:
    """The fake Twilio as a Flask app (run it with werkzeug or gunicorn with one process)."""
    app = Flask(__name__)
    state = FakeState(
        account_sid=account_sid,
        auth_token=auth_token,
        error_rate_429=error_rate_429,
        error_rate_500=error_rate_500,
        callback_delay=callback_delay,
    )
    if seed is not None:
        state.rng.seed(seed)
    app.extensions["fake_twilio"] = state
    callbacks = _CallbackSender(state)

    def authorised(path_sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == path_sid == state.account_sid and password == state.auth_token

    def refused(sid: str) -> Response | None:
        """Twilio's answer when it refuses the credentials or the account, else None."""
        if not authorised(sid):
            return _error(401, 20003, "Authenticate")
        if state.account_status != "active":
            return _error(403, 20005, "Account not active")
        return None

    @app.post(f"/{API_VERSION}/Accounts/<sid>/Messages.json")
    def create_message(sid: str) -> ResponseReturnValue:
        with state.lock:
            state.requests_seen += 1
        refusal = refused(sid)
        if refusal is not None:
            return refusal
        with state.lock:
            forced = state.fail_next.pop(0) if state.fail_next else None
            roll = state.rng.random()
            drop_before = state.drop_before_accept > 0
            if drop_before:
                state.drop_before_accept -= 1
        if drop_before:
            return _drop_connection("before_accept")
        if forced == 0:
            # A 0 in fail_next lets that request through, e.g. [0, 500] fails the second.
            forced, roll = None, 1.0
        if forced == 429 or (forced is None and roll < state.error_rate_429):
            state.errors_injected += 1
            return _error(429, 20429, "Too Many Requests")
        if (
            forced is not None
            and forced >= 500
            or (forced is None and roll < state.error_rate_429 + state.error_rate_500)
        ):
            state.errors_injected += 1
            return _error(forced or 500, 20500, "Internal Server Error")
        form = request.form
        to, from_ = form.get("To", ""), form.get("From", "")
        body = form.get("Body", "")
        media = form.getlist("MediaUrl")
        content_sid = form.get("ContentSid")
        content_variables = form.get("ContentVariables")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not form.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not media and not content_sid:
            return _error(400, 21602, "Message body is required.")
        if content_variables and not content_sid:
            return _error(
                400, 21654, "A ContentSid must be specified if ContentVariables are provided."
            )
        if content_sid is not None and not CONTENT_SID.match(content_sid):
            return _error(400, 21655, "The ContentSid is Invalid")
        if content_variables and not _valid_variables(content_variables):
            return _error(400, 21656, "The ContentVariables Parameter is invalid")
        rendered: dict[str, Any] | None = None
        if content_sid is not None:
            with state.lock:
                template = state.contents.get(content_sid)
            if template is None and content_sid[2:].lower().startswith(CREATED_PREFIX):
                return _error(400, 21655, "The ContentSid is Invalid")
            if template is not None:
                rendered = _render(template, content_variables)
                if rendered is None:
                    return _error(400, 21656, "The ContentVariables Parameter is invalid")
                body = rendered["body"]
        if len(body) > MAX_BODY:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        code = state.reject.get(_number(to))
        if code is not None:
            return _error(400, code, f"Rejected by the fake for {mask(_number(to))}")
        msid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        message = {
            "sid": msid,
            "account_sid": sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": str(len(media)),
            "num_segments": str(max(1, -(-len(body) // 153))),
            "price": None,
            "price_unit": "USD",
            "status": "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{sid}/Messages/{msid}/Media.json"
            },
            "to": to,
            "uri": f"/{API_VERSION}/Accounts/{sid}/Messages/{msid}.json",
        }
        received_at = time.time()
        record = {
            **message,
            "media_urls": media,
            "content_sid": content_sid,
            "content_variables": content_variables,
            "buttons": rendered["buttons"] if rendered else None,
            "status_callback": form.get("StatusCallback"),
            "received_at": received_at,
        }
        with state.lock:
            state.received.append((received_at, from_))
            if state.keep_sent:
                state.sent.append(record)
            drop_after = state.drop_after_accept > 0
            if drop_after:
                state.drop_after_accept -= 1
        callback = form.get("StatusCallback")
        final, error_code = "delivered", None
        if _number(to) in state.undeliverable:
            final, error_code = "undelivered", 30003
        elif to.startswith("whatsapp:") and _number(to) in state.whatsapp_failures:
            final, error_code = "failed", state.whatsapp_failures[_number(to)]
        if state.post_callbacks:
            callbacks.schedule(callback, message, final, state.callback_delay, error_code)
        log.info(
            kv("fake_twilio_message", sid=msid, to=mask(to), chars=len(body), media=len(media))
        )
        if drop_after:
            # Twilio has the message and will send it; the client never hears so.
            return _drop_connection("after_accept")
        return jsonify(message), 201

    @app.get(f"/{API_VERSION}/Accounts/<sid>/Messages.json")
    def list_messages(sid: str) -> ResponseReturnValue:
        refusal = refused(sid)
        if refusal is not None:
            return refusal
        with state.lock:
            state.lists_seen += 1
        args = request.args
        try:
            page_size = min(max(int(args.get("PageSize", 50)), 1), 1000)
            page = max(int(args.get("Page", 0)), 0)
            sent_on = _date_filter(args.get("DateSent"))
            sent_before = _date_filter(args.get("DateSent<"))
            sent_after = _date_filter(args.get("DateSent>"))
        except ValueError:
            return _error(400, 20001, "Invalid filter or paging parameter")
        with state.lock:
            # Newest first, as Twilio lists them.
            found = [
                _public(m)
                for m in reversed(state.sent)
                if m["account_sid"] == sid
                and (not args.get("To") or m["to"] == args["To"])
                and (not args.get("From") or m["from"] == args["From"])
                and _sent_matches(m, sent_on, sent_before, sent_after)
            ]
        start = page * page_size
        items = found[start : start + page_size]
        base = f"/{API_VERSION}/Accounts/{sid}/Messages.json"
        query = {k: v for k, v in args.items() if k not in ("Page", "PageToken", "PageSize")}

        def page_uri(number: int) -> str:
            return f"{base}?{urlencode({**query, 'PageSize': page_size, 'Page': number})}"

        more = start + page_size < len(found)
        return jsonify(
            messages=items,
            end=start + max(len(items) - 1, 0),
            first_page_uri=page_uri(0),
            next_page_uri=(page_uri(page + 1) + f"&PageToken=PA{start + page_size}")
            if more
            else None,
            page=page,
            page_size=page_size,
            previous_page_uri=page_uri(page - 1) if page else None,
            start=start,
            uri=page_uri(page),
        )

    @app.get(f"/{API_VERSION}/Accounts/<sid>/Messages/<msid>.json")
    def fetch_message(sid: str, msid: str) -> ResponseReturnValue:
        refusal = refused(sid)
        if refusal is not None:
            return refusal
        with state.lock:
            for item in state.sent:
                if item["sid"] == msid:
                    return jsonify(_public(item))
        return _error(404, 20404, "The requested resource was not found")

    def content_refused() -> Response | None:
        """The Content API's refusal of the credentials (the account sid is the user)."""
        return refused(state.account_sid)

    @app.post("/v1/Content")
    def create_content() -> ResponseReturnValue:
        refusal = content_refused()
        if refusal is not None:
            return refusal
        with state.lock:
            forced = state.content_fail_next.pop(0) if state.content_fail_next else None
        if forced:
            return _error(forced, 20429 if forced == 429 else 20500, "Injected Content failure")
        data = request.get_json(silent=True)
        problem = _content_problem(data)
        if problem is not None:
            return _error(400, 20001, problem)
        assert isinstance(data, dict)
        csid = "HX" + CREATED_PREFIX + secrets.token_hex(14)
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        content = {
            "sid": csid,
            "account_sid": state.account_sid,
            "friendly_name": str(data.get("friendly_name") or ""),
            "language": str(data["language"]),
            "variables": dict(data.get("variables") or {}),
            "types": data["types"],
            "url": f"{request.host_url.rstrip('/')}/v1/Content/{csid}",
            "date_created": now,
            "date_updated": now,
            "links": {},
        }
        with state.lock:
            state.contents[csid] = content
            state.content_created += 1
        log.info(kv("fake_twilio_content_created", sid=csid, types=",".join(data["types"])))
        return jsonify(content), 201

    @app.get("/v1/Content")
    def list_content() -> ResponseReturnValue:
        refusal = content_refused()
        if refusal is not None:
            return refusal
        with state.lock:
            items = list(state.contents.values())
        url = f"{request.host_url.rstrip('/')}/v1/Content"
        meta = {
            "page": 0,
            "page_size": len(items) or 50,
            "first_page_url": url,
            "previous_page_url": None,
            "url": url,
            "next_page_url": None,
            "key": "contents",
        }
        return jsonify(contents=items, meta=meta)

    @app.get("/v1/Content/<csid>")
    def fetch_content(csid: str) -> ResponseReturnValue:
        refusal = content_refused()
        if refusal is not None:
            return refusal
        with state.lock:
            content = state.contents.get(csid)
        if content is None:
            return _error(404, 20404, "The requested resource was not found")
        return jsonify(content)

    @app.delete("/v1/Content/<csid>")
    def delete_content(csid: str) -> ResponseReturnValue:
        refusal = content_refused()
        if refusal is not None:
            return refusal
        with state.lock:
            content = state.contents.pop(csid, None)
        if content is None:
            return _error(404, 20404, "The requested resource was not found")
        return Response("", status=204)

    @app.get("/sent")
    def list_sent() -> ResponseReturnValue:
        to = request.args.get("to")
        with state.lock:
            items = [
                m for m in state.sent if not to or _number(m["to"]) == _number(to) or m["to"] == to
            ]
        return jsonify(messages=items, count=len(items))

    @app.delete("/sent")
    def clear_sent() -> ResponseReturnValue:
        with state.lock:
            state.sent.clear()
            state.received.clear()
            state.requests_seen = 0
            state.lists_seen = 0
            state.errors_injected = 0
            state.content_created = 0
        return Response("", status=204)

    @app.post("/_fake/errors")
    def set_errors() -> ResponseReturnValue:
        data = request.get_json(silent=True) or {}
        with state.lock:
            if "error_rate_429" in data:
                state.error_rate_429 = float(data["error_rate_429"])
            if "error_rate_500" in data:
                state.error_rate_500 = float(data["error_rate_500"])
            if "fail_next" in data:
                state.fail_next = [int(s) for s in data["fail_next"]]
            if "reject" in data:
                state.reject = {str(k): int(v) for k, v in dict(data["reject"]).items()}
            if "undeliverable" in data:
                state.undeliverable = {str(n) for n in data["undeliverable"]}
            if "post_callbacks" in data:
                state.post_callbacks = bool(data["post_callbacks"])
            if "keep_sent" in data:
                state.keep_sent = bool(data["keep_sent"])
            if "whatsapp_failures" in data:
                state.whatsapp_failures = {
                    str(k): int(v) for k, v in dict(data["whatsapp_failures"]).items()
                }
            if "callback_delay" in data:
                state.callback_delay = float(data["callback_delay"])
            if "drop_after_accept" in data:
                state.drop_after_accept = int(data["drop_after_accept"])
            if "drop_before_accept" in data:
                state.drop_before_accept = int(data["drop_before_accept"])
            if "auth_token" in data:
                state.auth_token = str(data["auth_token"])
            if "account_status" in data:
                state.account_status = str(data["account_status"])
            if "content_fail_next" in data:
                state.content_fail_next = [int(s) for s in data["content_fail_next"]]
            return jsonify(_config(state))

    @app.get("/_fake/received")
    def received_times() -> ResponseReturnValue:
        with state.lock:
            times = [t for t, _ in state.received]
            senders = [f for _, f in state.received]
        return jsonify(count=len(times), times=times, senders=senders)

    @app.get("/_fake/health")
    def health() -> ResponseReturnValue:
        with state.lock:
            return jsonify(
                status="ok", sent=len(state.sent), received=len(state.received), **_config(state)
            )

    return app


_PRIVATE = (
    "media_urls",
    "content_sid",
    "content_variables",
    "buttons",
    "status_callback",
    "received_at",
)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Twilio's API shows it."""
    return {k: v for k, v in record.items() if k not in _PRIVATE}


def _valid_variables(raw: str) -> bool:
    """Whether ``ContentVariables`` is a JSON object of non-empty values, as Twilio requires."""
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and all(v not in (None, "") for v in value.values())


def _content_problem(data: Any) -> str | None:
    """Why Twilio would refuse a Content definition, or None when it is acceptable."""
    if not isinstance(data, dict):
        return "The request body must be a JSON object"
    if not isinstance(data.get("language"), str) or not data["language"]:
        return "Language is required"
    variables = data.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(v, str) and v for v in variables.values()
    ):
        return "Variables must be an object of non-empty sample values"
    types = data.get("types")
    if not isinstance(types, dict) or not types:
        return "At least one content type is required"
    for kind, spec in types.items():
        if kind not in CONTENT_TYPES:
            return f"Unsupported content type {kind}"
        if not isinstance(spec, dict):
            return f"{kind} must be an object"
        body = spec.get("body")
        if not isinstance(body, str) or not body.strip():
            return f"{kind}: body is required"
        limit = MAX_QUICK_REPLY_BODY if kind == "twilio/quick-reply" else MAX_BODY
        if len(body) > limit:
            return f"{kind}: body exceeds {limit} characters"
        missing = [n for n in _PLACEHOLDER.findall(body) if n not in variables]
        if missing:
            return f"{kind}: variable {missing[0]} has no sample value"
        if kind == "twilio/quick-reply":
            problem = _actions_problem(spec.get("actions"))
            if problem is not None:
                return problem
    return None


def _actions_problem(actions: Any) -> str | None:
    """Why a quick reply's actions would be refused, or None."""
    if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_QUICK_REPLIES:
        return f"twilio/quick-reply: 1 to {MAX_QUICK_REPLIES} actions are required"
    ids = []
    for action in actions:
        if not isinstance(action, dict):
            return "twilio/quick-reply: each action must be an object"
        title, action_id = action.get("title"), action.get("id")
        if not isinstance(title, str) or not title.strip():
            return "twilio/quick-reply: an action's title is required"
        if len(title) > MAX_BUTTON_TITLE:
            return f"twilio/quick-reply: title exceeds {MAX_BUTTON_TITLE} characters: {title}"
        if not isinstance(action_id, str) or not action_id or len(action_id) > MAX_BUTTON_ID:
            return f"twilio/quick-reply: an action's id is required (at most {MAX_BUTTON_ID})"
        ids.append(action_id)
    if len(set(ids)) != len(ids):
        return "twilio/quick-reply: action ids must be unique"
    return None


def _render(template: dict[str, Any], raw_variables: str | None) -> dict[str, Any] | None:
    """A created template's body and buttons with the send's variables filled in (the
    template's samples for those not given); None when a placeholder is left unfilled."""
    values = dict(template.get("variables") or {})
    if raw_variables:
        values.update({str(k): str(v) for k, v in json.loads(raw_variables).items()})
    types = template["types"]
    spec = types.get("twilio/quick-reply") or types.get("twilio/text") or {}

    def fill(text: str) -> str | None:
        names = _PLACEHOLDER.findall(text)
        if any(n not in values for n in names):
            return None
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    body = fill(str(spec.get("body") or ""))
    if body is None:
        return None
    buttons = [{"title": str(a["title"]), "id": str(a["id"])} for a in spec.get("actions") or []]
    return {"body": body, "buttons": buttons or None}


def _drop_connection(when: str) -> Response:
    """Close the client's connection without an answer (what a network failure looks like)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    log.info(kv("fake_twilio_dropped_connection", when=when))
    # Werkzeug's write of this answer fails on the closed socket, which it treats as the
    # client going away; the client sees the connection end without a response.
    return Response("", status=500)


def _date_filter(value: str | None) -> dt.datetime | None:
    """A ``DateSent`` filter value: ``YYYY-MM-DD`` or an ISO 8601 date and time, as UTC."""
    if not value:
        return None
    if len(value) == 10:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def _sent_matches(
    message: dict[str, Any],
    on: dt.datetime | None,
    before: dt.datetime | None,
    after: dt.datetime | None,
) -> bool:
    """Whether a message passes the DateSent filters (which skip messages not sent yet)."""
    if on is None and before is None and after is None:
        return True
    if not message.get("date_sent"):
        return False
    sent = parsedate_to_datetime(message["date_sent"])
    if on is not None and sent.date() != on.date():
        return False
    if before is not None and sent > before:
        return False
    return not (after is not None and sent < after)


def _config(state: FakeState) -> dict[str, Any]:
    return {
        "error_rate_429": state.error_rate_429,
        "error_rate_500": state.error_rate_500,
        "fail_next": list(state.fail_next),
        "reject": dict(state.reject),
        "undeliverable": sorted(state.undeliverable),
        "whatsapp_failures": dict(state.whatsapp_failures),
        "post_callbacks": state.post_callbacks,
        "keep_sent": state.keep_sent,
        "callback_delay": state.callback_delay,
        "drop_after_accept": state.drop_after_accept,
        "drop_before_accept": state.drop_before_accept,
        "account_status": state.account_status,
        "content_fail_next": list(state.content_fail_next),
        "content_created": state.content_created,
        "requests_seen": state.requests_seen,
        "lists_seen": state.lists_seen,
        "errors_injected": state.errors_injected,
    }


class _CallbackSender:
    """Moves each message to sent and delivered, posting each status as Twilio signs it."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self.jobs: queue.Queue[tuple[float, str | None, dict[str, str]]] = queue.Queue()
        self.session = requests.Session()
        self.thread = threading.Thread(target=self._run, name="fake-twilio-callbacks", daemon=True)
        self.thread.start()

    def schedule(
        self,
        url: str | None,
        message: dict[str, Any],
        final: str,
        delay: float,
        error_code: int | None = None,
    ) -> None:
        """Queue queued → sent → ``final`` for a message, ``delay`` seconds apart."""
        start = time.monotonic()
        for step, value in enumerate(("queued", "sent", final), start=1):
            params = {
                "AccountSid": str(message["account_sid"]),
                "ApiVersion": API_VERSION,
                "From": str(message["from"]),
                "To": str(message["to"]),
                "MessageSid": str(message["sid"]),
                "SmsSid": str(message["sid"]),
                "MessageStatus": value,
                "SmsStatus": value,
            }
            if value == final and error_code is not None:
                params["ErrorCode"] = str(error_code)
            self.jobs.put((start + delay * step, url, params))

    def _advance(self, sid: str, status: str) -> None:
        """Show the new status (and, once sent, the date) in the API's view of the message."""
        with self.state.lock:
            for item in self.state.sent:
                if item["sid"] == sid:
                    item["status"] = status
                    if status == "sent":
                        item["date_sent"] = formatdate(usegmt=True)
                    break

    def _run(self) -> None:
        while True:
            due, url, params = self.jobs.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._advance(params["MessageSid"], params["MessageStatus"])
            if not url:
                continue
            # Signed with the token in force now, as Twilio signs with the account's current one.
            signature = RequestValidator(self.state.auth_token).compute_signature(url, params)
            try:
                self.session.post(
                    url, data=params, headers={"X-Twilio-Signature": signature}, timeout=10
                )
            except requests.RequestException as exc:
                # Twilio does not retry status callbacks either.
                log.warning(kv("fake_twilio_callback_failed", url=url, error=type(exc).__name__))


def serve(
    port: int,
    account_sid: str,
    auth_token: str,
    *,
    host: str = "127.0.0.1",
    error_rate_429: float = 0.0,
    error_rate_500: float = 0.0,
    callback_delay: float = 0.05,
) -> None:
    """Run the fake until interrupted (threaded werkzeug: state lives in this one process)."""
    from werkzeug.serving import run_simple

    app = create_fake_app(
        account_sid,
        auth_token,
        error_rate_429=error_rate_429,
        error_rate_500=error_rate_500,
        callback_delay=callback_delay,
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"fake Twilio listening on http://{host}:{port} (GET /sent lists messages)", flush=True)
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
