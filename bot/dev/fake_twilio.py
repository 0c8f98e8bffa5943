"""``bijli fake-twilio``: a local stand-in for Twilio's Messages API, for development and tests.

It answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` the way Twilio does (201 and the
message's JSON, which the real ``twilio`` client accepts), checks basic auth, posts status
callbacks (queued → sent → delivered) signed with the auth token exactly as Twilio signs them,
and can answer 429 or 500 at configured rates. Test helpers:

- ``GET /sent`` (``?to=…``) lists what was sent; ``DELETE /sent`` forgets it.
- ``POST /_fake/errors`` (JSON) sets ``error_rate_429``, ``error_rate_500``, ``fail_next`` (a list
  of HTTP statuses for the next requests, 0 meaning "answer normally"),
  ``reject`` (``{"+91…": 21211}``: answer that Twilio
  error for a number) and ``undeliverable`` (numbers whose callbacks end ``undelivered``).
- ``GET /_fake/health``.
"""

from __future__ import annotations

import base64
import logging
import queue
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

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
    sent: list[dict[str, Any]] = field(default_factory=list)
    requests_seen: int = 0
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
    callbacks = _CallbackSender(auth_token)

    def authorised(path_sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == path_sid == state.account_sid and password == state.auth_token

    @app.post(f"/{API_VERSION}/Accounts/<sid>/Messages.json")
    def create_message(sid: str) -> ResponseReturnValue:
        if not authorised(sid):
            return _error(401, 20003, "Authenticate")
        with state.lock:
            state.requests_seen += 1
            forced = state.fail_next.pop(0) if state.fail_next else None
            roll = state.rng.random()
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
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_ and not form.get("MessagingServiceSid"):
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not media and not content_sid:
            return _error(400, 21602, "Message body is required.")
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
        record = {
            **message,
            "media_urls": media,
            "content_sid": content_sid,
            "content_variables": form.get("ContentVariables"),
            "status_callback": form.get("StatusCallback"),
            "received_at": time.time(),
        }
        with state.lock:
            state.sent.append(record)
        callback = form.get("StatusCallback")
        if callback:
            final = "undelivered" if _number(to) in state.undeliverable else "delivered"
            callbacks.schedule(callback, message, final, state.callback_delay)
        log.info(
            kv("fake_twilio_message", sid=msid, to=mask(to), chars=len(body), media=len(media))
        )
        return jsonify(message), 201

    @app.get(f"/{API_VERSION}/Accounts/<sid>/Messages/<msid>.json")
    def fetch_message(sid: str, msid: str) -> ResponseReturnValue:
        if not authorised(sid):
            return _error(401, 20003, "Authenticate")
        with state.lock:
            for item in state.sent:
                if item["sid"] == msid:
                    return jsonify({k: v for k, v in item.items() if k not in _PRIVATE})
        return _error(404, 20404, "The requested resource was not found")

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
            state.requests_seen = 0
            state.errors_injected = 0
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
            if "callback_delay" in data:
                state.callback_delay = float(data["callback_delay"])
            return jsonify(_config(state))

    @app.get("/_fake/health")
    def health() -> ResponseReturnValue:
        with state.lock:
            return jsonify(status="ok", sent=len(state.sent), **_config(state))

    return app


_PRIVATE = ("media_urls", "content_sid", "content_variables", "status_callback", "received_at")


def _config(state: FakeState) -> dict[str, Any]:
    return {
        "error_rate_429": state.error_rate_429,
        "error_rate_500": state.error_rate_500,
        "fail_next": list(state.fail_next),
        "reject": dict(state.reject),
        "undeliverable": sorted(state.undeliverable),
        "callback_delay": state.callback_delay,
        "requests_seen": state.requests_seen,
        "errors_injected": state.errors_injected,
    }


class _CallbackSender:
    """Posts status callbacks from one background thread, in order, signed like Twilio's."""

    def __init__(self, auth_token: str) -> None:
        self.validator = RequestValidator(auth_token)
        self.jobs: queue.Queue[tuple[float, str, dict[str, str]]] = queue.Queue()
        self.session = requests.Session()
        self.thread = threading.Thread(target=self._run, name="fake-twilio-callbacks", daemon=True)
        self.thread.start()

    def schedule(self, url: str, message: dict[str, Any], final: str, delay: float) -> None:
        """Queue queued → sent → ``final`` callbacks for a message, ``delay`` seconds apart."""
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
            if value == "undelivered":
                params["ErrorCode"] = "30003"
            self.jobs.put((start + delay * step, url, params))

    def _run(self) -> None:
        while True:
            due, url, params = self.jobs.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            signature = self.validator.compute_signature(url, params)
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
