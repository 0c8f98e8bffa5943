"""The states of a campaign and of its recipients, and the moves between them kept in one place."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import store
from bot.clock import utcnow

# --- a campaign
#: Its recipients are being chosen (for a 5 lakh selection, half a minute): not startable yet.
SELECTING = "selecting"
DRAFT = "draft"
RUNNING = "running"
PAUSED = "paused"
#: Running, but a moratorium stops its messages; they go once it ends.
HELD = "held"
CANCELLED = "cancelled"
DONE = "done"
CAMPAIGN_STATES = (SELECTING, DRAFT, RUNNING, PAUSED, HELD, CANCELLED, DONE)
#: States in which batch jobs send.
SENDING = (RUNNING, HELD)
FINISHED = (CANCELLED, DONE)

# --- a recipient
#: Selected, not yet handed to a job.
PENDING = "pending"
#: In a batch job (or waiting for the window, a retry, a resume).
QUEUED = "queued"
#: Twilio accepted the message (delivery is the outbound message's status).
SENT = "sent"
#: Not sent at send time: paid since selection, opted out since, campaign cancelled.
SKIPPED = "skipped"
#: Twilio refused it for good (its error code is kept), or it could not be written.
FAILED = "failed"
#: Left out at selection (no mobile, opted out).
EXCLUDED = "excluded"
WAITING = (PENDING, QUEUED)


def finish_if_done(session: Session, campaign_id: int) -> bool:
    """Mark a sending campaign done once no recipient waits; True when it was marked now."""
    waiting = session.execute(
        select(func.count())
        .select_from(store.CampaignRecipient)
        .where(
            store.CampaignRecipient.campaign_id == campaign_id,
            store.CampaignRecipient.state.in_(WAITING),
        )
    ).scalar_one()
    if waiting:
        return False
    done = session.execute(
        update(store.Campaign)
        .where(store.Campaign.id == campaign_id, store.Campaign.status.in_(SENDING))
        .values(status=DONE, finished_at=utcnow(), held_reason=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(done)


__all__ = [
    "CAMPAIGN_STATES",
    "CANCELLED",
    "DONE",
    "DRAFT",
    "EXCLUDED",
    "FAILED",
    "FINISHED",
    "HELD",
    "PAUSED",
    "PENDING",
    "QUEUED",
    "RUNNING",
    "SENDING",
    "SELECTING",
    "SENT",
    "SKIPPED",
    "WAITING",
    "finish_if_done",
]
