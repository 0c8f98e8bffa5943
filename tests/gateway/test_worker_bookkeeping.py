"""The worker's RQ bookkeeping: fewer round trips, the same registration and job records."""

from __future__ import annotations

import logging

from rq import Queue
from rq.job import Job, JobStatus

from bot import worker as worker_mod
from bot.queues import ALL, INBOUND


def _commands(redis_conn) -> int:
    # The INFO call itself counts as one.
    return int(redis_conn.info("stats")["total_commands_processed"])


def test_a_busy_worker_renews_its_registration_once_per_interval(redis_conn):
    queue = Queue(INBOUND, connection=redis_conn)
    for n in range(20):
        queue.enqueue("builtins.len", args=([n],), result_ttl=600)
    worker = worker_mod.Worker(
        [Queue(name, connection=redis_conn) for name in ALL], connection=redis_conn
    )
    heartbeats = []
    real = worker_mod.SimpleWorker.heartbeat

    def counting(self, timeout=None, pipeline=None):
        if pipeline is None:
            heartbeats.append(timeout)
        return real(self, timeout, pipeline=pipeline)

    worker_mod.SimpleWorker.heartbeat = counting  # type: ignore[method-assign]
    try:
        worker.work(burst=True, with_scheduler=False)
    finally:
        worker_mod.SimpleWorker.heartbeat = real  # type: ignore[method-assign]
    # RQ alone renews three times a job (60 for 20 jobs); within HEARTBEAT_EVERY only once.
    assert len(heartbeats) <= 3
    jobs = Job.fetch_many(
        [j for j in queue.finished_job_registry.get_job_ids()], connection=redis_conn
    )
    assert len(jobs) == 20
    assert all(job.get_status() == JobStatus.FINISHED for job in jobs)
    assert sorted(job.return_value() for job in jobs) == [1] * 20


def test_the_registration_lives_and_holds_the_state(redis_conn):
    worker = worker_mod.Worker([Queue(INBOUND, connection=redis_conn)], connection=redis_conn)
    worker.register_birth()
    worker.set_state("busy")
    worker.heartbeat()
    ttl = redis_conn.ttl(worker.key)
    assert ttl > worker_mod.WORKER_TTL
    before = _commands(redis_conn)
    worker.heartbeat()  # just renewed: nothing sent
    worker.set_state("busy")  # already held: nothing sent
    assert _commands(redis_conn) - before == 1
    worker.set_state("idle")
    assert redis_conn.hget(worker.key, "state") == b"idle"
    # A renewal asking for longer than the registration lives (a job's timeout) is sent.
    worker.heartbeat(worker_mod.WORKER_TTL + 600)
    assert redis_conn.ttl(worker.key) > worker_mod.WORKER_TTL + 500


def test_rqs_per_job_success_lines_are_dropped_and_failures_kept(redis_conn, caplog):
    queue = Queue(INBOUND, connection=redis_conn)
    queue.enqueue("builtins.len", args=([1],), job_id="fine")
    queue.enqueue("builtins.len", args=(1,), job_id="broken")  # TypeError
    worker = worker_mod.Worker([queue], connection=redis_conn)
    with caplog.at_level(logging.INFO, logger="rq.worker"):
        worker.work(burst=True, with_scheduler=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "rq.worker"]
    assert not [line for line in lines if "fine" in line], lines
    assert any(
        "broken" in line and r.levelno >= logging.ERROR
        for r in caplog.records
        for line in [r.getMessage()]
    )
    assert any("Listening on" in line for line in lines), "the rest of RQ's INFO lines stay"


def what_a_running_job_sees() -> dict[str, object]:
    """(A job) RQ's records of this job and its worker while it runs."""
    from rq import get_current_job
    from rq.executions import Execution
    from rq.registry import StartedJobRegistry

    job = get_current_job()
    assert job is not None
    conn = job.connection
    registry = StartedJobRegistry(job.origin, connection=conn)
    ((job_id, execution_id),) = registry.get_job_and_execution_ids(cleanup=False)
    execution = Execution.fetch(execution_id, job_id, connection=conn)
    worker_key = f"rq:worker:{execution.worker_name}"
    return {
        "registered": job_id == job.id,
        "status": conn.hget(job.key, "status").decode(),
        "job_worker": conn.hget(job.key, "worker_name").decode() == execution.worker_name,
        "current_job": conn.hget(worker_key, "current_job").decode() == job.id,
        "state": conn.hget(worker_key, "state").decode(),
    }


def test_a_job_starts_in_one_transaction_with_rqs_records(redis_conn):
    queue = Queue(INBOUND, connection=redis_conn)
    for n in range(10):
        queue.enqueue(what_a_running_job_sees, job_id=f"seen-{n}", result_ttl=600)
    worker = worker_mod.Worker([queue], connection=redis_conn)
    before = redis_conn.info("commandstats").get("cmdstat_multi", {}).get("calls", 0)
    worker.work(burst=True, with_scheduler=False)
    multis = redis_conn.info("commandstats")["cmdstat_multi"]["calls"] - before
    for n in range(10):
        job = Job.fetch(f"seen-{n}", connection=redis_conn)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == {
            "registered": True,
            "status": "started",
            "job_worker": True,
            "current_job": True,
            "state": "busy",
        }
        # The heartbeat at the job's end is not sent on its own; the job's record has one.
        assert job.started_at <= job.last_heartbeat
        assert job.ended_at is not None and job.started_at <= job.ended_at
    # A job: one transaction to start it, one to finish it and one with the suspension check
    # before the next dequeue, plus a few per run. RQ starts a job with two (44 here).
    assert multis <= 10 * 3 + 5, multis
