"""``bijli fake-razorpay``: a local stand-in for the parts of Razorpay the project uses.

- ``GET /v1/payments/{id}`` (basic auth with the key id and secret), answered as Razorpay does,
  so the official ``razorpay`` client can fetch a payment from it.
- ``POST /_fake/payments`` (same auth; JSON ``amount`` in paise, ``notes``, ``vpa``): a UPI app
  paying. The fake makes a captured payment with an RRN, answers it, and then posts a
  ``payment.captured`` webhook to the configured URL, its raw body signed with the webhook secret
  in ``X-Razorpay-Signature`` (hex HMAC-SHA256), exactly as Razorpay signs them.
- ``POST /_fake/redeliver/{id}`` posts a payment's webhook again (Razorpay retries until a 2xx).
- ``GET /_fake/deliveries`` lists the webhook posts and their HTTP statuses; ``GET /_fake/health``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from bot.logfmt import kv

log = logging.getLogger(__name__)

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class FakeGatewayState:
    """Payments made and webhooks delivered."""

    key_id: str
    key_secret: str
    webhook_secret: str
    webhook_url: str | None
    delay: float = 0.05
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def sign(body: bytes, secret: str) -> str:
    """Razorpay's webhook signature: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_body(entity: dict[str, Any], account_id: str = "acc_FakeBijli0001") -> bytes:
    """A ``payment.captured`` event as Razorpay posts it, serialised once (the signed bytes)."""
    event = {
        "entity": "event",
        "account_id": account_id,
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": entity}},
        "created_at": int(time.time()),
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _error(status: int, description: str) -> ResponseReturnValue:
    body = {"error": {"code": "BAD_REQUEST_ERROR", "description": description, "source": "NA"}}
    return jsonify(body), status


def create_fake_app(
    key_id: str,
    key_secret: str,
    webhook_secret: str,
    webhook_url: str | None,
    *,
    delay: float = 0.05,
) -> Flask:
    """The fake gateway as a Flask app."""
    app = Flask(__name__)
    state = FakeGatewayState(key_id, key_secret, webhook_secret, webhook_url, delay)
    app.extensions["fake_razorpay"] = state

    def authorised() -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(f"{user}:{password}", f"{state.key_id}:{state.key_secret}")

    def deliver(payment_id: str) -> None:
        time.sleep(state.delay)
        with state.lock:
            entity = dict(state.payments[payment_id])
            url = state.webhook_url
        if not url:
            return
        body = event_body(entity)
        headers = {
            "Content-Type": "application/json",
            "X-Razorpay-Signature": sign(body, state.webhook_secret),
            "X-Razorpay-Event-Id": "evt_" + secrets.token_hex(7),
        }
        try:
            status = requests.post(url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException as exc:
            status = 0
            log.warning(kv("fake_razorpay_webhook_failed", error=type(exc).__name__))
        with state.lock:
            state.deliveries.append({"payment_id": payment_id, "status": status})

    def deliver_later(payment_id: str) -> None:
        threading.Thread(target=deliver, args=(payment_id,), daemon=True).start()

    @app.get("/v1/payments/<payment_id>")
    def fetch(payment_id: str) -> ResponseReturnValue:
        if not authorised():
            return _error(401, "The api key provided is invalid")
        with state.lock:
            entity = state.payments.get(payment_id)
        if entity is None:
            return _error(400, "The id provided does not exist")
        return jsonify(entity)

    @app.post("/_fake/payments")
    def pay() -> ResponseReturnValue:
        if not authorised():
            return _error(401, "The api key provided is invalid")
        data = request.get_json(silent=True) or {}
        amount = data.get("amount")
        if not isinstance(amount, int) or amount < 100:
            return _error(400, "The amount must be atleast INR 1.00")
        payment_id = "pay_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))
        notes = data.get("notes") if isinstance(data.get("notes"), dict) else []
        rrn = str(data.get("rrn") or "".join(secrets.choice("0123456789") for _ in range(12)))
        entity = {
            "id": payment_id,
            "entity": "payment",
            "amount": amount,
            "currency": str(data.get("currency") or "INR"),
            "status": "captured",
            "order_id": None,
            "method": "upi",
            "captured": True,
            "vpa": str(data.get("vpa") or "someone@okdemo"),
            "notes": notes,
            "fee": 0,
            "tax": 0,
            "acquirer_data": {"rrn": rrn, "upi_transaction_id": secrets.token_hex(16).upper()},
            "created_at": int(time.time()),
        }
        with state.lock:
            state.payments[payment_id] = entity
        log.info(kv("fake_razorpay_payment", payment=payment_id, paise=amount))
        deliver_later(payment_id)
        return jsonify(entity)

    @app.post("/_fake/redeliver/<payment_id>")
    def redeliver(payment_id: str) -> ResponseReturnValue:
        with state.lock:
            known = payment_id in state.payments
        if not known:
            return _error(404, "no such payment")
        deliver_later(payment_id)
        return jsonify(queued=payment_id)

    @app.get("/_fake/deliveries")
    def deliveries() -> ResponseReturnValue:
        with state.lock:
            return jsonify(deliveries=list(state.deliveries))

    @app.get("/_fake/health")
    def health() -> ResponseReturnValue:
        return jsonify(ok=True)

    return app


def serve(
    port: int,
    key_id: str,
    key_secret: str,
    webhook_secret: str,
    webhook_url: str | None,
    *,
    host: str = "127.0.0.1",
) -> None:
    """Run the fake gateway until interrupted."""
    from werkzeug.serving import run_simple

    app = create_fake_app(key_id, key_secret, webhook_secret, webhook_url)
    print(f"fake Razorpay on http://{host}:{port} (webhooks to {webhook_url})", flush=True)
    run_simple(host, port, app, threaded=True)


__all__ = ["FakeGatewayState", "create_fake_app", "event_body", "serve", "sign"]
