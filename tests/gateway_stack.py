"""Gateway fixtures: the app served over real HTTP, the fake Twilio, a stub Rasa, an RQ worker.

Twilio is the fake (``bot.dev.fake_twilio``) reached by the real ``twilio`` client; Redis and the
database are the real ones from the top-level conftest. Rasa is replaced here by a small local
HTTP server speaking the gateway channel's protocol, so these tests run in seconds;
``tests/e2e`` runs the real Rasa (tests/e2e/test_trust_boundary.py holds the channel to it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from rq import Queue, SimpleWorker
from twilio.request_validator import RequestValidator
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from bot import connections, create_app, queues, signing
from bot import settings as settings_mod
from bot.dev import fake_twilio
from bot.dev.embedded_redis import free_port
from bot.gateway import ordering


class ServerThread:
    """A WSGI app on a free loopback port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server: BaseWSGIServer = make_server("127.0.0.1", self.port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class StubRasa:
    """Rasa behind its gateway channel (bot/rasa_runtime/channel.py), with scripted answers.

    It checks requests as the channel does (signature, freshness, one use per nonce, the body's
    fields) and fails as the channel does: 401/400 for what it refuses, and 500 with the reason
    for a turn whose action failed (``fail_next``) or that said nothing ("silence"). It answers
    ``echo: <text>`` by default; see ``answer``.
    """

    secret: str = settings_mod.DEV_GATEWAY_SECRET
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: int = 0
    delays: dict[str, float] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, message: signing.GatewayMessage) -> list[dict[str, Any]]:
        text, sender = message.text, message.sender_id
        if text == "image please":
            return [
                {"recipient_id": sender, "text": "Scan this QR to pay"},
                {"recipient_id": sender, "image": "http://127.0.0.1:9/qr/123.png"},
            ]
        if text == "long answer please":
            return [{"recipient_id": sender, "text": ("बिजली बिल की जानकारी। " * 200).strip()}]
        if text == "buttons please":
            return [
                {
                    "recipient_id": sender,
                    "text": "Choose:",
                    "buttons": [{"title": "Bill", "payload": "/ask_bill_amount"}],
                }
            ]
        if text in ("visit question", "1", "2"):
            # The meter reader's yes/no question (bot/intents/staff.yml); "1"/"2" answer it.
            return [
                {
                    "recipient_id": sender,
                    "text": f"Bata diya? (after {text})"
                    if text != "visit question"
                    else "Kya upbhokta ko naya number bata diya?",
                    "buttons": [
                        {"title": "Haan", "payload": "1"},
                        {"title": "Nahi", "payload": "2"},
                    ],
                }
            ]
        if text == "long buttons please":
            return [
                {
                    "recipient_id": sender,
                    "text": "Choose:",
                    "buttons": [{"title": "A title far longer than twenty", "payload": "1"}],
                }
            ]
        if text == "silence":
            return []
        return [{"recipient_id": sender, "text": f"echo: {text}"}]

    def check(self, request: Request) -> tuple[signing.GatewayMessage | None, Response | None]:
        """The message, or the response the channel gives a request it refuses."""
        body = request.get_data()
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        error, status, message = "", 401, None
        if not signature:
            error = "unsigned"
        elif not signing.signature_matches(self.secret, body, signature):
            error = "bad_signature"
        else:
            try:
                message = signing.GatewayMessage.from_body(body)
            except signing.BadMessage:
                error, status = "bad_message", 400
            else:
                if not message.is_fresh():
                    error = "stale"
                elif message.nonce in self.nonces:
                    error = "replayed"
        if error:
            with self.lock:
                self.refused.append(error)
            return None, _json({"error": error}, status)
        assert message is not None
        with self.lock:
            self.nonces.add(message.nonce)
        return message, None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        if request.path != signing.WEBHOOK_PATH or request.method != "POST":
            return Response("not found", status=404)(environ, start_response)
        message, refusal = self.check(request)
        if refusal is not None:
            return refusal(environ, start_response)
        assert message is not None
        with self.lock:
            # The fields as posted (a message without a location pin carries none).
            self.requests.append(json.loads(message.body()))
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        if failing:
            # What the channel answers when the action server is down.
            failure = {"error": "action_failed", "failures": ["action_answer: RasaException"]}
            return _json(failure, 500)(environ, start_response)
        delay = self.delays.get(message.text, 0.0)
        if delay:
            time.sleep(delay)
        answer = self.answer(message)
        if not answer:
            return _json({"error": "empty_answer"}, 500)(environ, start_response)
        return _json(answer, 200)(environ, start_response)

    def messages(self) -> list[str]:
        with self.lock:
            return [r["text"] for r in self.requests]


def _json(value: Any, status: int) -> Response:
    return Response(json.dumps(value, ensure_ascii=False), status, mimetype="application/json")


@pytest.fixture(scope="session")
def stub_rasa_server() -> Iterator[tuple[StubRasa, str]]:
    stub = StubRasa()
    with ServerThread(stub) as server:
        yield stub, server.url


@pytest.fixture()
def stub_rasa(stub_rasa_server: tuple[StubRasa, str]) -> StubRasa:
    stub, _ = stub_rasa_server
    with stub.lock:
        stub.requests.clear()
        stub.refused.clear()
        stub.fail_next = 0
        stub.delays.clear()
    return stub


