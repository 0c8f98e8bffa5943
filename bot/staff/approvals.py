"""Officers' decisions on mobile changes a meter reader reported (CLI and /admin/verification).

An approval moves the consumer's registered mobile (``Consumer.mobile``, which the notifier
reads when it selects and sends, so the next push goes to the new number), is audited, and has
RQ jobs tell the consumer on the old and the new number (bot/staff/jobs.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from bot import store
from bot.clock import utcnow
from bot.logfmt import kv
from bot.phone import mask
from bot.staff import jobs

log = logging.getLogger(__name__)

APPROVED = "approved"
REJECTED = "rejected"


class ChangeNotFound(LookupError):
    """No mobile change has this id."""


class AlreadyDecided(ValueError):
    """The change was approved or rejected before (the message says which)."""


@dataclass(frozen=True)
class Decision:
    change_id: int
    status: str
    new_account_no: str
    old_mobile: str | None
    new_mobile: str


def decide(session: Session, change_id: int, *, approve: bool, decided_by: str) -> Decision:
    """Approve or reject pending change ``change_id``; the caller commits, then :func:`notify`."""
    change = session.get(store.MobileChange, change_id, with_for_update=True)
    if change is None:
        raise ChangeNotFound(f"no mobile change {change_id}")
    if change.status != "pending":
        raise AlreadyDecided(f"mobile change {change_id} was already {change.status}")
    consumer = store.consumer_by_account(session, change.new_account_no)
    if consumer is None:  # the consumer row goes, its changes go (ON DELETE CASCADE)
        raise ChangeNotFound(f"no consumer {change.new_account_no} for change {change_id}")
    change.status = APPROVED if approve else REJECTED
    change.decided_at = utcnow()
    change.decided_by = decided_by[:40]
    if approve:
        # The number replaced is the one on record now (the visit saw the same, or an import
        # changed it since): that is the one to tell.
        change.old_mobile = consumer.mobile
        consumer.mobile = change.new_mobile
    store.audit(
        session,
        decided_by[:40],
        f"mobile_change_{change.status}",
        subject=change.new_account_no,
        change_id=change.id,
        old_mobile=mask(change.old_mobile) if change.old_mobile else None,
        new_mobile=mask(change.new_mobile),
        requested_by=change.requested_by,
    )
    log.info(kv("mobile_change_decided", change=change.id, status=change.status, by=decided_by))
    return Decision(
        change.id, change.status, change.new_account_no, change.old_mobile, change.new_mobile
    )


def notify(conn: redis.Redis, decision: Decision) -> list[str]:
    """After the commit: queue the notices of an approval (none for a rejection); job ids."""
    if decision.status != APPROVED:
        return []
    which = ["new"] + (["old"] if decision.old_mobile else [])
    return [jobs.enqueue_mobile_change_notice(conn, decision.change_id, w).id for w in which]


__all__ = [
    "APPROVED",
    "REJECTED",
    "AlreadyDecided",
    "ChangeNotFound",
    "Decision",
    "decide",
    "notify",
]
