"""Old dotted names of the gateway's jobs, for jobs queued before the move to ``bot.gateway``.

RQ stores a job's function as a dotted path: jobs enqueued, scheduled for retry or dead-lettered
by the previous release still say ``bot.jobs.handle_inbound``. Remove this module one release
after 0.2, once no such job can be left in Redis.
"""

from __future__ import annotations

from bot.gateway.dead_letters import on_inbound_failure
from bot.gateway.inbound import handle_inbound

__all__ = ["handle_inbound", "on_inbound_failure"]
