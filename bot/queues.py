"""RQ queues and the worker that serves them."""

from __future__ import annotations

from rq import Queue, SimpleWorker

from bot.redis_server import connect
from bot.settings import Settings

#: Queue of inbound messages waiting for Rasa's answer.
INBOUND = "inbound"
#: Queue of outbound sends: replies and campaign messages.
NOTIFICATIONS = "notifications"
#: Order matters: a worker drains replies to people before campaign traffic.
ALL = (INBOUND, NOTIFICATIONS)


def queue(cfg: Settings, name: str) -> Queue:
    """The named RQ queue on the configured Redis."""
    if not cfg.redis_url:
        raise RuntimeError("REDIS_URL is not set")
    return Queue(name, connection=connect(cfg.redis_url))


def run_worker(cfg: Settings, burst: bool = False) -> bool:
    """Serve both queues; the scheduler is on so that RQ ``Retry`` intervals work."""
    if not cfg.redis_url:
        raise RuntimeError("REDIS_URL is not set")
    conn = connect(cfg.redis_url)
    import bot.jobs  # noqa: F401  (imported once, before the first job)

    # Jobs run in the worker's own process, not in a child forked per job: forking workers
    # cost about 88 ms of CPU a message, these 13 ms (bench/GATEWAY_RESULTS.md), on cores that
    # Rasa needs. A job's exception is caught and retried as before, and its timeout is still
    # enforced (SIGALRM). A hard crash takes the worker down with its job: the process manager
    # restarts the worker, and RQ retries the job once its heartbeat lapses (tested).
    worker = SimpleWorker([Queue(name, connection=conn) for name in ALL], connection=conn)
    return bool(worker.work(burst=burst, with_scheduler=True))
