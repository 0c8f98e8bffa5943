"""The campaign send job: one RQ job per batch of recipients, each sent exactly once.

A batch job walks its recipients in id order, a chunk at a time (:data:`CHUNK`, fewer under a
low rate limit). Before each chunk it looks at the campaign's state and the rules at send time
(window, moratorium); it renders the batch's messages once and keeps each text on its
recipient (a retry sends, and Twilio's list is searched for, the same text); it skips those who
paid since selection; and it sends the chunk through :class:`notifier.sending.Sender` under the
keys ``campaign:<id>:<account>``: one transaction claims the chunk's idempotency rows, up to
``BIJLI_CAMPAIGN_SEND_THREADS`` requests (8 by default) go to Twilio at once (each taking its
own token from the sender's rate limiter), and one transaction records the sids and settles
the recipients.

- Outside the window (quiet hours; a Sunday or a holiday for disconnection warnings) the job
  schedules itself for the moment the window opens (``Queue.enqueue_at``) and stops: nothing is
  dropped. During a moratorium the campaign shows ``held`` and the job waits the same way.
- A 429 or 5xx is retried a few times with backoff in the job; what still fails stays ``queued``
  and the job raises, so that RQ's ``Retry`` runs it again later for just those.
- A permanent Twilio error marks the recipient ``failed`` with its code.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue, Retry
from sqlalchemy import delete, func, literal, select, update
from sqlalchemy.orm import Session
from tqdm import tqdm

from bot import connections, paylinks, store, twilio_client
from bot.clock import utcnow
from bot.logfmt import kv
from bot.phone import mask
from bot.queues import CAMPAIGNS
from bot.settings import Settings
from notifier import messages, rules, sending, states, windows

log = logging.getLogger(__name__)

#: Dotted name of the batch job (RQ stores jobs by name; the web process never imports this).
SEND_BATCH = "notifier.jobs.send_batch"
#: Seconds a batch job may run (500 messages at a WhatsApp sender's 10 per second, with room).
JOB_TIMEOUT = 30 * 60
#: RQ's retries of a batch whose messages still failed with 429/5xx, seconds apart. Cumulatively
#: past ``twilio_client.SEND_LEASE``: a message whose worker died is looked for again in time.
RETRY_INTERVALS = [2, 5, 10, 20, 30, 60, 120, 300, 600]
#: Attempts of one message within a job when Twilio answers 429/5xx, and the pauses between.
IN_JOB_BACKOFF = (0.2, 0.5, 1.0)
#: Pauses (seconds) before the job's own further passes over messages that failed transiently.
LEFTOVER_PASSES = (1.0, 3.0)
#: Recipients claimed, sent and recorded together (notifier/sending.py): between two looks at
#: the campaign's state (a pause or a cancel stops the job) and at the window.
CHUNK = 100
#: With a rate limit, a chunk holds at most this many seconds of the sender's tokens, so that
#: its messages are sent well within their in-flight lease (twilio_client.SEND_LEASE).
CHUNK_SECONDS = 5.0
#: Seconds between looks at a moratorium that holds a campaign (it may be lifted early).
HOLD_RECHECK = 15 * 60
#: Why a recipient failed: Twilio refused the message for good (its code is on the message).
REJECTED = "rejected"
#: Why a recipient failed: its values do not fit the registered template.
UNRENDERABLE = "template"
#: Why a recipient was skipped at send time.
PAID = "paid"
OPTED_OUT = "opted_out"
#: Results of a batch job.
FINISHED_BATCH = "finished"


class BatchIncomplete(twilio_client.TwilioTransientError):
    """Some messages of the batch failed with a 429/5xx or a busy claim: RQ retries the batch."""


def idempotency_key(campaign_id: int, new_account_no: str) -> str:
    """The key of a recipient's one message."""
    return f"campaign:{campaign_id}:{new_account_no}"


def retry() -> Retry:
    """RQ's retry policy of a batch job."""
    return Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS)


def _job_id(campaign_id: int, generation: int, first_id: int, at: dt.datetime | None = None) -> str:
    suffix = f"-at{int(at.timestamp())}" if at is not None else ""
    return f"campaign-{campaign_id}-g{generation}-r{first_id}{suffix}"


