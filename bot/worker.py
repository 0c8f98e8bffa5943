"""``bijli worker``: RQ workers under RQ's own worker pool, which restarts any that dies.

Each worker is a :class:`Worker` (RQ's ``SimpleWorker``): jobs run in the worker's own process,
not in a child forked per job. Forking workers cost about 88 ms of CPU a message, these 13 ms
(bench/GATEWAY_RESULTS.md), on cores that Rasa needs. A job's exception is caught and retried as
before, and its timeout is still enforced (SIGALRM).

A hard crash (SIGKILL, the OOM killer) takes a worker down with its job. RQ would find that job
only once the worker's heartbeat lapsed (the job's timeout plus a minute) and another worker's
maintenance pass came round, and the sender's later messages, which wait for it, would wait that
long too (3 to 13 minutes with RQ's defaults). The pool sees the death at once, though:
:class:`WorkerPool` then hands that worker's started jobs to RQ's own abandoned-job handling,
whose ``Retry`` runs them again in seconds, and respawns the worker.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

import redis
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq import worker_pool as rq_worker_pool
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import now
from rq.worker import WorkerStatus

from bot import connections
from bot.logfmt import kv
from bot.queues import ALL
from bot.settings import Settings

log = logging.getLogger(__name__)

#: Job modules imported once at start, by dotted name (so the core never imports a package).
JOB_MODULES = (
    "bot.gateway.inbound",
    "bot.gateway.dead_letters",
    "bot.inbox.jobs",
    "bot.payments.jobs",
    "notifier.jobs",
    "notifier.tasks",
)

#: Seconds between a worker's maintenance passes (RQ's default: 600). A pass restarts RQ's
#: scheduler when it died (a Redis restart ends it), which scheduled retries wait for, and
#: retries the jobs of workers that died out of the pool's sight (a whole machine) once their
#: heartbeat lapsed.
MAINTENANCE_INTERVAL = 60
#: Seconds an idle worker's registration lives between heartbeats (RQ's default: 420). An idle
#: worker waits for a job for this less 15 seconds before it looks at maintenance again, so
#: with RQ's default a pass could wait almost seven minutes. (A busy SimpleWorker's heartbeat
#: lasts its job's timeout plus a minute, whatever this is.)
WORKER_TTL = 90
#: Seconds within which a worker does not renew its registration again. RQ renews it three
#: times a job (before and after dequeueing, after the job), two round trips each; a busy
#: worker's registration lives at least WORKER_TTL + 60 - this. Only monitoring reads it (RQ
#: finds an abandoned job by the job's own heartbeat, which is untouched).
HEARTBEAT_EVERY = 5


#: RQ's INFO lines for every job that succeeds (by their templates): four a job, on top of the
#: job's own ``event=…`` lines. A job's retries and failures are WARNING and ERROR, still logged.
RQ_PER_JOB_LINES = frozenset(
    {
        "Worker %s: %s: %s (%s)",
        "Worker %s: %s: %s",
        "Successfully completed %s job in %ss on worker %s",
        "Successfully completed job %s in %ss on worker %s",
        "Worker %s: job %s result discarded immediately",
        "Worker %s: job %s result is kept for %s seconds",
    }
)


class PerJobLinesFilter(logging.Filter):
    """Drops RQ's per-job success lines (RQ_PER_JOB_LINES); keeps everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for an INFO line of a job that went as planned."""
        return not (record.levelno == logging.INFO and record.msg in RQ_PER_JOB_LINES)


