"""``POST /payments/<gateway>/webhook``: a gateway's signed payment callbacks.

The raw body is verified by the gateway's module before anything is read from it. Each captured
payment is recorded once (:mod:`bot.payments.ledger`); a credited one gets its receipt delivered
by an RQ job. The answer is 200 for anything recorded or replayed, so the gateway stops retrying,
400 for a bad signature or body, and 503 when the receipt job could not be queued: the gateway
retries, the replay finds the payment recorded, and queues the receipt again.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError

from bot import connections
from bot.logfmt import kv
from bot.payments import jobs, ledger
from bot.payments.gateways import BadWebhookSignature, MalformedWebhook, gateway
from bot.settings import PaymentsNotConfigured
from bot.web import app_settings

log = logging.getLogger(__name__)

bp = Blueprint("payments_webhooks", __name__)

#: Largest webhook body accepted, in bytes (a Razorpay payment event is about 2 KB).
MAX_BODY = 64 * 1024


@bp.post("/payments/<name>/webhook")
def webhook(name: str) -> ResponseReturnValue:
    """Verify, record and acknowledge one gateway webhook."""
    module = gateway(name)
    if module is None:
        abort(404)
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        abort(413)
    cfg = app_settings()
    try:
        captured = module.parse_webhook(cfg, raw, dict(request.headers))
    except BadWebhookSignature as exc:
        log.warning(kv("payment_webhook_refused", gateway=name, reason=str(exc)))
        return jsonify(error="invalid signature"), 400
    except MalformedWebhook as exc:
        log.warning(kv("payment_webhook_malformed", gateway=name, reason=str(exc)))
        return jsonify(error="malformed payload"), 400
    except PaymentsNotConfigured as exc:
        # Not a 4xx: the gateway keeps retrying, and the payment is taken once it is configured.
        log.error(kv("payments_not_configured", gateway=name, reason=str(exc)))
        return jsonify(error="not configured"), 503

    results = []
    engine = connections.engine(cfg)
    for payment in captured:
        recorded = ledger.record_once(engine, payment)
        if recorded.receipt_due and recorded.payment_id is not None:
            try:
                jobs.enqueue_receipt(cfg, recorded.payment_id)
            except (RedisError, connections.RedisNotConfigured) as exc:
                log.error(
                    kv("receipt_not_queued", payment=recorded.payment_id, error=type(exc).__name__)
                )
                return jsonify(error="try again"), 503
        results.append({"outcome": recorded.outcome, "replay": not recorded.new})
    return jsonify(results=results), 200


__all__ = ["bp"]
