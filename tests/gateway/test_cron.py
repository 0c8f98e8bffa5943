"""``bijli cron`` (the Procfile's ``cron:``): RQ's CronScheduler enqueues the inbox sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from rq.cron import CronScheduler
from sqlalchemy import select

from bot.clock import utcnow
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
        assert [job.func_name for job in scheduler.get_jobs()] == ["bot.gateway.inbox.sweep"]
        assert scheduler.get_jobs()[0].interval == inbox.SWEEP_INTERVAL
        wait_for(lambda: fake.sent(f"whatsapp:{sender}"), timeout=30)
        stop(cron)
        assert cron.returncode == 0, (logs / "cron.log").read_text()
    assert [m["body"] for m in fake.sent()] == ["echo: anyone there?"]
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage.processed_at)).scalar_one() is not None
    worker_log = (logs / "worker.log").read_text()
    assert "event=inbox_sweep unanswered=1 enqueued=1" in worker_log
