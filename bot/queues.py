"""The RQ queues: their names, and a handle on one."""

from __future__ import annotations

from rq import Queue

from bot import connections
from bot.settings import Settings

#: Queue of inbound messages waiting for Rasa's answer.
INBOUND = "inbound"
#: Queue of outbound sends: replies and campaign messages.
NOTIFICATIONS = "notifications"
#: Queue of campaign batch jobs (notifier/): served after everything people are waiting for.
CAMPAIGNS = "campaigns"
#: Order matters: a worker drains replies to people before campaign traffic.
ALL = (INBOUND, NOTIFICATIONS, CAMPAIGNS)


def queue(cfg: Settings, name: str) -> Queue:
    """The named RQ queue on the configured Redis."""
    return Queue(name, connection=connections.redis(cfg))
