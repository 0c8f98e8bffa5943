"""Campaigns: create one (its recipients frozen), dry-run it, start, pause, resume, cancel, watch.

A campaign's recipients are chosen once, at :func:`create`, and stored (``campaign_recipients``,
one row per account, unique per campaign): what happens after is the fate of those rows. Each
gets exactly one message under the idempotency key ``campaign:<id>:<account>``, which
``bot.twilio_client.send`` claims before it calls Twilio, so neither a restart, a dead worker, a
Redis restart nor a Twilio timeout after accepting sends a second one.

:func:`start` marks the waiting recipients ``queued`` and enqueues them in batches (one RQ job per
:data:`BATCH_SIZE` recipients, in one pipeline) on the campaign queue, which workers serve after
people's replies. Starting again (or resuming) bumps the campaign's generation: jobs of an older
generation stop, and fresh ones cover every recipient still waiting.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import delete, func, insert, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from tqdm import tqdm

from bot import connections, delivery_status, paylinks, store
from bot.clock import utcnow
from bot.settings import Settings
from notifier import jobs, messages, rules, segments, states, windows
from notifier.selection import Candidate, Filters, candidates, check_kind

#: Recipients per batch job.
BATCH_SIZE = 500
#: Recipient rows written per statement at selection.
INSERT_CHUNK = 5000


class CampaignError(ValueError):
    """A campaign operation that cannot be done; the message says why."""


class CampaignNotFound(CampaignError):
    """No campaign has this id."""


class CampaignFinished(CampaignError):
    """The campaign is done or cancelled: nothing more to start, pause or resume."""


class OptionMissing(CampaignError):
    """A campaign kind needs an option that was not given (e.g. until when old numbers work)."""


@dataclass(frozen=True)
class TemplateEstimate:
    """What one template costs in a dry run."""

    channel: str
    language: str
    recipients: int
    template_id: str  # DLT template id (SMS) or ContentSid (WhatsApp)
    header: str | None
    encoding: str | None  # SMS: GSM-7, UCS-2, or GSM-7/UCS-2 when names differ
    segments_min: int
    segments_max: int
    segments_total: int
    cost_paise: int


@dataclass
class DryRun:
    """What a campaign would do, with nothing stored or sent."""

    kind: str
    filters: Filters
    selected: int
    by_channel_language: dict[str, int]
    excluded: dict[str, int]
    templates: list[TemplateEstimate]
    cost_paise: int
    #: Why it would wait now (quiet_hours, sunday, holiday, moratorium), and until when.
    waits_for: str | None = None
    sends_from: dt.datetime | None = None


@dataclass
class CampaignStatus:
    """A campaign's progress: counts of its recipients and of its messages' statuses."""

    id: int
    kind: str
    name: str
    state: str
    selected: int
    excluded: dict[str, int]
    queued: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: dict[str, int]
    failures_by_code: dict[str, int]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    filters: Filters = field(default_factory=Filters)
    held_reason: str | None = None
    #: WhatsApp messages that failed and went again as SMS (counted by their SMS).
    fell_back_to_sms: int = 0
    #: When a recipient last changed (a running campaign that stays still is stalled).
    last_activity_at: dt.datetime | None = None

    @property
    def done(self) -> int:
        """Recipients with nothing left to do: sent, skipped or failed at send."""
        return self.selected - self.queued

    @property
    def progress(self) -> float:
        """Share of the selected recipients settled, 0..1."""
        return self.done / self.selected if self.selected else 1.0


@dataclass(frozen=True)
class Started:
    """What :func:`start` or :func:`resume` did."""

    campaign_id: int
    state: str
    queued: int
    jobs: int


# --------------------------------------------------------------------------- options


def _options(
    cfg: Settings, kind: str, valid_until: dt.date | None, notice_hours: int | None
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if kind == messages.NEW_ACCOUNT_NUMBER:
        day = valid_until
        if day is None and cfg.old_account_valid_until:
            try:
                day = dt.date.fromisoformat(cfg.old_account_valid_until.strip())
            except ValueError:
                raise OptionMissing(
                    "BIJLI_OLD_ACCOUNT_VALID_UNTIL must be a date (YYYY-MM-DD), not "
                    f"{cfg.old_account_valid_until!r}"
                ) from None
        if day is None:
            raise OptionMissing(
                "until when do old account numbers work? Give --old-valid-until or set "
                "BIJLI_OLD_ACCOUNT_VALID_UNTIL"
            )
        options["valid_until"] = day.isoformat()
    else:
        hours = cfg.disconnection_notice_hours if notice_hours is None else notice_hours
        options["notice_hours"] = int(hours)
    return options


# --------------------------------------------------------------------------- create, dry run


def create(
    engine: Engine,
    kind: str,
    filters: Filters,
    *,
    name: str | None = None,
    dry_run: bool = False,
    cfg: Settings | None = None,
    valid_until: dt.date | None = None,
    notice_hours: int | None = None,
    progress: bool = False,
    actor: str = "cli",
) -> int | DryRun:
    """Create a campaign and freeze its recipients; return its id (a :class:`DryRun` if asked)."""
    cfg = cfg or connections.settings()
    check_kind(kind)
    filters.check()
    if kind != messages.DISCONNECTION_WARNING and filters.min_dues_paise is not None:
        raise CampaignError("minimum dues select disconnection warnings only")
    options = _options(cfg, kind, valid_until, notice_hours)
    try:
        windows.parse_quiet_hours(cfg.quiet_hours)
    except windows.InvalidQuietHours as exc:
        raise CampaignError(f"BIJLI_QUIET_HOURS: {exc}") from None
    if dry_run:
        return _dry_run(engine, cfg, kind, filters, options, progress=progress)
    now = utcnow()
    with store.session_scope(engine) as session:
        campaign = store.Campaign(
            name=name or f"{kind} {rules.as_ist(now):%Y-%m-%d %H:%M} IST",
            kind=kind,
            status=states.SELECTING,
            filters=filters.to_json(),
            options=json.dumps(options, sort_keys=True),
            created_at=now,
            selected_at=now,
            generation=0,
        )
        session.add(campaign)
        session.flush()
        campaign_id = int(campaign.id)
    # The recipients go in chunks, each its own short transaction: on SQLite one transaction
    # for 5 lakh rows would hold the write lock for half a minute, and the webhooks wait.
    # Until the last chunk is in, the campaign is "selecting", which nothing starts.
    try:
        with store.session_scope(engine) as reading:
            rows: list[dict[str, Any]] = []
            bar = tqdm(desc="selecting", unit=" consumers", disable=not progress)
            for cand in candidates(reading, kind, filters):
                rows.append(_recipient_row(campaign_id, cand, now))
                if len(rows) >= INSERT_CHUNK:
                    _insert_recipients(engine, rows)
                    bar.update(len(rows))
                    rows = []
            if rows:
                _insert_recipients(engine, rows)
                bar.update(len(rows))
            bar.close()
    except BaseException:
        with store.session_scope(engine) as session:
            session.execute(
                delete(store.CampaignRecipient).where(
                    store.CampaignRecipient.campaign_id == campaign_id
                )
            )
            session.execute(delete(store.Campaign).where(store.Campaign.id == campaign_id))
        raise
    with store.session_scope(engine) as session:
        session.execute(
            update(store.Campaign)
            .where(store.Campaign.id == campaign_id)
            .values(status=states.DRAFT)
            .execution_options(synchronize_session=False)
        )
        store.audit(
            session,
            actor,
            "campaign_created",
            str(campaign_id),
            kind=kind,
            filters=filters.describe(),
        )
    return campaign_id


def _insert_recipients(engine: Engine, rows: list[dict[str, Any]]) -> None:
    with store.session_scope(engine) as session:
        session.execute(insert(store.CampaignRecipient), rows)


def _recipient_row(campaign_id: int, cand: Candidate, now: dt.datetime) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "new_account_no": cand.new_account_no,
        "discom": cand.discom,
        "mobile": cand.mobile,
        "channel": cand.channel,
        "language": cand.language,
        "amount_paise": cand.amount_paise,
        "state": states.EXCLUDED if cand.excluded else states.PENDING,
        "reason": cand.excluded,
        "updated_at": now,
    }


def dry_run(
    engine: Engine,
    kind: str,
    filters: Filters,
    *,
    cfg: Settings | None = None,
    valid_until: dt.date | None = None,
    notice_hours: int | None = None,
    progress: bool = False,
) -> DryRun:
    """What a campaign would select, exclude, cost and wait for; nothing is stored or sent."""
    result = create(
        engine,
        kind,
        filters,
        dry_run=True,
        cfg=cfg,
        valid_until=valid_until,
        notice_hours=notice_hours,
        progress=progress,
    )
    assert isinstance(result, DryRun)
    return result


def _dry_run(
    engine: Engine,
    cfg: Settings,
    kind: str,
    filters: Filters,
    options: dict[str, Any],
    *,
    progress: bool,
) -> DryRun:
    now = utcnow()
    by_channel_language: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    seg_counts: dict[tuple[str, str], list[int]] = {}
    encodings: dict[tuple[str, str], set[str]] = {}
    discoms: set[str] = set()
    with store.session_scope(engine) as session:
        calendar = jobs.Calendar.load(session, cfg, kind, now)
        for cand in tqdm(
            candidates(session, kind, filters),
            desc="selecting",
            unit=" consumers",
            disable=not progress,
        ):
            if cand.excluded:
                excluded[cand.excluded] += 1
                continue
            assert cand.channel is not None
            discoms.add(cand.discom)
            key = (cand.channel, cand.language)
            by_channel_language[f"{cand.channel}/{cand.language}"] += 1
            if cand.channel != "sms":
                seg_counts.setdefault(key, []).append(1)
                continue
            values = _sample_values(cfg, kind, cand, options, calendar, now)
            text = messages.template(kind, cand.channel, cand.language).render(values)
            counted = segments.segments(text)
            seg_counts.setdefault(key, []).append(counted.count)
            encodings.setdefault(key, set()).add(counted.encoding)
        held = calendar.moratorium_for(now, discoms)
    estimates = []
    for (channel, language), counts in sorted(seg_counts.items()):
        tpl = messages.template(kind, channel, language)
        total = sum(counts)
        rate = cfg.sms_segment_cost_paise if channel == "sms" else cfg.whatsapp_message_cost_paise
        estimates.append(
            TemplateEstimate(
                channel=channel,
                language=language,
                recipients=len(counts),
                template_id=(tpl.dlt_template_id if channel == "sms" else tpl.content_sid) or "",
                header=tpl.header,
                encoding="/".join(sorted(encodings.get((channel, language), ()))) or None,
                segments_min=min(counts),
                segments_max=max(counts),
                segments_total=total,
                cost_paise=total * rate,
            )
        )
    sends_from = windows.next_send_time(
        now, kind=kind, quiet=calendar.quiet, holidays=calendar.holidays
    )
    waits_for = windows.blocker(now, kind=kind, quiet=calendar.quiet, holidays=calendar.holidays)
    if held is not None:
        waits_for, sends_from = "moratorium", rules.as_ist(held.ends_at)
    return DryRun(
        kind=kind,
        filters=filters,
        selected=sum(by_channel_language.values()),
        by_channel_language=dict(sorted(by_channel_language.items())),
        excluded=dict(sorted(excluded.items())),
        templates=estimates,
        cost_paise=sum(e.cost_paise for e in estimates),
        waits_for=waits_for,
        sends_from=sends_from if waits_for else None,
    )


def _sample_values(
    cfg: Settings,
    kind: str,
    cand: Candidate,
    options: dict[str, Any],
    calendar: jobs.Calendar,
    now: dt.datetime,
) -> dict[str, str]:
    """A recipient's variables as the job would fill them; the pay link's token is a stand-in of
    the same length (a dry run stores no payment intent)."""
    if kind == messages.NEW_ACCOUNT_NUMBER:
        return messages.campaign_values(
            name=cand.name,
            new_account_no=cand.new_account_no,
            old_account_no=cand.old_account_no,
            discom=cand.discom,
            valid_until=dt.date.fromisoformat(options["valid_until"]),
        )
    stand_in = store.PaymentIntent(
        id=paylinks.new_intent_id(),
        amount_paise=cand.amount_paise or 0,
        new_account_no=cand.new_account_no,
    )
    return messages.campaign_values(
        name=cand.name,
        new_account_no=cand.new_account_no,
        discom=cand.discom,
        amount_paise=cand.amount_paise,
        cut_from=calendar.cut_from(now, cand.discom, cand.meter_type, options),
        pay_url=paylinks.pay_url(cfg, paylinks.make_token(cfg, stand_in)),
    )


# --------------------------------------------------------------------------- lifecycle


def _campaign(session: Any, campaign_id: int, *, lock: bool = False) -> store.Campaign:
    query = select(store.Campaign).where(store.Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = session.execute(query).scalar_one_or_none()
    if campaign is None:
        raise CampaignNotFound(f"no campaign {campaign_id}")
    return campaign


def start(
    engine: Engine,
    conn: redis.Redis,
    campaign_id: int,
    *,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    actor: str = "cli",
) -> Started:
    """Queue every waiting recipient in batch jobs; again on a running campaign, re-queue them.

    Safe to repeat: a recipient already sent is never queued again, and the jobs of the previous
    start stop (their generation is stale).
    """
    try:
        # Every job reads it: a bad value would fail them all, so refuse it here.
        windows.parse_quiet_hours(connections.settings().quiet_hours)
    except windows.InvalidQuietHours as exc:
        raise CampaignError(f"BIJLI_QUIET_HOURS: {exc}") from None
    with store.session_scope(engine) as session:
        campaign = _campaign(session, campaign_id, lock=True)
        if campaign.status in states.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is {campaign.status}")
        if campaign.status == states.SELECTING:
            raise CampaignError(
                f"campaign {campaign_id} is still selecting its recipients (if its selection "
                "was interrupted, create the campaign again)"
            )
        campaign.generation = int(campaign.generation or 0) + 1
        if campaign.status not in states.SENDING:
            campaign.status = states.RUNNING
        campaign.started_at = campaign.started_at or utcnow()
        session.execute(
            update(store.CampaignRecipient)
            .where(
                store.CampaignRecipient.campaign_id == campaign_id,
                store.CampaignRecipient.state == states.PENDING,
            )
            .values(state=states.QUEUED, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        generation = int(campaign.generation)
        ids = list(
            session.execute(
                select(store.CampaignRecipient.id)
                .where(
                    store.CampaignRecipient.campaign_id == campaign_id,
                    store.CampaignRecipient.state == states.QUEUED,
                )
                .order_by(store.CampaignRecipient.id)
            ).scalars()
        )
        if not ids:
            states.finish_if_done(session, campaign_id)
        store.audit(session, actor, "campaign_started", str(campaign_id), generation=generation)
    count = jobs.enqueue_batches(
        conn, campaign_id, generation, ids, batch_size=batch_size, progress=progress
    )
    with store.session_scope(engine) as session:
        state = _campaign(session, campaign_id).status
    return Started(campaign_id, state, len(ids), count)


def pause(engine: Engine, conn: redis.Redis, campaign_id: int, *, actor: str = "cli") -> str:
    """Stop sending; queued recipients wait for :func:`resume`. Returns the new state."""
    with store.session_scope(engine) as session:
        campaign = _campaign(session, campaign_id, lock=True)
        if campaign.status in states.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is {campaign.status}")
        if campaign.status in (states.DRAFT, states.SELECTING):
            raise CampaignError(f"campaign {campaign_id} has not started")
        campaign.status = states.PAUSED
        store.audit(session, actor, "campaign_paused", str(campaign_id))
        return states.PAUSED


def resume(
    engine: Engine,
    conn: redis.Redis,
    campaign_id: int,
    *,
    batch_size: int = BATCH_SIZE,
    progress: bool = False,
    actor: str = "cli",
) -> Started:
    """Send again after a pause: the waiting recipients are queued in fresh batch jobs."""
    with store.session_scope(engine) as session:
        campaign = _campaign(session, campaign_id, lock=True)
        if campaign.status in states.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is {campaign.status}")
        if campaign.status in (states.DRAFT, states.SELECTING):
            raise CampaignError(f"campaign {campaign_id} has not started: start it")
        campaign.status = states.RUNNING
        store.audit(session, actor, "campaign_resumed", str(campaign_id))
    return start(engine, conn, campaign_id, batch_size=batch_size, progress=progress, actor=actor)


def cancel(engine: Engine, conn: redis.Redis, campaign_id: int, *, actor: str = "cli") -> int:
    """Stop for good: recipients not sent yet are skipped (``cancelled``). Returns how many."""
    with store.session_scope(engine) as session:
        campaign = _campaign(session, campaign_id, lock=True)
        if campaign.status in states.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is {campaign.status}")
        campaign.status = states.CANCELLED
        campaign.finished_at = utcnow()
        campaign.held_reason = None
        skipped = session.execute(
            update(store.CampaignRecipient)
            .where(
                store.CampaignRecipient.campaign_id == campaign_id,
                store.CampaignRecipient.state.in_(states.WAITING),
            )
            .values(state=states.SKIPPED, reason="cancelled", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        store.audit(session, actor, "campaign_cancelled", str(campaign_id), skipped=skipped)
    return int(skipped or 0)


#: Seconds a sending campaign may go without any recipient changing, while its window is open,
#: before :func:`sweep` queues its waiting recipients again (its jobs were lost: a Redis crash
#: between two fsyncs of the append-only file, a flushed database).
STALL_SECONDS = 10 * 60


def sweep(
    engine: Engine, conn: redis.Redis, *, stall_seconds: int = STALL_SECONDS, actor: str = "sweep"
) -> list[int]:
    """Start again every running campaign that stalled with recipients waiting; their ids.

    Safe at any time: starting again never sends anyone a second message.
    """
    cfg = connections.settings()
    now = utcnow()
    stalled = []
    with store.session_scope(engine) as session:
        running = list(
            session.execute(
                select(store.Campaign).where(store.Campaign.status == states.RUNNING)
            ).scalars()
        )
        for campaign in running:
            calendar = jobs.Calendar.load(session, cfg, campaign.kind, now)
            if calendar.send_wait(now) is not None:
                continue  # waiting for its window, as it should
            last = _status(session, campaign).last_activity_at
            st_queued = session.execute(
                select(func.count())
                .select_from(store.CampaignRecipient)
                .where(
                    store.CampaignRecipient.campaign_id == campaign.id,
                    store.CampaignRecipient.state.in_(states.WAITING),
                )
            ).scalar_one()
            if st_queued and (last is None or (now - last).total_seconds() > stall_seconds):
                stalled.append(int(campaign.id))
    for campaign_id in stalled:
        start(engine, conn, campaign_id, actor=actor)
    return stalled


# --------------------------------------------------------------------------- status


#: Outbound statuses that count as delivered (read implies delivered).
DELIVERED = ("delivered", "read")
#: Outbound statuses that count as failed after Twilio accepted (or refused) the message.
FAILED_OUTBOUND = ("failed", "undelivered")


def sweep_job() -> str:
    """RQ cron job (``bijli cron``): start again the running campaigns that stalled, and queue
    the SMS fallbacks whose status callback could not queue them.

    A campaign's batch jobs can all be lost (a Redis without its append-only file, a worker host
    gone mid-job); a terminal status callback that came while Redis was down stored the status
    but queued no SMS fallback, and Twilio does not post it again. Nothing else would notice
    either, so the cron scheduler runs this every few minutes
    (:func:`bot.delivery_status.queue_missed_fallbacks` for the fallbacks).
    """
    engine, conn = connections.engine(), connections.redis()
    restarted = sweep(engine, conn, stall_seconds=STALL_SECONDS, actor="cron")
    fallbacks = delivery_status.queue_missed_fallbacks(conn, engine)
    return f"restarted:{','.join(map(str, restarted)) or '-'} sms_fallbacks:{len(fallbacks)}"


def status(engine: Engine, campaign_id: int) -> CampaignStatus:
    """A campaign's counts: selection, exclusions, queue, sends, funnel and failures by code."""
    with store.session_scope(engine) as session:
        campaign = _campaign(session, campaign_id)
        return _status(session, campaign)


