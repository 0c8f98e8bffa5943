"""``GET /healthz``: 200 when the web process reaches Redis and the database, and Twilio takes
the credentials (a 401 or 403 from Twilio pauses sending: see :mod:`bot.twilio_client`).
"""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot import connections, twilio_client
from bot.connections import RedisNotConfigured
from bot.web import app_settings

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Check both backing stores and Twilio's view of our credentials; say which one failed."""
    cfg = app_settings()
    checks: dict[str, str] = {}
    try:
        with connections.engine(cfg).connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        client = connections.redis(cfg)
        client.ping()
        checks["redis"] = "ok"
        paused = twilio_client.pause_state(cfg, client)
        checks["twilio"] = (
            "ok"
            if paused is None
            else f"sending paused since {paused.since}: {paused.reason}; messages wait"
        )
    except (redis.RedisError, RedisNotConfigured) as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "unhealthy", **checks), 200 if healthy else 503
