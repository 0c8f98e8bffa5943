"""``bijli cron`` (the Procfile's ``cron:``): RQ's CronScheduler enqueues the inbox sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from rq.cron import CronScheduler
from sqlalchemy import select

from bot import delivery_status
from bot.clock import utcnow
from bot.connections import redis_client
from bot.dev.embedded_redis import EmbeddedRedis, free_port
from bot.gateway import inbox
from bot.store import InboundMessage, session_scope
from tests.gateway_stack import wait_for
from tests.processes import bijli, running, stop

pytestmark = pytest.mark.slow


def test_bijli_cron_sweeps_the_inbox_through_a_worker(
    gw_settings, engine, redis_conn, fake, stub_rasa, tmp_path
):
    sender = "+919833300001"
    # What an enqueue that failed leaves behind: a stored message with no job, minutes old.
    with session_scope(engine) as session:
        session.add(
            InboundMessage(
                message_sid="SM" + "d" * 32,
                channel="whatsapp",
                from_number=sender,
                body="anyone there?",
                received_at=utcnow() - dt.timedelta(seconds=inbox.UNANSWERED_AFTER + 5),
            )
        )
    logs = tmp_path / "logs"
    with (
        running("worker", bijli("worker"), env={}, log_dir=logs, ready_text="Listening on"),
        running("cron", bijli("cron"), env={}, log_dir=logs, ready_text="starting") as cron,
    ):
        (scheduler,) = wait_for(lambda: CronScheduler.all(redis_conn), timeout=20)
        jobs = {job.func_name: job for job in scheduler.get_jobs()}
        assert sorted(jobs) == [
            "bot.delivery_status.flush_job",
            "bot.gateway.inbox.sweep",
            "notifier.campaigns.sweep_job",
        ]
        assert jobs["bot.gateway.inbox.sweep"].interval == inbox.SWEEP_INTERVAL
        assert jobs["notifier.campaigns.sweep_job"].queue_name == "campaigns"
        flush = jobs["bot.delivery_status.flush_job"]
        assert flush.interval == delivery_status.FLUSH_BACKSTOP_INTERVAL
        wait_for(lambda: fake.sent(f"whatsapp:{sender}"), timeout=30)
        stop(cron)
        assert cron.returncode == 0, (logs / "cron.log").read_text()
    assert [m["body"] for m in fake.sent()] == ["echo: anyone there?"]
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage.processed_at)).scalar_one() is not None
    worker_log = (logs / "worker.log").read_text()
    assert "event=inbox_sweep unanswered=1 enqueued=1" in worker_log


def test_bijli_cron_rides_out_a_redis_restart(gw_settings, tmp_path, monkeypatch):
    port = free_port()
    server = EmbeddedRedis(port=port).start()
    monkeypatch.setenv("REDIS_URL", server.url)
    logs = tmp_path / "logs"
    try:
        with running("cron", bijli("cron"), env={}, log_dir=logs, ready_text="starting") as cron:
            conn = redis_client(server.url)
            wait_for(lambda: CronScheduler.all(conn), timeout=20)
            server.stop()
            # Noticed at the scheduler's next heartbeat, at most one sweep interval away.
            wait_for(
                lambda: "event=cron_redis_unavailable" in (logs / "cron.log").read_text(),
                timeout=inbox.SWEEP_INTERVAL + 10,
            )
            assert cron.poll() is None, "honcho would stop the whole stack if cron exited"
            server = EmbeddedRedis(port=port).start()
            conn = redis_client(server.url)
            # RQ's scheduler starts again, registers, and goes on enqueueing sweeps.
            wait_for(lambda: CronScheduler.all(conn), timeout=20)
            wait_for(
                lambda: conn.zcard("rq:cron_job:bot.gateway.inbox.sweep:jobs"),
                timeout=inbox.SWEEP_INTERVAL + 10,
            )
            server.stop()
            # Asked to stop while Redis is down: RQ's own shutdown then fails on Redis, and
            # that must not read as a reason to start again.
            stop(cron)
            assert cron.returncode == 0, (logs / "cron.log").read_text()[-2000:]
            assert (logs / "cron.log").read_text().count("starting...") == 2
    finally:
        server.stop()
