"""Dead letters survive a database outage: RQ's failed registry keeps them until written."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from bot import connections
from bot.cli import main as cli
from bot.gateway import dead_letters, inbox, ordering
from bot.queues import INBOUND
from bot.store import DeadLetter, InboundMessage, session_scope
from tests.gateway_stack import inbound_form, unreachable_database_url

NUMBER = "+919876500003"


@pytest.fixture()
def failed_during_outage(post_signed, engine, redis_conn, work, gw_settings, monkeypatch, caplog):
    """A message stored, whose job then failed every attempt while the database was down."""
    post_signed("/twilio/messages", inbound_form("bill kitna hai", sender=NUMBER))
    (inbound_id,) = _inbound_ids(engine)
    # The worker's jobs read DATABASE_URL per job: from now on it points where nothing answers.
    monkeypatch.setenv("DATABASE_URL", unreachable_database_url(gw_settings.database_url))
    with caplog.at_level(logging.ERROR, logger="bot.gateway.dead_letters"):
        work()
    monkeypatch.setenv("DATABASE_URL", gw_settings.database_url)
    return inbound_id


def _inbound_ids(engine):
    with session_scope(engine) as session:
        return list(session.execute(select(InboundMessage.id)).scalars())


def _letters(engine):
    with session_scope(engine) as session:
        return list(session.execute(select(DeadLetter)).scalars())


def test_a_job_failing_while_the_database_is_down_stays_in_rqs_failed_registry(
    failed_during_outage, engine, redis_conn, caplog
):
    job_id = ordering.job_id_for(failed_during_outage)
    registry = FailedJobRegistry(INBOUND, connection=redis_conn)
    assert registry.get_job_ids() == [job_id]
    assert _letters(engine) == [], "the dead letter could not be written"
    logged = [r.getMessage() for r in caplog.get_records("setup")]
    assert any(m.startswith("event=inbound_dead_letter_deferred") for m in logged), logged
    # RQ recorded the job's own error, not one from the failure callback.
    job = Job.fetch(job_id, connection=redis_conn)
    exc = job.latest_result().exc_string
    assert "OperationalError" in exc and "handle_inbound" in exc
    assert "on_inbound_failure" not in exc
    assert job.get_status() == "failed"


def test_the_sweep_writes_the_dead_letter_once_the_database_answers(
    failed_during_outage, engine, redis_conn
):
    assert inbox.sweep() == "enqueued:0", "a failed job is the operator's, not the sweep's"
    (letter,) = _letters(engine)
    assert letter.job_id == ordering.job_id_for(failed_during_outage)
    assert letter.inbound_message_id == failed_during_outage
    assert letter.error.startswith("sqlalchemy.exc.OperationalError")
    assert letter.attempts == 1 + len(ordering.RETRY_INTERVALS)
    inbox.sweep()
    assert len(_letters(engine)) == 1, "written once"


def test_replay_failed_covers_jobs_only_in_rqs_failed_registry(
    failed_during_outage, engine, redis_conn, work, fake, stub_rasa
):
    runner = CliRunner()
    dry = runner.invoke(cli, ["replay-failed", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    job_id = ordering.job_id_for(failed_during_outage)
    assert f"failed job {job_id} (in RQ's failed registry only" in dry.output
    assert "whatsapp:+91******0003" in dry.output and "OperationalError" in dry.output
    assert "would replay 1 dead letter(s)" in dry.output
    assert _letters(engine) == [], "a dry run writes nothing"

    result = runner.invoke(cli, ["replay-failed"])
    assert result.exit_code == 0, result.output
    assert f"written for job {job_id} from RQ's failed registry" in result.output
    assert "replayed 1 dead letter(s)" in result.output
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: bill kitna hai"]
    (letter,) = _letters(engine)
    assert letter.replayed_at is not None
    again = runner.invoke(cli, ["replay-failed"])
    assert "replayed 0 dead letter(s)" in again.output


def test_a_dead_letter_written_normally_is_not_written_twice(
    post_signed, engine, redis_conn, work, stub_rasa
):
    stub_rasa.fail_next = 100
    post_signed("/twilio/messages", inbound_form("kya haal", sender=NUMBER))
    work()
    assert len(_letters(engine)) == 1
    assert dead_letters.write_missing_dead_letters(connections.engine(), redis_conn) == 0
    assert len(_letters(engine)) == 1
