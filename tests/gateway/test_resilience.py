"""Real ``bijli worker`` processes: per-sender order, a worker killed mid-job, Redis restarts."""

from __future__ import annotations

import signal
import time

import pytest
from rq import Queue
from rq.registry import StartedJobRegistry

from bot import connections, create_app
from bot.dev.embedded_redis import EmbeddedRedis, free_port
from bot.queues import INBOUND
from tests.gateway_stack import inbound_form, sign, wait_for
from tests.processes import bijli, running, stop

pytestmark = pytest.mark.slow


@pytest.fixture()
def log_dir(tmp_path):
    return tmp_path / "logs"


def _workers(n, log_dir):
    from contextlib import ExitStack

    stack = ExitStack()
    procs = [
        stack.enter_context(
            running(
                f"worker{i}", bijli("worker"), env={}, log_dir=log_dir, ready_text="Listening on"
            )
        )
        for i in range(n)
    ]
    return stack, procs


def test_one_senders_messages_are_answered_in_order_with_two_workers(
    post_signed, engine, fake, stub_rasa, log_dir
):
    a, b = "+919811100001", "+919811100002"
    stub_rasa.delays.update({"a1": 1.5, "a3": 0.7})
    stack, _ = _workers(2, log_dir)
    with stack:
        for text in ("a1", "a2", "a3", "a4", "a5"):
            assert post_signed("/twilio/messages", inbound_form(text, sender=a)).status_code == 200
        for text in ("b1", "b2"):
            post_signed("/twilio/messages", inbound_form(text, sender=b))
        wait_for(lambda: len(fake.sent(f"whatsapp:{a}")) == 5, timeout=30)
        wait_for(lambda: len(fake.sent(f"whatsapp:{b}")) == 2, timeout=30)
    replies_a = fake.sent(f"whatsapp:{a}")
    assert [m["body"] for m in replies_a] == [f"echo: a{i}" for i in range(1, 6)]
    replies_b = fake.sent(f"whatsapp:{b}")
    assert [m["body"] for m in replies_b] == ["echo: b1", "echo: b2"]
    # The other sender was not held up behind the slow first message.
    assert replies_b[-1]["received_at"] < replies_a[0]["received_at"]
    # The workers log what they did, with the numbers masked.
    logs = "".join(p.read_text() for p in log_dir.glob("worker*.log"))
    assert logs.count("event=inbound_answered") == 7
    assert a not in logs and b not in logs


def test_a_job_whose_worker_is_killed_is_not_lost(
    post_signed, engine, fake, stub_rasa, redis_conn, log_dir
):
    stub_rasa.delays["slow one"] = 60
    with running(
        "doomed", bijli("worker"), env={}, log_dir=log_dir, ready_text="Listening on"
    ) as doomed:
        post_signed("/twilio/messages", inbound_form("slow one"))
        post_signed("/twilio/messages", inbound_form("after it"))
        wait_for(lambda: stub_rasa.messages() == ["slow one"], timeout=20)
        stop(doomed, signal.SIGKILL)  # the worker and its work horse, mid-job
    registry = StartedJobRegistry(INBOUND, connection=redis_conn)
    entries = redis_conn.zrange(registry.key, 0, -1, withscores=True)
    assert len(entries) == 1, "the killed job is still registered as started"
    ((entry, expires_at),) = entries
    assert entry.decode().startswith("inbound-")
    stub_rasa.delays.clear()
    with running("rescuer", bijli("worker"), env={}, log_dir=log_dir, ready_text="Listening on"):
        # What a worker's maintenance does once the dead worker's heartbeat has expired
        # (about a minute later): the abandoned job is retried, not dropped.
        registry.cleanup(timestamp=expires_at + 1)
        wait_for(lambda: len(fake.sent()) == 2, timeout=30)
    assert [m["body"] for m in fake.sent()] == ["echo: slow one", "echo: after it"]


def test_messages_around_a_redis_restart_are_all_answered_in_order(
    gw_settings, engine, fake, stub_rasa, log_dir, monkeypatch
):
    from bot.gateway import inbox

    port = free_port()
    server = EmbeddedRedis(port=port).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    cfg = gw_settings.with_overrides(redis_url=server.url)
    client = create_app(cfg).test_client()
    sender = "+919822200009"

    def post(form):
        return client.post(
            "/twilio/messages",
            data=form,
            headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", form)},
        )

    try:
        assert client.get("/healthz").status_code == 200
        # Queued in Redis, and lost with it: this Redis keeps nothing across a restart.
        assert post(inbound_form("before", sender=sender)).status_code == 200
        server.stop()
        assert client.get("/healthz").status_code == 503
        during = post(inbound_form("during the outage", sender=sender))
        assert during.status_code == 200, "stored in the database: Twilio need not retry"
        server = EmbeddedRedis(port=port).start()
        wait_for(lambda: client.get("/healthz").status_code == 200, timeout=10)
        assert Queue(INBOUND, connection=connections.redis(cfg)).count == 0
        # The sweep (what `bijli cron` runs every 30 s) finds both, oldest first.
        monkeypatch.setattr(inbox, "UNANSWERED_AFTER", 0)
        assert inbox.sweep() == "enqueued:2"
        with running(
            "worker",
            bijli("worker"),
            env={"REDIS_URL": server.url},
            log_dir=log_dir,
            ready_text="Listening on",
        ):
            wait_for(lambda: len(fake.sent()) == 2, timeout=30)
    finally:
        server.stop()
    assert [m["body"] for m in fake.sent()] == ["echo: before", "echo: during the outage"]


def test_worker_survives_a_redis_restart(
    gw_settings, engine, fake, stub_rasa, log_dir, monkeypatch
):
    port = free_port()
    server = EmbeddedRedis(port=port).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    cfg = gw_settings.with_overrides(redis_url=server.url)
    client = create_app(cfg).test_client()

    def post(form):
        return client.post(
            "/twilio/messages",
            data=form,
            headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", form)},
        )

    try:
        with running(
            "worker",
            bijli("worker"),
            env={"REDIS_URL": server.url},
            log_dir=log_dir,
            ready_text="Listening on",
        ):
            post(inbound_form("one", sender="+919822200001"))
            wait_for(lambda: len(fake.sent()) == 1, timeout=20)
            # Restart while the worker waits for work. (A restart in the middle of a job ends
            # the worker process, RQ's behaviour; its supervisor restarts it and the job is
            # retried as an abandoned one, see the test above.)
            conn = server.url
            from rq import Worker

            from bot.connections import redis_client as connect

            wait_for(
                lambda: all(w.get_state() == "idle" for w in Worker.all(connection=connect(conn))),
                timeout=20,
            )
            server.stop()
            time.sleep(1.0)
            server = EmbeddedRedis(port=port).start()
            wait_for(
                lambda: post(inbound_form("two", sender="+919822200001")).status_code == 200,
                timeout=10,
            )
            wait_for(lambda: len(fake.sent()) == 2, timeout=60)
    finally:
        server.stop()
    assert [m["body"] for m in fake.sent()] == ["echo: one", "echo: two"]
