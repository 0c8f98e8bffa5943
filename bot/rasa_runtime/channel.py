"""Rasa's one way in: the ``bijli`` input channel, which hears only the gateway, and fails loudly.

``POST /webhooks/bijli/webhook`` takes a message signed by the gateway (bot/signing.py) and
answers:

- 200 and Rasa's messages (the REST channel's list) when the turn ran and said something;
- 401 ``{"error": "unsigned" | "bad_signature" | "stale" | "replayed"}``: not from the gateway,
  or a signed request seen before or signed too long ago;
- 400 ``{"error": "bad_message", "field": …}``: signed, but not a message; 413 for a body far
  larger than any message;
- 500 ``{"error": "action_failed" | "store_failed" | "turn_failed" | "empty_answer", …}``: the
  turn went wrong. Rasa itself logs a failed custom action, or a tracker store error, and
  carries on with an HTTP 200; the worker must retry such a turn instead of taking it for an
  answer, so the channel collects those failures (:func:`install_failure_hooks`) and reports
  them.

The sender id is ``<channel>:<E.164>`` from the signed body, and the message's metadata carries
the sender vouched for (:func:`bot.signing.vouch`); nothing else a request holds names a sender.
Rasa's REST channel is not configured (credentials.yml), and its HTTP API is off unless
RASA_AUTH_TOKEN is set (bot/rasa_runtime/server.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import connections, signing
from bot.logfmt import kv
from bot.phone import mask

log = logging.getLogger(__name__)

#: How a tracker store failure is named in a turn's failures.
TRACKER_STORE_FAILURE = "tracker_store"
#: Largest body worth checking a signature on (a message is at most a few kB).
MAX_BODY_BYTES = 64 * 1024
#: Redis key remembering a nonce for as long as a request carrying it could be fresh.
NONCE_KEY = "bijli:gateway:nonce:{nonce}"

# The failures of the turn being handled, for code deep inside Rasa that has no way to say so.
# Each request's handler runs in its own asyncio task, so its context holds its own list.
_turn_failures: ContextVar[list[str] | None] = ContextVar("bijli_turn_failures", default=None)


@contextmanager
def turn_failures() -> Iterator[list[str]]:
    """Collect what fails inside Rasa while the block runs: the failures of one turn."""
    failures: list[str] = []
    token = _turn_failures.set(failures)
    try:
        yield failures
    finally:
        _turn_failures.reset(token)


def record_failure(failure: str) -> None:
    """Note that something in the current turn failed (outside a channel request: nothing)."""
    failures = _turn_failures.get()
    if failures is not None:
        failures.append(failure)


def install_failure_hooks() -> None:
    """Have Rasa report the failures it logs and swallows to the turn's channel request.

    Two places in Rasa 3.6 catch and carry on: ``MessageProcessor._run_action`` logs a custom
    action that raised (action server down, answering 500 or 401, a response Rasa rejects) and
    goes on without its events; ``ActionExtractSlots`` does the same for the validation action;
    and ``FailSafeTrackerStore`` logs a tracker store error and falls back to an empty in-memory
    tracker. ``RemoteAction.run`` (every custom action call) and the tracker store's two error
    callbacks now also record the failure; a form rejecting a value
    (``ActionExecutionRejection``) is dialogue, not a failure. Idempotent.
    """
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.core.tracker_store import FailSafeTrackerStore

    if getattr(RemoteAction.run, "_bijli_records_failures", False):
        return
    run = RemoteAction.run

    async def run_recording_failures(self: RemoteAction, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run(self, *args, **kwargs)
        except ActionExecutionRejection:
            raise
        except Exception as exc:
            record_failure(f"{self.name()}: {type(exc).__name__}")
            raise

    run_recording_failures._bijli_records_failures = True  # type: ignore[attr-defined]
    RemoteAction.run = run_recording_failures

    for name in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        original = getattr(FailSafeTrackerStore, name)

        def on_error(
            self: FailSafeTrackerStore,
            error: Exception,
            _original: Callable[[FailSafeTrackerStore, Exception], None] = original,
        ) -> None:
            record_failure(f"{TRACKER_STORE_FAILURE}: {type(error).__name__}")
            _original(self, error)

        setattr(FailSafeTrackerStore, name, on_error)


class GatewayInput(InputChannel):
    """The input channel the gateway's worker posts every message to."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    @classmethod
    def name(cls) -> str:
        return signing.CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> GatewayInput:
        """The channel, keyed from settings (no secret lives in credentials.yml)."""
        cfg = connections.settings()
        secret = cfg.gateway_signing_secret  # SecretMissing stops Rasa at start
        connections.redis_url(cfg)  # the nonces live in Redis: refuse to start without it
        install_failure_hooks()
        return cls(secret)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """``GET /`` (health) and ``POST /webhook`` under /webhooks/bijli/."""
        bp = Blueprint("bijli_gateway_webhook", __name__)

        @bp.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.handle(request, on_new_message)

        return bp

    async def handle(
        self, request: Request, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> HTTPResponse:
        """Check the request is the gateway's, then run the turn and report how it went."""
        body = request.body or b""
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        if not signature:
            return _refuse(request, 401, "unsigned")
        if len(body) > MAX_BODY_BYTES:
            return _refuse(request, 413, "too_large")
        if not signing.signature_matches(self.secret, body, signature):
            return _refuse(request, 401, "bad_signature")
        try:
            message = signing.GatewayMessage.from_body(body)
        except signing.BadMessage as exc:
            return _refuse(request, 400, "bad_message", field=str(exc))
        if not message.is_fresh():
            return _refuse(request, 401, "stale")
        try:
            first_use = connections.redis().set(
                NONCE_KEY.format(nonce=message.nonce),
                1,
                nx=True,
                ex=2 * signing.MAX_AGE_SECONDS + 5,
            )
        except redis.RedisError as exc:
            log.error(kv("gateway_nonce_store_failed", error=type(exc).__name__))
            return response.json({"error": "turn_failed", "exception": type(exc).__name__}, 503)
        if not first_use:
            return _refuse(request, 401, "replayed")
        return await self.run_turn(message, on_new_message)

    async def run_turn(
        self,
        message: signing.GatewayMessage,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> HTTPResponse:
        """Hand the message to Rasa; 200 with its answer, or 500 saying what failed."""
        sender = signing.VouchedSender(message.channel, message.mobile, message.role)
        metadata: dict[str, Any] = {
            signing.VOUCH_KEY: signing.vouch(self.secret, message.sender_id, message.nonce, sender),
            "profile_name": message.profile_name,
        }
        if message.latitude is not None and message.longitude is not None:
            metadata[signing.LOCATION_KEY] = signing.vouch_location(
                self.secret, message.sender_id, message.nonce, message.latitude, message.longitude
            )
        collector = CollectingOutputChannel()
        with turn_failures() as failures:
            try:
                await on_new_message(
                    UserMessage(
                        message.text,
                        collector,
                        message.sender_id,
                        input_channel=self.name(),
                        message_id=message.nonce,
                        metadata=metadata,
                    )
                )
            except Exception as exc:
                # A lock store or tracker store error, or a bug: Rasa's REST channel would log it
                # and answer 200 with whatever was collected.
                log.exception(
                    kv("rasa_turn_failed", sender=mask(message.mobile), reason="exception")
                )
                return response.json({"error": "turn_failed", "exception": type(exc).__name__}, 500)
        if failures:
            stores_only = all(f.startswith(TRACKER_STORE_FAILURE) for f in failures)
            error = "store_failed" if stores_only else "action_failed"
            log.error(
                kv(
                    "rasa_turn_failed",
                    sender=mask(message.mobile),
                    reason=error,
                    failures=";".join(failures),
                )
            )
            return response.json({"error": error, "failures": failures}, 500)
        if not collector.messages:
            log.error(kv("rasa_turn_failed", sender=mask(message.mobile), reason="empty_answer"))
            return response.json({"error": "empty_answer"}, 500)
        return response.json(collector.messages)


def _refuse(request: Request, status: int, error: str, **detail: str) -> HTTPResponse:
    log.warning(
        kv("gateway_request_refused", error=error, remote=request.remote_addr or request.ip)
    )
    return response.json({"error": error, **detail}, status)


__all__ = ["GatewayInput", "install_failure_hooks", "record_failure", "turn_failures"]