def enqueue_batches(
    conn: redis.Redis,
    campaign_id: int,
    generation: int,
    recipient_ids: list[int],
    *,
    batch_size: int,
    progress: bool = False,
) -> int:
    """Enqueue one job per ``batch_size`` recipients (sorted ids) in one Redis pipeline."""
    queue = Queue(CAMPAIGNS, connection=conn)
    batches = [recipient_ids[i : i + batch_size] for i in range(0, len(recipient_ids), batch_size)]
    data = [
        Queue.prepare_data(
            SEND_BATCH,
            args=(campaign_id, generation, batch[0], batch[-1]),
            job_id=_job_id(campaign_id, generation, batch[0]),
            timeout=JOB_TIMEOUT,
            retry=retry(),
            description=f"campaign {campaign_id}: recipients {batch[0]}..{batch[-1]}",
        )
        for batch in tqdm(batches, desc="enqueueing", unit=" jobs", disable=not progress)
    ]
    if data:
        with conn.pipeline() as pipe:
            queue.enqueue_many(data, pipeline=pipe)
            pipe.execute()
    log.info(kv("campaign_enqueued", campaign=campaign_id, generation=generation, jobs=len(data)))
    return len(data)


# --------------------------------------------------------------------------- the calendar


@dataclass
class Calendar:
    """What the rules need at send time: quiet hours, holidays, moratoriums by discom."""

    kind: str
    quiet: windows.QuietHours
    holidays: frozenset[dt.date]
    moratoriums: dict[str, list[rules.Period]]
    notice_hours_default: int

    @classmethod
    def load(cls, session: Session, cfg: Settings, kind: str, now: dt.datetime) -> Calendar:
        today = rules.as_ist(now).date()
        holidays = store.holidays_between(
            session,
            today - dt.timedelta(days=1),
            today + dt.timedelta(days=rules.DEFAULT_HORIZON_DAYS),
        )
        periods: dict[str, list[rules.Period]] = {}
        for discom in store.DISCOMS:
            found = store.moratoriums_ending_after(session, discom, now)
            if found:
                periods[discom] = [rules.Period(m.starts_at, m.ends_at, m.reason) for m in found]
        return cls(
            kind=kind,
            quiet=windows.parse_quiet_hours(cfg.quiet_hours),
            holidays=frozenset(holidays),
            moratoriums=periods,
            notice_hours_default=cfg.disconnection_notice_hours,
        )

    def moratorium_for(self, moment: dt.datetime, discoms: Iterable[str]) -> rules.Period | None:
        """The moratorium holding a disconnection warning to any of ``discoms`` now, if any."""
        if self.kind != messages.DISCONNECTION_WARNING:
            return None
        covering = [
            p
            for d in discoms
            if (p := rules.active_moratorium(moment, self.moratoriums.get(d, ()))) is not None
        ]
        return max(covering, key=lambda p: rules.as_ist(p.ends_at)) if covering else None

    @staticmethod
    def held_until(moment: dt.datetime, held: rules.Period) -> dt.datetime:
        """When a send held by ``held`` is looked at again: its end, or sooner (a moratorium
        may be lifted early)."""
        recheck = rules.as_ist(moment) + dt.timedelta(seconds=HOLD_RECHECK)
        return min(rules.as_ist(held.ends_at), recheck)

    def send_wait(self, moment: dt.datetime) -> tuple[str, dt.datetime] | None:
        """(why, until when) the window is shut at ``moment``, or None when it is open."""
        why = windows.blocker(moment, kind=self.kind, quiet=self.quiet, holidays=self.holidays)
        if why is None:
            return None
        opens = windows.next_send_time(
            moment, kind=self.kind, quiet=self.quiet, holidays=self.holidays
        )
        return why, opens

    def cut_from(
        self, moment: dt.datetime, discom: str, meter_type: str, options: dict[str, Any]
    ) -> dt.datetime | None:
        """The earliest permitted cut after the notice period (notifier/rules.py)."""
        hours = int(options.get("notice_hours", self.notice_hours_default))
        earliest = rules.as_ist(moment) + dt.timedelta(hours=hours)
        # People are told a whole hour ("from 14:00"), never earlier than the notice allows.
        if earliest.minute or earliest.second or earliest.microsecond:
            earliest = earliest.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        return rules.next_cut_time(
            earliest,
            discom=discom,
            meter_type=meter_type,
            holidays=self.holidays,
            moratoriums=self.moratoriums.get(discom, ()),
        )