class FakeTwilio:
    """Handle on a running fake Twilio: its URL and its in-memory state."""

    def __init__(self, url: str, app: Any) -> None:
        self.url = url
        self.app = app

    @property
    def state(self) -> fake_twilio.FakeState:
        return self.app.extensions["fake_twilio"]  # type: ignore[no-any-return]

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to else {}
        return requests.get(f"{self.url}/sent", params=params, timeout=5).json()["messages"]  # type: ignore[no-any-return]

    def configure(self, **settings: Any) -> dict[str, Any]:
        return requests.post(f"{self.url}/_fake/errors", json=settings, timeout=5).json()  # type: ignore[no-any-return]

    def reset(self) -> None:
        requests.delete(f"{self.url}/sent", timeout=5)
        self.configure(
            error_rate_429=0,
            error_rate_500=0,
            fail_next=[],
            reject={},
            undeliverable=[],
            whatsapp_failures={},
            post_callbacks=True,
            keep_sent=True,
            callback_delay=0.02,
            drop_after_accept=0,
            drop_before_accept=0,
            auth_token=settings_mod.DEV_AUTH_TOKEN,
            account_status="active",
            content_fail_next=[],
        )


@pytest.fixture(scope="session")
def fake_twilio_server() -> Iterator[FakeTwilio]:
    app = fake_twilio.create_fake_app(
        settings_mod.DEV_ACCOUNT_SID, settings_mod.DEV_AUTH_TOKEN, callback_delay=0.02, seed=7
    )
    with ServerThread(app) as server:
        yield FakeTwilio(server.url, app)


@pytest.fixture()
def fake(fake_twilio_server: FakeTwilio) -> FakeTwilio:
    fake_twilio_server.reset()
    return fake_twilio_server


@pytest.fixture()
def gw_port() -> int:
    return free_port()


@pytest.fixture()
def gw_settings(
    settings: settings_mod.Settings,
    stub_rasa_server: tuple[StubRasa, str],
    fake_twilio_server: FakeTwilio,
    gw_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> settings_mod.Settings:
    """Settings for the app and, through the environment, for jobs run in this process."""
    _, rasa_url = stub_rasa_server
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "RASA_URL": rasa_url,
        "TWILIO_API_BASE_URL": fake_twilio_server.url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{gw_port}",
        "BIJLI_VAR_DIR": str(settings.var_dir),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_SMS_FROM",
        "TWILIO_WHATSAPP_FROM",
        "BIJLI_GATEWAY_SECRET",  # the stub Rasa holds the development one
    ):
        monkeypatch.delenv(key, raising=False)
    # Retries without waiting, so a burst worker runs them at once.
    monkeypatch.setattr(ordering, "RETRY_INTERVALS", [0, 0, 0])
    # Jobs run in this process read connections.settings(): not an earlier test's environment.
    connections.reset()
    return settings_mod.load()


@pytest.fixture()
def gw_app(gw_settings: settings_mod.Settings, engine: Any, redis_conn: Any) -> Any:
    application = create_app(gw_settings)
    application.testing = True
    return application


@pytest.fixture()
def gw_client(gw_app: Any) -> Any:
    return gw_app.test_client()


@pytest.fixture()
def live_app(gw_app: Any, gw_port: int) -> Iterator[str]:
    """The app on PUBLIC_BASE_URL's port, so the fake's status callbacks reach it."""
    server = make_server("127.0.0.1", gw_port, gw_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{gw_port}"
    server.shutdown()
    server.server_close()


_counter = iter(range(1, 10**9))


def new_sid() -> str:
    """A fresh Twilio-shaped MessageSid."""
    return f"SM{next(_counter):032x}"


def inbound_form(
    body: str = "hi",
    *,
    sender: str = "+919876543210",
    channel: str = "whatsapp",
    sid: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """A form as Twilio posts it for an incoming message."""
    form = {
        "MessageSid": sid or new_sid(),
        "AccountSid": settings_mod.DEV_ACCOUNT_SID,
        "From": f"whatsapp:{sender}" if channel == "whatsapp" else sender,
        "To": "whatsapp:+14155238886" if channel == "whatsapp" else "+15005550006",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Ramesh",
    }
    form.update(extra)
    return form


def sign(cfg: settings_mod.Settings, path: str, form: dict[str, str]) -> str:
    """X-Twilio-Signature for ``form`` posted to PUBLIC_BASE_URL + ``path``."""
    return RequestValidator(cfg.twilio_auth_token).compute_signature(
        cfg.public_base_url + path, form
    )


@pytest.fixture()
def post_signed(gw_client: Any, gw_settings: settings_mod.Settings) -> Callable[..., Any]:
    """Post a form to the app signed as Twilio would."""

    def post(path: str, form: dict[str, str], signature: str | None = None) -> Any:
        sig = sign(gw_settings, path, form) if signature is None else signature
        return gw_client.post(path, data=form, headers={"X-Twilio-Signature": sig})

    return post


@pytest.fixture()
def work(redis_conn: Any) -> Callable[[], None]:
    """Run an in-process RQ worker until both queues are empty."""

    def run() -> None:
        qs = [Queue(name, connection=redis_conn) for name in queues.ALL]
        SimpleWorker(qs, connection=redis_conn).work(burst=True, with_scheduler=False)

    return run


def unreachable_database_url(url: str) -> str:
    """A URL of the same kind as ``url`` whose database cannot be reached (for real outages)."""
    if url.startswith("postgresql"):
        # Nothing listens on port 1: every connection is refused.
        return f"postgresql://127.0.0.1:{free_port()}/test"
    return "sqlite:////nonexistent-bijli-dir/db.sqlite3"


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
