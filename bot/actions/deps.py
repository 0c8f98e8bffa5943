"""The action server's settings, database engine and Redis client, made on first use.

The action server imports every module of ``bot.actions`` at start, so nothing here connects
at import time. Tests call :func:`reset` after changing the environment.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from bot import settings as settings_mod

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import redis
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session


class RedisNotConfigured(RuntimeError):
    """REDIS_URL is unset: the lookup guard has nowhere to count (``bijli run`` sets it)."""


_lock = threading.Lock()
_settings: settings_mod.Settings | None = None
_redis: redis.Redis | None = None


def settings() -> settings_mod.Settings:
    """Settings read from the action server's environment (once)."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = settings_mod.load()
        return _settings


def engine() -> Engine:
    """The process-wide engine for DATABASE_URL."""
    from bot.store import engine_for

    return engine_for(settings().database_url)


def session() -> AbstractContextManager[Session]:
    """A store session (commit on success) on the action server's database."""
    from bot.store import session_scope

    return session_scope(engine())


def redis_client() -> redis.Redis:
    """The Redis client for REDIS_URL."""
    global _redis
    url = settings().redis_url
    if not url:
        raise RedisNotConfigured("REDIS_URL is not set for the action server")
    with _lock:
        if _redis is None:
            from bot.redis_server import connect

            _redis = connect(url)
        return _redis


def reset() -> None:
    """Forget settings and clients, so the next call reads the environment again."""
    global _settings, _redis
    with _lock:
        if _redis is not None:
            _redis.close()
        _settings = None
        _redis = None


__all__ = ["RedisNotConfigured", "engine", "redis_client", "reset", "session", "settings"]
