"""Razorpay's webhook protocol: ``payment.captured`` events signed with the webhook secret.

The signature is Razorpay's: a hex HMAC-SHA256 of the raw body keyed with the webhook secret, in
``X-Razorpay-Signature``, checked by the official client's ``Utility.verify_webhook_signature``.
The payment entity carries the amount in paise, our intent id in ``notes.intent_id`` and the UPI
reference in ``acquirer_data.rrn``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import razorpay
from razorpay.errors import SignatureVerificationError

from bot.payments.gateways import BadWebhookSignature, Captured, MalformedWebhook
from bot.settings import Settings

NAME = "razorpay"
SIGNATURE_HEADER = "X-Razorpay-Signature"
CAPTURED = "payment.captured"


def client(cfg: Settings) -> razorpay.Client:
    """The official client on our keys, pointed at RAZORPAY_API_BASE_URL when set (the fake)."""
    options = (
        {"base_url": cfg.razorpay_api_base_url.rstrip("/")} if cfg.razorpay_api_base_url else {}
    )
    return razorpay.Client(auth=(cfg.razorpay_key_id, cfg.razorpay_key_secret), **options)


def verify(cfg: Settings, raw_body: bytes, signature: str | None) -> None:
    """Raise :class:`BadWebhookSignature` unless ``signature`` signs ``raw_body``."""
    if not signature:
        raise BadWebhookSignature(f"no {SIGNATURE_HEADER} header")
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadWebhookSignature("body is not UTF-8") from None
    try:
        razorpay.Utility().verify_webhook_signature(body, signature, cfg.razorpay_webhook_key)
    except SignatureVerificationError:
        raise BadWebhookSignature("signature does not match the body") from None


def parse_webhook(cfg: Settings, raw_body: bytes, headers: Mapping[str, Any]) -> list[Captured]:
    """Verify a webhook and return its captured payment (none for other events)."""
    verify(cfg, raw_body, headers.get(SIGNATURE_HEADER))
    try:
        event = json.loads(raw_body)
    except ValueError:
        raise MalformedWebhook("body is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedWebhook("body is not a JSON object")
    if event.get("event") != CAPTURED:
        return []
    entity = _dig(event, "payload", "payment", "entity")
    if not isinstance(entity, dict):
        raise MalformedWebhook("payment.captured without payload.payment.entity")
    return [captured_from_entity(entity)]


def captured_from_entity(entity: dict[str, Any]) -> Captured:
    """A :class:`Captured` from a Razorpay payment entity (a webhook's, or the API's)."""
    payment_id = entity.get("id")
    amount = entity.get("amount")
    if not isinstance(payment_id, str) or not payment_id or len(payment_id) > 64:
        raise MalformedWebhook("payment id missing")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise MalformedWebhook("amount (paise) must be a positive integer")
    # Razorpay sends an empty list, not an object, when a payment has no notes.
    notes = entity.get("notes")
    intent_ref = notes.get("intent_id") if isinstance(notes, dict) else None
    rrn = _dig(entity, "acquirer_data", "rrn")
    created = entity.get("created_at")
    paid_at = (
        dt.datetime.fromtimestamp(created, dt.timezone.utc).replace(tzinfo=None)
        if isinstance(created, int) and created > 0
        else dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    )
    return Captured(
        source=NAME,
        external_id=payment_id,
        amount_paise=amount,
        currency=str(entity.get("currency") or ""),
        intent_ref=str(intent_ref)[:64] if intent_ref else None,
        utr=str(rrn)[:22] if rrn else None,
        paid_at=paid_at,
        detail={
            "method": str(entity.get("method") or "")[:16],
            "status": str(entity.get("status") or "")[:16],
        },
    )


def fetch_payment(cfg: Settings, payment_id: str) -> Captured:
    """Ask Razorpay for a payment by id (``GET /v1/payments/{id}``) and read it the same way."""
    return captured_from_entity(client(cfg).payment.fetch(payment_id))


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


__all__ = ["CAPTURED", "NAME", "SIGNATURE_HEADER", "client", "fetch_payment", "parse_webhook"]
