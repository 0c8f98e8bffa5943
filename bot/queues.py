"""RQ queues and the worker that serves them."""

from __future__ import annotations

from rq import Queue, Worker

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
    # Import the job code once here: each job runs in a forked child, which would otherwise
    # re-import twilio, requests and SQLAlchemy (about 0.4 s) for every message.
    import bot.jobs  # noqa: F401

    worker = Worker([Queue(name, connection=conn) for name in ALL], connection=conn)
    return bool(worker.work(burst=burst, with_scheduler=True))
