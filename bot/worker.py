"""The RQ worker that serves every queue, and the jobs it loads before its first one."""

from __future__ import annotations

import importlib

from rq import Queue, SimpleWorker

from bot import connections
from bot.queues import ALL
from bot.settings import Settings

#: Job modules imported once at start, by dotted name (so the core never imports a package).
JOB_MODULES = ("bot.gateway.inbound", "bot.gateway.dead_letters", "bot.payments.jobs")


def run_worker(cfg: Settings, burst: bool = False) -> bool:
    """Serve the queues; the scheduler is on so that RQ ``Retry`` intervals work."""
    conn = connections.redis(cfg, blocking=True)
    for name in JOB_MODULES:
        importlib.import_module(name)

    # Jobs run in the worker's own process, not in a child forked per job: forking workers
    # cost about 88 ms of CPU a message, these 13 ms (bench/GATEWAY_RESULTS.md), on cores that
    # Rasa needs. A job's exception is caught and retried as before, and its timeout is still
    # enforced (SIGALRM). A hard crash takes the worker down with its job: the process manager
    # restarts the worker, and RQ retries the job once its heartbeat lapses (tested).
    worker = SimpleWorker([Queue(name, connection=conn) for name in ALL], connection=conn)
    return bool(worker.work(burst=burst, with_scheduler=True))
