"""Campaign messages a chunk at a time: claimed together, sent side by side, recorded together.

``bot.twilio_client.send`` costs a message three write transactions (claim its idempotency row,
store its sid, settle its recipient), two Redis reads and one HTTP request waited for in turn;
at 500 messages a second that is more than a 2-core machine has. :class:`Sender` keeps every
one of its rules and pays for them once per chunk (a few dozen to a hundred messages):

1. **Claim** in one transaction: the chunk's ``outbound_messages`` rows are read by idempotency
   key, new ones inserted ``in_flight`` in one statement; a message with a sid (or a terminal
   status) is a ``duplicate``, one in flight within its lease is :class:`SendInFlight`, one to
   a number that opted out of the channel is ``opted_out``; WhatsApp's 24-hour window is read
   for the chunk at once. Should another attempt insert one of the keys meanwhile, the chunk is
   claimed one message at a time instead, exactly as ``send`` claims.
2. **Look for** the messages an earlier attempt may have got accepted (``unconfirmed``, or left
   in flight by a dead worker): one at a time, as ``send`` does (Twilio's list).
3. **Send** with bounded concurrency: a thread pool hands the claimed messages to Twilio through
   the process's one client; every send still takes its own token from the sender's Redis rate
   limiter in the ``bulk`` lane (replies first). Twilio's errors are sorted as ``send`` sorts
   them (``twilio_client.hand_over``): permanent ones recorded and returned ``rejected``, 429,
   5xx and network errors raised for a retry (a request that may have reached Twilio leaves its
   row ``unconfirmed``, to be looked for before any resend). Once Twilio refuses the
   credentials (401/403) nothing more of the chunk is sent.
4. **Record** in one transaction: every accepted message's sid, and (through ``settle``) the
   recipients' states, so that a recipient is ``sent`` exactly when its sid is stored.
5. Status callbacks that arrived before their sid was stored are applied (one Redis pipeline
   finds them).

A worker that dies between 3 and 4 leaves the chunk's rows ``in_flight``: once their lease has
run, the batch's retry looks each one up in Twilio's list before sending it again (step 2).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeAlias

import redis
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import delivery_status as status_mod
from bot import store, twilio_client
from bot.clock import utcnow
from bot.logfmt import kv
from bot.phone import mask
from bot.settings import Settings
from bot.twilio_client import SendInFlight, SendOutcome, TwilioSendingPaused, TwilioTransientError

log = logging.getLogger(__name__)

#: What became of one message: an outcome, or the error for which it must be tried again.
Result: TypeAlias = SendOutcome | TwilioTransientError | redis.RedisError
#: Called inside the transaction that records the chunk's sids, with each message's outcome.
Settle: TypeAlias = Callable[[Session, Mapping[str, SendOutcome]], None]


@dataclass(frozen=True)
class Message:
    """One campaign message: its idempotency key, where it goes, its text and its template."""

    key: str
    channel: str
    to: str
    body: str
    content_sid: str | None = None
    content_variables: str | Mapping[str, object] | None = None


class Sender:
    """Sends chunks of one campaign's messages with ``threads`` requests in flight at most."""

    def __init__(
        self,
        cfg: Settings,
        engine: Engine,
        conn: redis.Redis,
        campaign_id: int,
        *,
        threads: int,
    ) -> None:
        self.cfg, self.engine, self.conn, self.campaign_id = cfg, engine, conn, campaign_id
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._paused = threading.Event()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- one chunk

    def send(self, messages: list[Message], settle: Settle) -> dict[str, Result]:
        """Send a chunk (distinct keys); each key's outcome, or the error to retry it after.

        ``settle`` runs in the transaction that records the sids, also when nothing was sent.
        Raises :class:`TwilioSendingPaused` before claiming anything while sending is paused.
        """
        paused = twilio_client.pause_state(self.cfg, self.conn)
        if paused is not None:
            raise TwilioSendingPaused(f"sending paused since {paused.since}: {paused.reason}")
        self._paused.clear()
        variables = {
            m.key: twilio_client.content_variables_json(m.content_sid, m.content_variables)
            for m in messages
        }
        results: dict[str, Result] = {}
        claims, windows = self._claim_chunk(messages, results)
        by_key = {m.key: m for m in messages}
        for key, claim in list(claims.items()):
            if not claim.may_be_accepted:
                continue
            m = by_key[key]
            try:
                found = twilio_client.find_accepted(
                    self.cfg, self.engine, claim, m.channel, m.to, m.body, None, self.conn,
                    bool(m.content_sid),
                )  # fmt: skip
            except TwilioTransientError as exc:
                results[key] = exc
                del claims[key]
                if isinstance(exc, TwilioSendingPaused):
                    self._paused.set()
                continue
            if found is not None:
                results[key] = found
                del claims[key]

        def one(key: str) -> Result | tuple[str, str]:
            m, claim = by_key[key], claims[key]
            if self._paused.is_set():
                twilio_client.set_outbound_row(
                    self.engine, claim.outbound_id, status=status_mod.RETRYING
                )
                return TwilioSendingPaused("sending paused during the chunk")
            kwargs, _ = twilio_client.message_kwargs(
                self.cfg,
                channel=m.channel,
                to=m.to,
                idempotency_key=key,
                body=m.body,
                media_url=None,
                content_sid=m.content_sid,
                variables=variables[key],
                in_window=lambda: windows.get(m.to, False),
            )
            try:
                return twilio_client.hand_over(
                    self.cfg, self.engine, self.conn, kwargs, claim.outbound_id, m.channel, m.to,
                    self.campaign_id,
                )  # fmt: skip
            except TwilioSendingPaused as exc:
                self._paused.set()
                return exc
            except (TwilioTransientError, redis.RedisError) as exc:
                return exc

        keys = list(claims)
        if len(keys) > 1 and self.threads > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="campaign-send")
            handed = list(self._pool.map(one, keys))
        else:
            handed = [one(k) for k in keys]
        accepted: dict[str, tuple[int, str, str]] = {}
        for key, got in zip(keys, handed, strict=True):
            if isinstance(got, tuple):
                accepted[key] = (claims[key].outbound_id, *got)
                results[key] = SendOutcome("sent", claims[key].outbound_id, got[0])
            else:
                results[key] = got
        self._record(accepted, results, settle)
        self._apply_early([sid for _, sid, _ in accepted.values()])
        if accepted:
            log.info(
                kv(
                    "twilio_sent_chunk",
                    campaign=self.campaign_id,
                    sent=len(accepted),
                    of=len(messages),
                    first=min(o for o, _, _ in accepted.values()),
                )
            )
        return results

    # ---------------------------------------------------------------- 1. claim

    def _claim_chunk(
        self, messages: list[Message], results: dict[str, Result]
    ) -> tuple[dict[str, twilio_client.Claim], dict[str, bool]]:
        """Claim the chunk in one transaction (outcomes and in-flight errors into ``results``);
        the claims by key, and who is inside WhatsApp's window."""
        try:
            with store.session_scope(self.engine) as session:
                return self._claim_in(session, messages, results)
        except IntegrityError:
            # Another attempt inserted one of these keys meanwhile: claim one by one, as send.
            log.info(kv("campaign_chunk_claim_raced", campaign=self.campaign_id))
            return self._claim_each(messages, results)

    def _claim_in(
        self, session: Session, messages: list[Message], results: dict[str, Result]
    ) -> tuple[dict[str, twilio_client.Claim], dict[str, bool]]:
        now = utcnow()
        found: dict[str, Result] = {}
        claims: dict[str, twilio_client.Claim] = {}
        rows = {
            r.idempotency_key: r
            for r in session.execute(
                select(store.OutboundMessage).where(
                    store.OutboundMessage.idempotency_key.in_([m.key for m in messages])
                )
            ).scalars()
        }
        opted_out = {
            (mobile, channel)
            for mobile, channel in session.execute(
                select(store.OptOut.mobile, store.OptOut.channel).where(
                    store.OptOut.mobile.in_({m.to for m in messages})
                )
            )
        }
        fresh: list[Message] = []
        for m in messages:
            row = rows.get(m.key)
            if row is not None and (row.twilio_sid or row.status in status_mod.TERMINAL):
                found[m.key] = SendOutcome("duplicate", row.id, row.twilio_sid, row.error_code)
            elif (m.to, m.channel) in opted_out:
                log.info(kv("twilio_send_skipped_opted_out", to=mask(m.to), channel=m.channel))
                found[m.key] = SendOutcome("opted_out", row.id if row else None)
            elif row is None:
                fresh.append(m)
            elif row.status == status_mod.IN_FLIGHT and row.updated_at > now - dt.timedelta(
                seconds=twilio_client.SEND_LEASE
            ):
                found[m.key] = SendInFlight(f"message {row.id} is being sent by another attempt")
            else:
                # The attempts counter is the row's version: of two attempts, one wins.
                won = session.execute(
                    update(store.OutboundMessage)
                    .where(
                        store.OutboundMessage.id == row.id,
                        store.OutboundMessage.attempts == row.attempts,
                        store.OutboundMessage.twilio_sid.is_(None),
                    )
                    .values(status=status_mod.IN_FLIGHT, attempts=(row.attempts or 0) + 1,
                            updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount  # fmt: skip
                if not won:
                    found[m.key] = SendInFlight(
                        f"message {row.id} is being sent by another attempt"
                    )
                    continue
                claims[m.key] = twilio_client.Claim(
                    int(row.id),
                    row.created_at,
                    may_be_accepted=row.status in (status_mod.IN_FLIGHT, status_mod.UNCONFIRMED),
                )
        if fresh:
            session.execute(
                insert(store.OutboundMessage.__table__),
                [
                    {
                        "idempotency_key": m.key,
                        "channel": m.channel,
                        "to_number": m.to,
                        "body": m.body,
                        "campaign_id": self.campaign_id,
                        "status": status_mod.IN_FLIGHT,
                        "attempts": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for m in fresh
                ],
            )
            ids = dict(
                session.execute(
                    select(store.OutboundMessage.idempotency_key, store.OutboundMessage.id).where(
                        store.OutboundMessage.idempotency_key.in_([m.key for m in fresh])
                    )
                ).all()
            )
            for m in fresh:
                claims[m.key] = twilio_client.Claim(int(ids[m.key]), now, may_be_accepted=False)
        windows = self._windows(session, [m for m in messages if m.key in claims], now)
        results.update(found)
        return claims, windows

    def _claim_each(
        self, messages: list[Message], results: dict[str, Result]
    ) -> tuple[dict[str, twilio_client.Claim], dict[str, bool]]:
        claims: dict[str, twilio_client.Claim] = {}
        for m in messages:
            try:
                got = twilio_client.claim_message(
                    self.engine, m.key, channel=m.channel, to=m.to, body=m.body, media_url=None,
                    campaign_id=self.campaign_id, respect_opt_out=True,
                )  # fmt: skip
            except TwilioTransientError as exc:
                results[m.key] = exc
                continue
            if isinstance(got, SendOutcome):
                results[m.key] = got
            else:
                claims[m.key] = got
        with store.session_scope(self.engine) as session:
            windows = self._windows(session, [m for m in messages if m.key in claims], utcnow())
        return claims, windows

    @staticmethod
    def _windows(session: Session, messages: list[Message], now: dt.datetime) -> dict[str, bool]:
        """Mobiles (of WhatsApp messages that may go as free text) inside WhatsApp's window."""
        mobiles = {m.to for m in messages if m.channel == "whatsapp" and m.content_sid and m.body}
        if not mobiles:
            return {}
        last = session.execute(
            select(store.InboundMessage.from_number, func.max(store.InboundMessage.received_at))
            .where(
                store.InboundMessage.channel == "whatsapp",
                store.InboundMessage.from_number.in_(mobiles),
            )
            .group_by(store.InboundMessage.from_number)
        ).all()
        limit = twilio_client.WHATSAPP_WINDOW - twilio_client.WINDOW_MARGIN
        return {mobile: at is not None and now - at < limit for mobile, at in last}

    # ---------------------------------------------------------------- 4. record, 5. callbacks

    def _record(
        self,
        accepted: Mapping[str, tuple[int, str, str]],
        results: Mapping[str, Result],
        settle: Settle,
    ) -> None:
        """Store the sids Twilio gave (unless a status callback already did) and settle, at once."""
        outcomes = {k: r for k, r in results.items() if isinstance(r, SendOutcome)}
        table = store.OutboundMessage.__table__
        with store.session_scope(self.engine) as session:
            if accepted:
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("oid"), table.c.twilio_sid.is_(None))
                    .values(
                        twilio_sid=bindparam("sid"), status=bindparam("st"), updated_at=utcnow()
                    ),
                    [{"oid": o, "sid": sid, "st": st} for o, sid, st in accepted.values()],
                )
            settle(session, outcomes)

    def _apply_early(self, sids: list[str]) -> None:
        """Apply status callbacks that came before their message's sid was stored."""
        if not sids:
            return
        try:
            with self.conn.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.exists(status_mod.EARLY_KEY.format(sid=sid))
                waiting = [sid for sid, n in zip(sids, pipe.execute(), strict=True) if n]
            for sid in waiting:
                status_mod.apply_early(self.conn, self.engine, sid)
        except redis.RedisError as exc:
            log.warning(kv("campaign_early_callbacks_not_applied", error=type(exc).__name__))


__all__ = ["Message", "Result", "Sender", "Settle"]