def list_campaigns(engine: Engine) -> list[CampaignStatus]:
    """Every campaign, newest first, with its counts."""
    with store.session_scope(engine) as session:
        found = session.execute(select(store.Campaign).order_by(store.Campaign.id.desc()))
        return [_status(session, c) for c in found.scalars()]


def _status(session: Any, campaign: store.Campaign) -> CampaignStatus:
    recipient = store.CampaignRecipient
    by_state: Counter[str] = Counter()
    excluded: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    fell_back = 0
    for state, reason, count in session.execute(
        select(recipient.state, recipient.reason, func.count())
        .where(recipient.campaign_id == campaign.id)
        .group_by(recipient.state, recipient.reason)
    ):
        by_state[state] += count
        if state == states.EXCLUDED:
            excluded[reason or "unknown"] += count
        elif state == states.SKIPPED:
            skipped[reason or "unknown"] += count
        elif state == states.FAILED and reason != jobs.REJECTED:
            # Failed before reaching Twilio (no outbound message): counted by reason.
            failures[reason or "unknown"] += count
    outbound: Counter[str] = Counter()
    message = store.OutboundMessage
    for status_, code, count in session.execute(
        select(message.status, message.error_code, func.count())
        .where(message.campaign_id == campaign.id)
        .group_by(message.status, message.error_code)
    ):
        outbound[status_] += count
        if status_ in FAILED_OUTBOUND:
            failures[str(code) if code is not None else "unknown"] += count
    # A WhatsApp message that failed and went again as SMS: its SMS counts, not its failure.
    # (Only failed messages can have one, so the lookup runs on those few.)
    fallback = aliased(store.OutboundMessage)
    for code, count in session.execute(
        select(message.error_code, func.count())
        .where(
            message.campaign_id == campaign.id,
            message.status.in_(FAILED_OUTBOUND),
            select(fallback.id)
            .where(fallback.idempotency_key == message.idempotency_key + literal(":sms"))
            .exists(),
        )
        .group_by(message.error_code)
    ):
        fell_back += count
        key = str(code) if code is not None else "unknown"
        failures[key] -= count
        if failures[key] <= 0:
            del failures[key]
    return CampaignStatus(
        id=int(campaign.id),
        kind=campaign.kind,
        name=campaign.name,
        state=campaign.status,
        selected=sum(by_state.values()) - by_state[states.EXCLUDED],
        excluded=dict(sorted(excluded.items())),
        queued=by_state[states.PENDING] + by_state[states.QUEUED],
        sent=by_state[states.SENT],
        delivered=sum(outbound[s] for s in DELIVERED),
        read=outbound["read"],
        failed=sum(failures.values()),
        skipped=dict(sorted(skipped.items())),
        failures_by_code=dict(sorted(failures.items())),
        created_at=campaign.created_at,
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        filters=Filters.from_json(campaign.filters),
        held_reason=campaign.held_reason,
        fell_back_to_sms=fell_back,
        last_activity_at=session.execute(
            select(func.max(recipient.updated_at)).where(recipient.campaign_id == campaign.id)
        ).scalar_one(),
    )


__all__ = [
    "BATCH_SIZE",
    "CampaignError",
    "CampaignFinished",
    "CampaignNotFound",
    "CampaignStatus",
    "DryRun",
    "Filters",
    "OptionMissing",
    "Started",
    "TemplateEstimate",
    "cancel",
    "create",
    "dry_run",
    "list_campaigns",
    "pause",
    "resume",
    "start",
    "status",
    "sweep",
]
