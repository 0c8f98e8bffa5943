"""Real ``bijli worker`` processes: per-sender order, a worker killed mid-job, Redis restarts."""

from __future__ import annotations

import os
import signal
import time

import pytest
from rq import Queue, Worker
from rq.job import Job
from rq.registry import StartedJobRegistry

from bot import connections, create_app
from bot.dev.embedded_redis import EmbeddedRedis, free_port
from bot.gateway import ordering
from bot.queues import INBOUND
from tests.gateway_stack import inbound_form, sign, wait_for
from tests.processes import bijli, running, stop

pytestmark = pytest.mark.slow

#: The production back-off, read before the gateway fixtures shorten it to zeros.
PRODUCTION_RETRY_INTERVALS = list(ordering.RETRY_INTERVALS)
#: One worker per ``bijli worker``, where a test counts its workers by process.
ONE_WORKER = {"BIJLI_WORKERS": "1"}


@pytest.fixture()
def log_dir(tmp_path):
    return tmp_path / "logs"


def _workers(n, log_dir):
    from contextlib import ExitStack

    stack = ExitStack()
    procs = [
        stack.enter_context(
            running(
                f"worker{i}",
                bijli("worker"),
                env=ONE_WORKER,
                log_dir=log_dir,
                ready_text="Listening on",
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
        "doomed", bijli("worker"), env=ONE_WORKER, log_dir=log_dir, ready_text="Listening on"
    ) as doomed:
        post_signed("/twilio/messages", inbound_form("slow one"))
        post_signed("/twilio/messages", inbound_form("after it"))
        wait_for(lambda: stub_rasa.messages() == ["slow one"], timeout=20)
        # The whole `bijli worker`, pool and all, mid-job: nothing is left to notice at once.
        stop(doomed, signal.SIGKILL)
    registry = StartedJobRegistry(INBOUND, connection=redis_conn)
    entries = redis_conn.zrange(registry.key, 0, -1, withscores=True)
    assert len(entries) == 1, "the killed job is still registered as started"
    ((entry, expires_at),) = entries
    assert entry.decode().startswith("inbound-")
    stub_rasa.delays.clear()
    with running(
        "rescuer", bijli("worker"), env=ONE_WORKER, log_dir=log_dir, ready_text="Listening on"
    ):
        # What a worker's maintenance pass does once the dead worker's heartbeat has lapsed
        # (the job's timeout plus a minute): the abandoned job is retried, not dropped.
        registry.cleanup(timestamp=expires_at + 1)
        wait_for(lambda: len(fake.sent()) == 2, timeout=30)
    assert [m["body"] for m in fake.sent()] == ["echo: slow one", "echo: after it"]


def test_a_worker_killed_mid_job_is_respawned_and_its_sender_answered_in_seconds(
    post_signed, engine, fake, stub_rasa, redis_conn, log_dir, monkeypatch
):
    """One worker of the pool dies hard: the pool respawns it and RQ retries its job at once."""
    monkeypatch.setattr(ordering, "RETRY_INTERVALS", PRODUCTION_RETRY_INTERVALS)
    stub_rasa.delays["slow one"] = 60
    with running(
        "pool",
        bijli("worker"),
        env={"BIJLI_WORKERS": "2"},
        log_dir=log_dir,
        ready_text="Listening on",
    ):
        wait_for(lambda: len(Worker.all(connection=redis_conn)) == 2, timeout=20)
        post_signed("/twilio/messages", inbound_form("slow one"))
        post_signed("/twilio/messages", inbound_form("after it"))
        wait_for(lambda: stub_rasa.messages() == ["slow one"], timeout=20)
        (victim,) = wait_for(
            lambda: [w for w in Worker.all(connection=redis_conn) if w.get_current_job_id()]
        )
        job_id = victim.get_current_job_id()
        stub_rasa.delays.clear()
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)  # that worker alone, mid-job

        wait_for(lambda: len(fake.sent()) == 2, timeout=60)
        took = time.monotonic() - killed_at
        workers = Worker.all(connection=redis_conn)
        assert len(workers) == 2, "the pool keeps two workers"
        assert victim.name not in {w.name for w in workers}
        assert victim.pid not in {w.pid for w in workers}
    assert [m["body"] for m in fake.sent()] == ["echo: slow one", "echo: after it"]
    # Retried by RQ's Retry, one attempt used, after its first interval (5 s), not minutes.
    # RQ's scheduled registry keeps whole-second scores, so the retry may fire up to 1 s early.
    job = Job.fetch(job_id, connection=redis_conn)
    assert job.retries_left == len(PRODUCTION_RETRY_INTERVALS) - 1
    assert PRODUCTION_RETRY_INTERVALS[0] - 1 <= took < 20, f"answered {took:.1f}s after the kill"
    log = (log_dir / "pool.log").read_text()
    assert "event=worker_died" in log and f"jobs_released={job_id}" in log


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
            # the worker process, RQ's behaviour; its pool restarts it and the job is retried
            # as an abandoned one, see the tests above.)
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


def test_retries_are_scheduled_again_within_minutes_of_a_redis_restart(
    gw_settings, engine, fake, stub_rasa, log_dir, monkeypatch, tmp_path
):
    """A Redis restart ends RQ's scheduler process; the workers' maintenance restarts it.

    With RQ's defaults an idle worker looked at maintenance every 405 s and ran it every 600 s,
    so a retry waiting for its interval waited up to 17 minutes. The Redis is the durable one
    `bijli run` starts, whose scheduler lock survives the restart and must lapse first (61 s).
    """
    monkeypatch.setattr(ordering, "RETRY_INTERVALS", PRODUCTION_RETRY_INTERVALS)
    port = free_port()
    workdir = tmp_path / "redis"
    server = EmbeddedRedis(port=port, workdir=workdir).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    cfg = gw_settings.with_overrides(redis_url=server.url)
    client = create_app(cfg).test_client()
    form = inbound_form("after the restart", sender="+919822200002")
    try:
        with running(
            "worker",
            bijli("worker"),
            env={"REDIS_URL": server.url},
            log_dir=log_dir,
            ready_text="Listening on",
        ):
            time.sleep(2)  # the scheduler process is up
            server.stop()
            time.sleep(1.0)
            server = EmbeddedRedis(port=port, workdir=workdir).start()
            stub_rasa.fail_next = 1  # the first attempt fails: the job waits 5 s in RQ's scheduler
            response = client.post(
                "/twilio/messages",
                data=form,
                headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", form)},
            )
            assert response.status_code == 200
            # At worst: the lock lapses (61 s), an idle worker's next pass (75 s), the interval.
            wait_for(lambda: len(fake.sent()) == 1, timeout=180)
    finally:
        server.stop()
    assert stub_rasa.messages() == ["after the restart", "after the restart"]
