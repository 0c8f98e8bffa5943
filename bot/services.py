"""The connections a process needs (database, Redis, queues), made on first use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from flask import Flask, current_app

from bot.settings import Settings

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine


class RedisNotConfigured(RuntimeError):
    """REDIS_URL is unset and no embedded Redis was started for this process."""


class Services:
    """Lazily-created engine and Redis client for one Settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        from bot.store import engine_for

        return engine_for(self.settings.database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        from bot.redis_server import connect

        if not self.settings.redis_url:
            raise RedisNotConfigured("REDIS_URL is not set; `bijli run` starts an embedded Redis")
        return connect(self.settings.redis_url)


def services(app: Flask | None = None) -> Services:
    """The Services of ``app`` (default: the current app)."""
    svc: Services = (app or current_app).extensions["bijli"]
    return svc