class Worker(SimpleWorker):
    """RQ's SimpleWorker, with maintenance about every minute even when idle, and fewer Redis
    round trips a job: none that repeat what Redis already holds, one transaction to start a
    job instead of two, and no end-of-job heartbeat when no callback waits for it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", MAINTENANCE_INTERVAL)
        kwargs.setdefault("worker_ttl", WORKER_TTL)
        super().__init__(*args, **kwargs)
        #: time.monotonic() until which the registration is known to live.
        self._registered_until = 0.0
        #: The execution's writes, waiting for the job's (see prepare_execution).
        self._preparation: Pipeline | None = None
        if not any(isinstance(f, PerJobLinesFilter) for f in self.log.filters):
            self.log.addFilter(PerJobLinesFilter())

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, skipped when the last one keeps the registration alive long enough."""
        timeout = timeout or self.worker_ttl + 60
        until = time.monotonic() + timeout
        if pipeline is None and until - HEARTBEAT_EVERY <= self._registered_until:
            return
        super().heartbeat(timeout, pipeline=pipeline)
        self._registered_until = until

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        """RQ's set_state, without the write when the state is already that one.

        RQ sets ``idle`` after each job and again before the next dequeue.
        """
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline=pipeline)

    # RQ starts a job with two transactions: the execution's record (prepare_execution), then
    # the worker's and the job's (prepare_job_execution). Here the first one's writes wait in a
    # pipeline for the second, and both go in one transaction.

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's prepare_execution, its writes left for :meth:`prepare_job_execution` to send."""
        pipeline = self.connection.pipeline()
        ttl = self.get_heartbeat_ttl(job)
        self.execution = Execution.create(job, ttl, pipeline=pipeline, worker_name=self.name)
        self.set_state(WorkerStatus.BUSY, pipeline=pipeline)
        self._preparation = pipeline
        return self.execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        """RQ's prepare_job_execution, in the transaction :meth:`prepare_execution` began."""
        pipeline, self._preparation = self._preparation, None
        if pipeline is None:
            super().prepare_job_execution(job, remove_from_intermediate_queue)
            return
        with pipeline:
            self.set_current_job_id(job.id, pipeline=pipeline)
            self.set_current_job_working_time(0, pipeline=pipeline)
            heartbeat_ttl = self.get_heartbeat_ttl(job)
            self.heartbeat(heartbeat_ttl, pipeline=pipeline)
            job.heartbeat(now(), heartbeat_ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            if remove_from_intermediate_queue:
                pipeline.lrem(
                    Queue(job.origin, connection=self.connection).intermediate_queue_key, 1, job.id
                )
            pipeline.execute()
        self.procline(f"Processing {job.func_name} from {job.origin} since {time.time()}")

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        """RQ's, without the job's heartbeat after a success that has no callback to run.

        RQ writes that heartbeat so that the job's callbacks have time to run; only a failure
        (the dead-letter callback) and a success callback do. The heartbeat is kept on the job,
        and the success handling writes it with the job's record.
        """
        if job.get_status(refresh=False) != JobStatus.FAILED and job.success_callback is None:
            job.ended_at = now()
            job.last_heartbeat = job.ended_at
            return
        super().handle_execution_ended(job, queue, heartbeat_ttl)


class WorkerPool(rq_worker_pool.WorkerPool):
    """RQ's worker pool; a worker it finds dead has its started jobs retried right away."""

    def handle_dead_worker(self, worker_data: rq_worker_pool.WorkerData) -> None:
        """Forget the worker (the pool respawns it) and release the jobs it held."""
        super().handle_dead_worker(worker_data)
        exitcode = worker_data.process.exitcode
        try:
            released = release_jobs_of_dead_worker(
                self.connection, worker_data.name, self._queue_names
            )
        except redis.RedisError as exc:
            # Redis is away: RQ's maintenance retries the jobs once it is back.
            log.warning(
                kv("worker_jobs_not_released", worker=worker_data.name, error=type(exc).__name__)
            )
            return
        if exitcode or released:
            log.warning(
                kv(
                    "worker_died",
                    worker=worker_data.name,
                    pid=worker_data.pid,
                    exitcode=exitcode,
                    jobs_released=",".join(released) or None,
                )
            )


def release_jobs_of_dead_worker(
    conn: redis.Redis, worker_name: str, queue_names: list[str]
) -> list[str]:
    """Run RQ's abandoned-job handling now on the jobs a dead worker held; return their ids.

    Only for a worker known to be dead: a SimpleWorker runs its job in its own process, so none
    of its work goes on without it.
    """
    dead = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=conn)
    if dead is not None:
        dead.register_death()
    released: list[str] = []
    for name in queue_names:
        registry = StartedJobRegistry(name, connection=conn)
        held: dict[str, str] = {}  # execution's registry entry -> job id
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                execution = Execution.fetch(execution_id, job_id, connection=conn)
            except ValueError:
                continue  # its record expired: RQ's maintenance deals with the entry
            if execution.worker_name == worker_name:
                held[execution.composite_key] = job_id
        if held:
            # The worker is dead, so its heartbeat has lapsed in fact: record that, and let RQ
            # do what its maintenance does with a lapsed one (failure callback, then Retry).
            conn.zadd(registry.key, dict.fromkeys(held, 0), xx=True)
            registry.cleanup()
            released += held.values()
    return released


def run_worker(cfg: Settings, burst: bool = False, workers: int | None = None) -> None:
    """Serve the queues with ``workers`` (default: BIJLI_WORKERS) workers until stopped.

    Each worker runs RQ's scheduler when it holds the scheduler lock, so ``Retry`` intervals work.
    """
    for name in JOB_MODULES:
        # Imported before the pool forks, so every worker starts with them loaded.
        importlib.import_module(name)
    pool = WorkerPool(
        list(ALL),
        # The workers' clients are made from this one; RQ gives them the long socket timeout
        # that its blocking dequeue needs.
        connection=connections.redis(cfg, blocking=True),
        num_workers=workers or cfg.workers,
        worker_class=Worker,
    )
    pool.start(burst=burst)