def covers(row: store.CampaignRecipient, paid: int, min_dues: int | None) -> bool:
    """True when ``paid`` since selection leaves less than the campaign's minimum dues: the
    recipient is no longer warned."""
    if not paid:
        return False
    remaining = int(row.amount_paise or 0) - paid
    return remaining <= 0 or (min_dues is not None and remaining < int(min_dues))


# --------------------------------------------------------------------------- the job


def send_batch(campaign_id: int, generation: int, first_id: int, last_id: int) -> str:
    """Send the queued recipients with ids ``first_id``..``last_id`` of a campaign (an RQ job)."""
    cfg = connections.settings()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    with store.session_scope(engine) as session:
        campaign = session.get(store.Campaign, campaign_id)
        if campaign is None:
            return "gone"
        if int(campaign.generation) != generation:
            return "stale"
        if campaign.status not in states.SENDING:
            return campaign.status
        kind = campaign.kind
        options: dict[str, Any] = json.loads(campaign.options or "{}")
        selected_at = campaign.selected_at or campaign.created_at
        min_dues = json.loads(campaign.filters or "{}").get("min_dues_paise")
        calendar = Calendar.load(session, cfg, kind, utcnow())
        recipients = list(
            session.execute(
                select(store.CampaignRecipient)
                .where(
                    store.CampaignRecipient.campaign_id == campaign_id,
                    store.CampaignRecipient.id >= first_id,
                    store.CampaignRecipient.id <= last_id,
                    store.CampaignRecipient.state == states.QUEUED,
                )
                .order_by(store.CampaignRecipient.id)
            ).scalars()
        )
    batch = _Batch(
        cfg, engine, conn, campaign_id, generation, kind, options, selected_at, min_dues, calendar
    )
    batch.held = campaign.status == states.HELD
    with batch:
        outcome = batch.run(recipients, last_id)
    if outcome is not None:
        return outcome
    with store.session_scope(engine) as session:
        if states.finish_if_done(session, campaign_id):
            log.info(kv("campaign_done", campaign=campaign_id))
    return FINISHED_BATCH


#: A recipient's move to its final state: (recipient, state, reason, Twilio error code).
_Move = tuple[store.CampaignRecipient, str, str | None, int | None]


