"""The variables Rasa reads from its environment (``${VARS}`` in endpoints.yml), from Settings."""

from __future__ import annotations

from urllib.parse import urlparse

from bot.settings import Settings


def rasa_redis_env(redis_url: str) -> dict[str, str]:
    """REDIS_HOST/PORT/DB/PASSWORD for endpoints.yml, which Rasa fills from the environment."""
    parsed = urlparse(redis_url)
    db = (parsed.path or "/0").lstrip("/") or "0"
    return {
        "REDIS_HOST": parsed.hostname or "127.0.0.1",
        "REDIS_PORT": str(parsed.port or 6379),
        "REDIS_DB": db,
        "REDIS_PASSWORD": parsed.password or "",
        "REDIS_USE_SSL": "true" if parsed.scheme == "rediss" else "false",
    }


def rasa_env(cfg: Settings) -> dict[str, str]:
    """Variables that endpoints.yml reads: the Redis stores and the action server (with its token).

    Raises :class:`~bot.settings.SecretMissing` when real Twilio credentials lack ACTIONS_TOKEN.
    """
    env = {
        "ACTION_ENDPOINT_URL": cfg.action_endpoint_url,
        "ACTIONS_TOKEN": cfg.actions_server_token,
    }
    if cfg.redis_url:
        env.update(rasa_redis_env(cfg.redis_url))
    return env


__all__ = ["rasa_env", "rasa_redis_env"]