class _Batch:
    """One run of a batch job: the campaign's settings and the steps for a chunk of recipients."""

    def __init__(
        self,
        cfg: Settings,
        engine: Any,
        conn: redis.Redis,
        campaign_id: int,
        generation: int,
        kind: str,
        options: dict[str, Any],
        selected_at: dt.datetime,
        min_dues: int | None,
        calendar: Calendar,
    ) -> None:
        self.cfg, self.engine, self.conn = cfg, engine, conn
        self.campaign_id, self.generation, self.kind = campaign_id, generation, kind
        self.options, self.selected_at, self.min_dues = options, selected_at, min_dues
        self.calendar = calendar
        self.held = False
        self.sender = sending.Sender(
            cfg, engine, conn, campaign_id, threads=cfg.campaign_send_threads
        )

    def __enter__(self) -> _Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sender.close()

    def chunk_size(self) -> int:
        """Recipients per chunk: CHUNK, fewer when a rate limit would make a chunk long."""
        rates = [r for r in (self.cfg.mps_for("whatsapp"), self.cfg.mps_for("sms")) if r > 0]
        if not rates:
            return CHUNK
        return max(1, min(CHUNK, int(min(rates) * CHUNK_SECONDS)))

    def run(self, recipients: list[store.CampaignRecipient], last_id: int) -> str | None:
        """Send the batch's queued recipients a chunk at a time, rules checked before each
        chunk; the job's result when it stops early, None once every one has been tried.
        Raises :class:`BatchIncomplete` when some must be tried again later."""
        size = self.chunk_size()
        leftovers: list[store.CampaignRecipient] = []
        texts: dict[int, tuple[str, dict[str, str]]] | None = None
        start = 0
        while start < len(recipients):
            if start and not self.still_sending():
                return "stopped"
            chunk = recipients[start : start + size]
            now = utcnow()
            shut: dict[str, tuple[str, dt.datetime] | None] = {}
            wait, open_ = None, chunk
            for index, recipient in enumerate(chunk):
                if recipient.discom not in shut:
                    shut[recipient.discom] = self.window_shut(now, recipient.discom)
                wait = shut[recipient.discom]
                if wait is not None:
                    open_ = chunk[:index]
                    break
            if open_:
                self.unhold()
                if texts is None:
                    # Written for the whole batch in one transaction, once the window is open.
                    texts = self.prepare(recipients[start:])
                leftovers += self.send_chunk(open_, texts)
            if wait is not None:
                # The rest waits for the window, with those that failed for now before it.
                first = min([r.id for r in leftovers] + [recipients[start + len(open_)].id])
                self.defer(first, last_id, wait[0], wait[1])
                return f"waiting:{wait[0]}"
            start += len(chunk)
        for pause in (*IN_JOB_BACKOFF, *LEFTOVER_PASSES):
            # A blip (Redis restarting, a burst of 5xx) is over in seconds: try those again
            # here before handing the batch to RQ's retry, whose scheduler may be restarting.
            if not leftovers or not self.still_sending():
                break
            time.sleep(pause)
            assert texts is not None
            again, leftovers = leftovers, []
            for at in range(0, len(again), size):
                leftovers += self.send_chunk(again[at : at + size], texts)
        if leftovers:
            raise BatchIncomplete(
                f"campaign {self.campaign_id}: {len(leftovers)} message(s) up to {last_id} to retry"
            )
        return None

    def still_sending(self) -> bool:
        with store.session_scope(self.engine) as session:
            campaign = session.get(store.Campaign, self.campaign_id)
            return (
                campaign is not None
                and int(campaign.generation) == self.generation
                and campaign.status in states.SENDING
            )

    def window_shut(self, now: dt.datetime, discom: str) -> tuple[str, dt.datetime] | None:
        """(why, until when) nothing may be sent to ``discom`` now; None when it may."""
        wait = self.calendar.send_wait(now)
        if wait is not None or self.kind != messages.DISCONNECTION_WARNING:
            return wait
        held = self.calendar.moratorium_for(now, [discom])
        if held is None:
            return None
        self.hold(held)
        return "moratorium", self.calendar.held_until(now, held)

    def hold(self, period: rules.Period) -> None:
        """Show the campaign as held by a moratorium."""
        until = rules.as_ist(period.ends_at)
        reason = f"moratorium until {until:%d-%m-%Y %H:%M} IST" + (
            f": {period.reason}" if period.reason else ""
        )
        with store.session_scope(self.engine) as session:
            session.execute(
                update(store.Campaign)
                .where(
                    store.Campaign.id == self.campaign_id, store.Campaign.status == states.RUNNING
                )
                .values(status=states.HELD, held_reason=reason)
                .execution_options(synchronize_session=False)
            )
        self.held = True
        log.info(kv("campaign_held", campaign=self.campaign_id, until=until.isoformat()))

    def unhold(self) -> None:
        """A held campaign whose moratorium is over is running again."""
        if not self.held:
            return
        with store.session_scope(self.engine) as session:
            session.execute(
                update(store.Campaign)
                .where(store.Campaign.id == self.campaign_id, store.Campaign.status == states.HELD)
                .values(status=states.RUNNING, held_reason=None)
                .execution_options(synchronize_session=False)
            )
        self.held = False

    def defer(self, first_id: int, last_id: int, why: str, until: dt.datetime) -> None:
        """Schedule the rest of the batch for when the window opens (nothing is dropped)."""
        if self.kind == messages.DISCONNECTION_WARNING:
            self._forget_unsent_texts(first_id, last_id)
        at = until.astimezone(dt.timezone.utc)
        Queue(CAMPAIGNS, connection=self.conn).enqueue_at(
            at,
            SEND_BATCH,
            args=(self.campaign_id, self.generation, first_id, last_id),
            job_id=_job_id(self.campaign_id, self.generation, first_id, at),
            job_timeout=JOB_TIMEOUT,
            retry=retry(),
            description=f"campaign {self.campaign_id}: recipients {first_id}..{last_id} ({why})",
        )
        log.info(
            kv(
                "campaign_batch_waits",
                campaign=self.campaign_id,
                why=why,
                until=at.isoformat(),
                first=first_id,
            )
        )

    def _forget_unsent_texts(self, first_id: int, last_id: int) -> None:
        """Drop warnings written but never handed to Twilio: when the window opens again they
        are written afresh, with a cut time and a pay link counted from then."""
        key = literal(f"campaign:{self.campaign_id}:") + store.CampaignRecipient.new_account_no
        tried = select(store.OutboundMessage.id).where(store.OutboundMessage.idempotency_key == key)
        with store.session_scope(self.engine) as session:
            session.execute(
                update(store.CampaignRecipient)
                .where(
                    store.CampaignRecipient.campaign_id == self.campaign_id,
                    store.CampaignRecipient.id >= first_id,
                    store.CampaignRecipient.id <= last_id,
                    store.CampaignRecipient.state == states.QUEUED,
                    store.CampaignRecipient.body.is_not(None),
                    ~tried.exists(),
                )
                .values(body=None, variables=None, intent_id=None)
                .execution_options(synchronize_session=False)
            )

    # ---------------------------------------------------------------- texts

    def prepare(
        self, recipients: list[store.CampaignRecipient]
    ) -> dict[int, tuple[str, dict[str, str]]]:
        """Each recipient's text and variables: kept from an earlier run, or written now and kept
        (so that every retry sends, and Twilio's list is searched for, the same text). Those who
        paid since selection are skipped here, and those whose values do not fit fail here."""
        texts: dict[int, tuple[str, dict[str, str]]] = {}
        with store.session_scope(self.engine) as session:
            rows = {
                r.id: r
                for r in session.execute(
                    select(store.CampaignRecipient).where(
                        store.CampaignRecipient.id.in_([r.id for r in recipients]),
                        store.CampaignRecipient.state == states.QUEUED,
                    )
                ).scalars()
            }
            unwritten = [r.new_account_no for r in rows.values() if r.body is None]
            consumers = {
                c.new_account_no: c
                for c in session.execute(
                    select(store.Consumer).where(store.Consumer.new_account_no.in_(unwritten))
                ).scalars()
            }
            for row in rows.values():
                if row.body is not None:
                    texts[row.id] = (row.body, json.loads(row.variables or "{}"))
                    continue
                if self.kind == messages.DISCONNECTION_WARNING and self._paid(session, row):
                    row.state, row.reason = states.SKIPPED, PAID
                    continue
                consumer = consumers.get(row.new_account_no)
                if consumer is None or row.channel is None:
                    row.state, row.reason = states.FAILED, "consumer_gone"
                    continue
                tpl = messages.template(self.kind, row.channel, row.language)
                try:
                    values = self._values(session, consumer, row)
                    body = tpl.render(values)
                except (messages.ValueDoesNotFit, paylinks.AmountOutOfRange, KeyError) as exc:
                    log.warning(
                        kv("campaign_unrenderable", campaign=self.campaign_id, error=str(exc))
                    )
                    if row.intent_id is not None:
                        # No message will carry this pay link.
                        session.execute(
                            delete(store.PaymentIntent).where(
                                store.PaymentIntent.id == row.intent_id
                            )
                        )
                        row.intent_id = None
                    row.state, row.reason = states.FAILED, UNRENDERABLE
                    continue
                row.body = body
                row.variables = json.dumps(values, ensure_ascii=False, sort_keys=True)
                texts[row.id] = (body, values)
        return texts

    def _paid(self, session: Session, row: store.CampaignRecipient) -> bool:
        """True when payments since selection leave less than the campaign's minimum dues."""
        return self._covers(row, store.paid_since(session, row.new_account_no, self.selected_at))

    def _covers(self, row: store.CampaignRecipient, paid: int) -> bool:
        return covers(row, paid, self.min_dues)

    # ---------------------------------------------------------------- a chunk

    def send_one(
        self, recipient: store.CampaignRecipient, body: str, values: dict[str, str]
    ) -> bool:
        """Send (or skip, or fail) one recipient; False when it must be retried later."""
        return not self.send_chunk([recipient], {recipient.id: (body, values)})

    def send_chunk(
        self,
        chunk: list[store.CampaignRecipient],
        texts: dict[int, tuple[str, dict[str, str]]],
    ) -> list[store.CampaignRecipient]:
        """Send (or skip, or fail) a chunk of recipients with their texts (those without one
        were settled when it was written); those that must be retried later."""
        chunk = [r for r in chunk if r.id in texts]
        paid = self._paid_ids(chunk) if self.kind == messages.DISCONNECTION_WARNING else set()
        by_key: dict[str, store.CampaignRecipient] = {}
        batch: list[sending.Message] = []
        for recipient in chunk:
            if recipient.id in paid:
                continue
            assert recipient.channel is not None and recipient.mobile is not None
            body, values = texts[recipient.id]
            tpl = messages.template(self.kind, recipient.channel, recipient.language)
            key = idempotency_key(self.campaign_id, recipient.new_account_no)
            by_key[key] = recipient
            batch.append(
                sending.Message(
                    key,
                    recipient.channel,
                    recipient.mobile,
                    body,
                    tpl.content_sid,
                    tpl.content_variables(values),
                )
            )

        def settle(session: Session, outcomes: Mapping[str, twilio_client.SendOutcome]) -> None:
            moves: list[_Move] = [(r, states.SKIPPED, PAID, None) for r in chunk if r.id in paid]
            for key, outcome in outcomes.items():
                recipient = by_key[key]
                if outcome.ok:
                    moves.append((recipient, states.SENT, None, None))
                elif outcome.result == "opted_out":
                    moves.append((recipient, states.SKIPPED, OPTED_OUT, None))
                else:
                    moves.append((recipient, states.FAILED, REJECTED, outcome.error_code))
                    log.info(
                        kv(
                            "campaign_send_rejected",
                            campaign=self.campaign_id,
                            to=mask(recipient.mobile or ""),
                            code=outcome.error_code,
                        )
                    )
            self._settle(session, moves)

        if not batch:
            with store.session_scope(self.engine) as session:
                settle(session, {})
            return []
        results = self.sender.send(batch, settle)
        leftovers: list[store.CampaignRecipient] = []
        paused: twilio_client.TwilioSendingPaused | None = None
        for key, recipient in by_key.items():
            got = results.get(key)
            if isinstance(got, twilio_client.SendOutcome):
                continue
            leftovers.append(recipient)
            if isinstance(got, twilio_client.TwilioSendingPaused):
                paused = got
            elif isinstance(got, twilio_client.SendInFlight):
                # Another attempt holds it (or a dead worker's lease runs): tried again later.
                continue
            elif isinstance(got, twilio_client.TwilioTransientError):
                log.warning(
                    kv("campaign_send_retry_later", campaign=self.campaign_id, code=got.code)
                )
            else:
                # The message may be out (it is recorded first): the retry finds it by its key.
                log.warning(kv("campaign_send_redis_error", error=type(got).__name__))
        if paused is not None:
            raise paused
        return leftovers

    def _paid_ids(self, chunk: list[store.CampaignRecipient]) -> set[int]:
        """Ids of the chunk's recipients who paid enough since selection (one query)."""
        if not chunk:
            return set()
        with store.session_scope(self.engine) as session:
            paid = dict(
                session.execute(
                    select(
                        store.Payment.new_account_no,
                        func.coalesce(func.sum(store.Payment.amount_paise), 0),
                    )
                    .where(
                        store.Payment.new_account_no.in_({r.new_account_no for r in chunk}),
                        store.Payment.status == "paid",
                        store.Payment.paid_at >= self.selected_at,
                    )
                    .group_by(store.Payment.new_account_no)
                ).all()
            )
        return {r.id for r in chunk if self._covers(r, int(paid.get(r.new_account_no, 0)))}

    def _values(
        self, session: Session, consumer: store.Consumer, row: store.CampaignRecipient
    ) -> dict[str, str]:
        if self.kind == messages.NEW_ACCOUNT_NUMBER:
            return messages.campaign_values(
                name=consumer.name,
                new_account_no=consumer.new_account_no,
                old_account_no=consumer.old_account_no,
                discom=consumer.discom,
                valid_until=dt.date.fromisoformat(self.options["valid_until"]),
            )
        now = utcnow()
        owed = int(row.amount_paise or 0) - store.paid_since(
            session, consumer.new_account_no, self.selected_at
        )
        bill = store.latest_bill(session, consumer.new_account_no)
        intent = paylinks.create_intent(
            session,
            self.cfg,
            consumer,
            owed,
            kind=paylinks.DUES,
            bill_month=bill.bill_month if bill else None,
            mobile=row.mobile,
            channel=row.channel,
            now=now,
        )
        row.intent_id = intent.id
        cut_from = self.calendar.cut_from(now, consumer.discom, consumer.meter_type, self.options)
        return messages.campaign_values(
            name=consumer.name,
            new_account_no=consumer.new_account_no,
            discom=consumer.discom,
            amount_paise=owed,
            cut_from=cut_from,
            pay_url=paylinks.pay_url(self.cfg, paylinks.make_token(self.cfg, intent)),
        )

    def _settle(
        self,
        session: Session,
        moves: list[_Move],
    ) -> None:
        """Move queued recipients to their final states (once: a second mover changes nothing),
        a statement per kind of move.

        A message Twilio has is ``sent`` whatever happened meanwhile (a cancel that marked the
        recipient skipped while its message was on its way): the status never hides a send.
        """
        now = utcnow()
        recipient = store.CampaignRecipient
        groups: dict[tuple[str, str | None, int | None], list[int]] = {}
        sent: list[store.CampaignRecipient] = []
        for row, state, reason, code in moves:
            if state == states.SENT:
                sent.append(row)
            else:
                groups.setdefault((state, reason, code), []).append(row.id)
        if sent and self.kind == messages.DISCONNECTION_WARNING:
            for row in sent:
                moved = session.execute(
                    update(recipient)
                    .where(recipient.id == row.id, recipient.state != states.SENT)
                    .values(state=states.SENT, reason=None, error_code=None, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if moved:
                    # The bot's "will I be cut?" (ask_disconnection) reads the list.
                    session.add(
                        store.DisconnectionNotice(
                            new_account_no=row.new_account_no,
                            amount_to_avoid_paise=int(row.amount_paise or 0),
                            listed_on=rules.as_ist(now).date(),
                            campaign_id=self.campaign_id,
                            status="listed",
                        )
                    )
        elif sent:
            session.execute(
                update(recipient)
                .where(recipient.id.in_([r.id for r in sent]), recipient.state != states.SENT)
                .values(state=states.SENT, reason=None, error_code=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        for (state, reason, code), ids in groups.items():
            session.execute(
                update(recipient)
                .where(recipient.id.in_(ids), recipient.state == states.QUEUED)
                .values(state=state, reason=reason, error_code=code, updated_at=now)
                .execution_options(synchronize_session=False)
            )


# --------------------------------------------------------------------------- SMS fallback

#: Dotted name of the SMS fallback job (the status callback's handler enqueues it by name).
SEND_SMS_FALLBACK = "notifier.jobs.send_sms_fallback"
#: Why a recipient's WhatsApp message went again as SMS.
SMS_FALLBACK = "sms_fallback"


def fallback_key(campaign_id: int, new_account_no: str) -> str:
    """The key of a recipient's one SMS fallback (beside its one WhatsApp message)."""
    return f"{idempotency_key(campaign_id, new_account_no)}:sms"


def enqueue_sms_fallback(conn: redis.Redis, campaign_id: int, new_account_no: str) -> str:
    """Queue :func:`send_sms_fallback` for a recipient (one job id per recipient); its id."""
    job_id = f"campaign-{campaign_id}-sms-{new_account_no}"
    Queue(CAMPAIGNS, connection=conn).enqueue(
        SEND_SMS_FALLBACK,
        args=(campaign_id, new_account_no),
        job_id=job_id,
        job_timeout=5 * 60,
        retry=retry(),
        description=f"campaign {campaign_id}: SMS fallback",
    )
    return job_id


def send_sms_fallback(campaign_id: int, new_account_no: str) -> str:
    """Send a recipient's WhatsApp message once more as SMS (its DLT template, same values),
    when WhatsApp could not deliver it (error 63003/63016 family, from the status callback).

    At most once per recipient (its own idempotency key); the window and opt-outs apply as to
    any push; a cancelled or paused campaign sends nothing. A disconnection warning is checked
    again as the batch checked it: a moratorium makes the fallback wait, and a consumer who has
    paid since selection (WhatsApp's failure can come hours later) gets no SMS. Returns what it
    did.
    """
    cfg = connections.settings()
    engine = connections.engine(cfg)
    conn = connections.redis(cfg)
    now = utcnow()
    with store.session_scope(engine) as session:
        campaign = session.get(store.Campaign, campaign_id)
        row = session.execute(
            select(store.CampaignRecipient).where(
                store.CampaignRecipient.campaign_id == campaign_id,
                store.CampaignRecipient.new_account_no == new_account_no,
            )
        ).scalar_one_or_none()
        if campaign is None or row is None:
            return "gone"
        if campaign.status in (states.PAUSED, states.CANCELLED):
            return campaign.status
        if row.channel != "whatsapp" or row.state != states.SENT or not row.variables:
            return "not_applicable"
        calendar = Calendar.load(session, cfg, campaign.kind, now)
        kind, mobile, language = campaign.kind, row.mobile, row.language
        values: dict[str, str] = json.loads(row.variables)
        paid = kind == messages.DISCONNECTION_WARNING and _paid_enough(session, campaign, row)
    assert mobile is not None
    if paid:
        log.info(kv("campaign_sms_fallback", campaign=campaign_id, to=mask(mobile), result=PAID))
        return PAID
    wait = calendar.send_wait(now)
    held = calendar.moratorium_for(now, [row.discom])
    if wait is None and held is not None:
        wait = "moratorium", calendar.held_until(now, held)
    if wait is not None:
        Queue(CAMPAIGNS, connection=conn).enqueue_at(
            wait[1].astimezone(dt.timezone.utc),
            SEND_SMS_FALLBACK,
            args=(campaign_id, new_account_no),
            job_timeout=5 * 60,
            retry=retry(),
        )
        return f"waiting:{wait[0]}"
    body = messages.template(kind, "sms", language).render(values)
    outcome = twilio_client.send(
        cfg,
        channel="sms",
        to=mobile,
        idempotency_key=fallback_key(campaign_id, new_account_no),
        body=body,
        campaign_id=campaign_id,
        respect_opt_out=True,
        engine=engine,
        redis_conn=conn,
    )
    if outcome.ok:
        with store.session_scope(engine) as session:
            session.execute(
                update(store.CampaignRecipient)
                .where(
                    store.CampaignRecipient.campaign_id == campaign_id,
                    store.CampaignRecipient.new_account_no == new_account_no,
                )
                .values(reason=SMS_FALLBACK, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    log.info(
        kv("campaign_sms_fallback", campaign=campaign_id, to=mask(mobile), result=outcome.result)
    )
    return outcome.result


def _paid_enough(session: Session, campaign: store.Campaign, row: store.CampaignRecipient) -> bool:
    """Whether payments since the campaign's selection cover a recipient's warning."""
    paid = store.paid_since(
        session, row.new_account_no, campaign.selected_at or campaign.created_at
    )
    return covers(row, paid, json.loads(campaign.filters or "{}").get("min_dues_paise"))


__all__ = [
    "BatchIncomplete",
    "CAMPAIGNS",
    "Calendar",
    "REJECTED",
    "covers",
    "RETRY_INTERVALS",
    "SEND_BATCH",
    "enqueue_batches",
    "idempotency_key",
    "retry",
    "SEND_SMS_FALLBACK",
    "enqueue_sms_fallback",
    "fallback_key",
    "send_batch",
    "send_sms_fallback",
]
