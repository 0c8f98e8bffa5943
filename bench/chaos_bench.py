"""Loss and duplicates under chaos: signed webhooks through the whole stack while parts of it fail.

Starts the stack as real processes, as the Procfile runs them: gunicorn with the Flask app,
``bijli rasa-server`` on the trained model, ``bijli actions-server``, ``bijli worker`` (RQ's
worker pool), ``bijli cron`` (the inbox sweep) and the fake Twilio, on a durable embedded Redis
(append-only file, fixed port) and SQLite or PostgreSQL. It posts ``--messages`` signed Twilio
webhooks at a steady ``--rate`` from ``--senders`` senders (half of them registered consumers),
each sender's messages numbered in their MessageSid. Like Twilio with the connection overrides
of the README, a post that times out or answers 5xx is retried with the same MessageSid, and a
few messages (``--redeliver``) are delivered twice on purpose. Along the way, for real:

1. the action server is SIGKILLed, and started again ``--actions-down`` seconds later;
2. one worker of the pool is SIGKILLed while it runs a job (the pool respawns it);
3. Redis is stopped and, ``--redis-down`` seconds later, started again on the same port and
   append-only file (``--redis-crash``: SIGKILL instead of a clean stop).

Then it waits until every message is answered (or ``--deadline``), runs ``bijli replay-failed``
if dead letters remain, waits for the queues to empty and the fake Twilio to fall quiet, and
counts. Every reply the fake Twilio received names the send it came from: its status callback
URL carries the idempotency key ``reply:<inbound id>:<reply>:<part>``.

- lost: a message posted (or stored) that got no reply at the fake Twilio;
- duplicates: a reply sent more than once under one key, or a reply naming no key;
- misdirected: a reply to another number than its message's sender;
- out of order: a message answered before an earlier-stored message of the same sender;
- dead letters, and the time to drain (last message accepted -> every message answered).

Exit status 1 when anything is lost, duplicated or misdirected.

    python bench/chaos_bench.py [--messages 1000] [--senders 50] [--rate 12] [--workers 2]
        [--actions-down 30] [--redis-down 5] [--redis-crash] [--deadline 1200]
        [--database-url postgresql://127.0.0.1:5432/test] [--json out.json] [--write out.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import psutil
import redis
import requests
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rq import Queue, Worker  # noqa: E402
from rq.registry import (  # noqa: E402
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import select  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from bot import migrations  # noqa: E402
from bot import settings as settings_mod  # noqa: E402
from bot.connections import engine_for, redis_client  # noqa: E402
from bot.dev.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from bot.gateway.inbound import REPLIES_KEY  # noqa: E402
from bot.queues import INBOUND  # noqa: E402
from bot.rasa_runtime import training as model  # noqa: E402
from bot.store import Consumer, DeadLetter, InboundMessage, session_scope  # noqa: E402
from tests.pg_schemas import PrivateSchema  # noqa: E402
from tests.processes import bijli, running, stack_env, stop  # noqa: E402

#: What the senders write: the gateway bench's mix (each goes to Rasa; none is a keyword).
MESSAGES = [
    "hi",
    "mera naya account number kya hai",
    "bill kitna baki hai",
    "मेरा बिल कितना है",
    "light nahi hai kab aayegi",
    "what can you do",
    "thanks",
    "prepaid balance kitna hai",
]
#: When each failure starts, as a fraction of the sending time: the action server first, so
#: that the worker is killed and Redis restarted while the backlog it left drains.
ACTIONS_AT, WORKER_AT, REDIS_AT = 0.10, 0.55, 0.75
#: Twilio's side of the webhook URL's connection overrides (settings.DEFAULT_WEBHOOK_OVERRIDES):
#: connect timeout, read timeout, total time and retries, for a refused or timed-out
#: connection and a 5xx.
TWILIO_CONNECT_TIMEOUT, TWILIO_READ_TIMEOUT, TWILIO_TOTAL, TWILIO_RETRIES = 2.0, 5.0, 15.0, 5
#: Prefix of the PostgreSQL schema a run creates for itself.
PG_SCHEMA_PREFIX = "bijli_chaos"
#: An idempotency key of a gateway reply.
REPLY_KEY = re.compile(r"reply:(\d+):(\d+):(\d+)")
#: Worker log events worth counting (what the stack did to recover).
WORKER_EVENTS = (
    "inbound_job_retry",
    "worker_died",
    "twilio_send_found_in_list",
    "twilio_send_confirmed_by_callback",
    "inbound_dead_letter",
    "inbound_dead_letter_deferred",
    "inbound_dead_letter_written_late",
)
WEB_EVENTS = (
    "inbound_enqueue_deferred",
    "inbound_earlier_enqueued",
    "inbound_duplicate",
    "inbound_database_unavailable",
)


# --------------------------------------------------------------------------- the plan


@dataclass
class Message:
    """One inbound message of the run, and what happened to its webhook."""

    index: int
    sender: int
    seq: int
    channel: str
    mobile: str
    body: str
    sid: str
    redeliver: bool
    posted_at: float = 0.0
    accepted_at: float | None = None
    attempts: int = 0
    last_status: int | None = None
    rtt: float | None = None

    @property
    def address(self) -> str:
        return f"whatsapp:{self.mobile}" if self.channel == "whatsapp" else self.mobile


def plan(count: int, mobiles: list[str], redeliver: float, rng: random.Random) -> list[Message]:
    """The messages in posting order: senders interleaved at random, each one's in its order."""
    run = secrets.token_hex(4)
    per_sender = [count // len(mobiles) + (i < count % len(mobiles)) for i in range(len(mobiles))]
    left = list(per_sender)
    messages: list[Message] = []
    for index in range(count):
        # Weighted by what each has left, so all finish about together, with bursts on the way.
        sender = rng.choices(range(len(mobiles)), weights=left)[0]
        left[sender] -= 1
        seq = per_sender[sender] - left[sender]
        messages.append(
            Message(
                index=index,
                sender=sender,
                seq=seq,
                channel="whatsapp" if sender % 2 == 0 else "sms",
                mobile=mobiles[sender],
                body=MESSAGES[(sender + seq) % len(MESSAGES)],
                # Twilio's shape (SM + 32 hex digits), naming the run, the sender and the number.
                sid=f"SM{run}{sender:04x}{seq:04x}{secrets.token_hex(8)}",
                redeliver=rng.random() < redeliver,
            )
        )
    return messages


def senders(database_url: str, count: int, registered: int) -> list[str]:
    """Mobiles: ``registered`` registered to exactly one consumer, the rest unknown numbers."""
    from sqlalchemy import func

    with session_scope(engine_for(database_url)) as session:
        found = list(
            session.scalars(
                select(Consumer.mobile)
                .where(Consumer.mobile.is_not(None))
                .group_by(Consumer.mobile)
                .having(func.count() == 1)
                .order_by(Consumer.mobile)
                .limit(registered)
            )
        )
    # No demo mobile starts with +91 7000.
    return found + [f"+917000{i:06d}" for i in range(count - len(found))]


# --------------------------------------------------------------------------- Twilio's side


def signed_form(cfg: settings_mod.Settings, msg: Message) -> tuple[dict[str, str], str]:
    """The webhook's form as Twilio posts it, and its signature."""
    form = {
        "MessageSid": msg.sid,
        "SmsMessageSid": msg.sid,
        "AccountSid": cfg.twilio_account_sid,
        "From": msg.address,
        "To": cfg.twilio_whatsapp_from if msg.channel == "whatsapp" else cfg.twilio_sms_from,
        "Body": msg.body,
        "NumMedia": "0",
        "ProfileName": f"chaos {msg.sender}",
    }
    url = f"{cfg.public_base_url}/twilio/messages"
    return form, RequestValidator(cfg.twilio_auth_token).compute_signature(url, form)


@dataclass
class Posting:
    """Counts of the webhook posts, over the whole run."""

    attempts: int = 0
    retried: int = 0
    redelivered: int = 0
    not_200: Counter[int] = field(default_factory=Counter)


async def post_all(
    cfg: settings_mod.Settings,
    web: str,
    messages: list[Message],
    rate: float,
    posting: Posting,
    bar: tqdm,
    rng: random.Random,
) -> None:
    """Post every message at ``rate``/s, retrying as Twilio does; redeliver a few."""
    url = f"{web}/twilio/messages"
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=TWILIO_CONNECT_TIMEOUT, sock_read=TWILIO_READ_TIMEOUT
    )

    async def attempt(session: aiohttp.ClientSession, form: dict[str, str], sig: str) -> int:
        posting.attempts += 1
        try:
            async with session.post(
                url, data=form, headers={"X-Twilio-Signature": sig}, timeout=timeout
            ) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return 0  # no answer: refused, reset or timed out

    async def deliver(session: aiohttp.ClientSession, msg: Message) -> None:
        form, sig = signed_form(cfg, msg)
        msg.posted_at = time.time()
        first = time.monotonic()
        for _ in range(1 + TWILIO_RETRIES):
            msg.attempts += 1
            started = time.monotonic()
            status = await attempt(session, form, sig)
            msg.last_status = status
            if status == 200:
                msg.accepted_at = time.time()
                msg.rtt = time.monotonic() - started
                break
            posting.not_200[status] += 1
            # Twilio retries a connection failure, a read timeout and a 5xx, within its total.
            if not (status == 0 or status >= 500) or time.monotonic() - first > TWILIO_TOTAL:
                break
            posting.retried += 1
        bar.update(1)
        if msg.redeliver:
            # The same message again, as Twilio sometimes delivers a webhook twice.
            await asyncio.sleep(rng.uniform(0.5, 5))
            posting.redelivered += 1
            status = await attempt(session, form, sig)
            if status != 200:
                posting.not_200[status] += 1

    start = time.monotonic()
    connector = aiohttp.TCPConnector(limit=100, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        for i, msg in enumerate(messages):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(deliver(session, msg)))
        await asyncio.gather(*tasks)


# --------------------------------------------------------------------------- what happened


@dataclass(frozen=True)
class Reply:
    """A message the fake Twilio accepted: its place in the fake's order and its key."""

    position: int
    to: str
    key: str | None
    inbound_id: int | None
    received_at: float
    body: str = ""
    #: The reply's place in the planned answer (which Rasa message), for a key.
    index: int | None = None


def fake_replies(fake: str) -> list[Reply]:
    """Every message the fake Twilio accepted, in the order it accepted them."""
    found = []
    items = requests.get(f"{fake}/sent", timeout=30).json()["messages"]
    for position, item in enumerate(items):
        callback = item.get("status_callback") or ""
        key = parse_qs(urlsplit(callback).query).get("key", [None])[0]
        matched = REPLY_KEY.fullmatch(key or "")
        found.append(
            Reply(
                position,
                item["to"],
                key,
                int(matched.group(1)) if matched else None,
                float(item["received_at"]),
                item.get("body") or "",
                int(matched.group(2)) if matched else None,
            )
        )
    return found


def stored(database_url: str, sids: set[str]) -> dict[str, tuple[int, bool]]:
    """MessageSid -> (inbound id, answered) for the run's stored messages."""
    with session_scope(engine_for(database_url)) as session:
        rows = session.execute(
            select(InboundMessage.message_sid, InboundMessage.id, InboundMessage.processed_at)
        ).all()
    return {sid: (int(i), done is not None) for sid, i, done in rows if sid in sids}


def dead_letters(database_url: str, conn: redis.Redis, ids: set[int]) -> dict[str, int]:
    """Dead letters of the run's messages: rows, replayed rows, and jobs failed without one."""
    with session_scope(engine_for(database_url)) as session:
        letters = session.execute(
            select(DeadLetter.inbound_message_id, DeadLetter.replayed_at)
        ).all()
    ours = [(i, replayed) for i, replayed in letters if i in ids]
    failed = FailedJobRegistry(INBOUND, connection=conn).get_job_ids()
    return {
        "rows": len(ours),
        "replayed": sum(1 for _, replayed in ours if replayed is not None),
        "failed_jobs": sum(1 for j in failed if j.startswith("inbound-")),
    }


def inbound_jobs_pending(conn: redis.Redis) -> int:
    """Inbound-message jobs queued, running, scheduled for a retry or waiting for another."""
    queue = Queue(INBOUND, connection=conn)
    ids = [
        *queue.get_job_ids(),
        *StartedJobRegistry(INBOUND, connection=conn).get_job_ids(),
        *ScheduledJobRegistry(INBOUND, connection=conn).get_job_ids(),
        *DeferredJobRegistry(INBOUND, connection=conn).get_job_ids(),
    ]
    return sum(1 for job_id in ids if job_id.startswith("inbound-"))


def planned_replies(conn: redis.Redis, ids: set[int]) -> dict[int, list[str]]:
    """The texts of the answer each message's job planned and kept (to resend the same)."""
    found = {}
    for inbound_id in ids:
        raw = conn.get(REPLIES_KEY.format(id=inbound_id))
        if raw is not None:
            # An SMS carries a picture's link under the text.
            found[inbound_id] = [
                "\n".join(str(part) for part in (reply.get("text"), reply.get("image")) if part)
                for reply in json.loads(raw)
            ]
    return found


def rasa_turns(conn: redis.Redis, messages: list[Message]) -> int:
    """User messages in the run's Rasa conversations (the tracker store's event lists)."""
    turns = 0
    for address in {f"{m.channel}:{m.mobile}" for m in messages}:
        for raw in conn.lrange(f"bijli:tracker:{address}:events", 0, -1):
            turns += json.loads(raw).get("event") == "user"
    return turns


def log_events(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    """How many lines of a process log carry each ``event=<name>``."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return {name: len(re.findall(rf"event={name}\b", text)) for name in names}


def sweep_enqueued(path: Path) -> int:
    """Messages the inbox sweep enqueued again (the worker log's ``inbox_sweep`` lines)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return sum(int(n) for n in re.findall(r"event=inbox_sweep .*?enqueued=(\d+)", text))


# --------------------------------------------------------------------------- the failures


@dataclass
class Chaos:
    """What was done to the stack, when (seconds from the first post) and how long it took."""

    actions_killed_at: float | None = None
    actions_back_at: float | None = None
    worker_killed_at: float | None = None
    worker_killed_pid: int | None = None
    worker_killed_job: str | None = None
    worker_respawned_at: float | None = None
    redis_stopped_at: float | None = None
    redis_signal: str = ""
    redis_back_at: float | None = None
    errors: list[str] = field(default_factory=list)


class Stack:
    """The running processes, and how to break them."""

    def __init__(
        self,
        exits: ExitStack,
        env: dict[str, str],
        logs: Path,
        redis_server: EmbeddedRedis,
        actions_port: int,
        workers: int,
    ) -> None:
        self.exits = exits
        self.env = env
        self.logs = logs
        self.redis = redis_server
        self.actions_port = actions_port
        self.workers = workers
        self.actions_starts = 0
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], timeout: float = 180, **ready: str) -> None:
        """Start a process and keep it until the run ends."""
        self.procs[name] = self.exits.enter_context(
            running(name, argv, env=self.env, log_dir=self.logs, timeout=timeout, **ready)
        )

    def start_actions(self) -> None:
        self.actions_starts += 1
        self.start(
            f"actions{self.actions_starts}",
            bijli("actions-server", "--port", str(self.actions_port)),
            ready_url=f"http://127.0.0.1:{self.actions_port}/health",
        )
        self.procs["actions"] = self.procs[f"actions{self.actions_starts}"]

    def pool_workers(self) -> set[int]:
        """Pids of the pool's live worker processes."""
        live = set()
        try:
            children = psutil.Process(self.procs["worker"].pid).children()
        except psutil.NoSuchProcess:
            return live
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    live.add(child.pid)
            except psutil.NoSuchProcess:
                continue
        return live


def run_chaos(
    stack: Stack,
    conn: redis.Redis,
    chaos: Chaos,
    t0: float,
    send_seconds: float,
    actions_down: float,
    redis_down: float,
    redis_crash: bool,
) -> None:
    """Break the stack three times while the messages are posted (runs in its own thread)."""

    def at(fraction: float) -> None:
        delay = t0 + fraction * send_seconds - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def now() -> float:
        return round(time.monotonic() - t0, 1)

    # 1. The action server: SIGKILL, down for actions_down seconds, started again.
    at(ACTIONS_AT)
    stop(stack.procs["actions"], signal.SIGKILL)
    chaos.actions_killed_at = now()
    tqdm.write(f"[{now():6.1f} s] action server SIGKILLed")
    time.sleep(max(0.0, chaos.actions_killed_at + actions_down - now()))
    stack.start_actions()
    chaos.actions_back_at = now()
    tqdm.write(f"[{now():6.1f} s] action server answering again")

    # 2. A worker of the pool, SIGKILLed while it runs an inbound job if one does within 15 s.
    at(WORKER_AT)
    pool = stack.pool_workers()
    victim, job = _busy_worker(conn, pool)
    if victim is None:
        chaos.errors.append("no worker process found to kill")
    else:
        os.kill(victim, signal.SIGKILL)
        chaos.worker_killed_at, chaos.worker_killed_pid, chaos.worker_killed_job = (
            now(),
            victim,
            job,
        )
        tqdm.write(f"[{now():6.1f} s] worker {victim} SIGKILLed (running {job or 'nothing'})")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            live = stack.pool_workers()
            if len(live) >= stack.workers and live - pool:
                chaos.worker_respawned_at = now()
                tqdm.write(f"[{now():6.1f} s] the pool respawned it: {sorted(live - pool)}")
                break
            time.sleep(0.1)
        else:
            chaos.errors.append("the pool did not respawn the killed worker within 60 s")

    # 3. Redis: stopped (or killed), started again on the same port and append-only file.
    at(REDIS_AT)
    chaos.redis_signal = "SIGKILL" if redis_crash else "SIGTERM"
    if redis_crash and stack.redis.process is not None:
        stack.redis.process.kill()
        stack.redis.process.wait()
    stack.redis.stop()
    chaos.redis_stopped_at = now()
    tqdm.write(f"[{now():6.1f} s] Redis stopped ({chaos.redis_signal})")
    time.sleep(max(0.0, chaos.redis_stopped_at + redis_down - now()))
    stack.redis.start()
    chaos.redis_back_at = now()
    tqdm.write(f"[{now():6.1f} s] Redis started again on the same port and append-only file")


def _busy_worker(conn: redis.Redis, pool: set[int]) -> tuple[int | None, str | None]:
    """A pool worker's pid, preferring one running an inbound job, and that job's id."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            for worker in Worker.all(connection=conn):
                job_id = worker.get_current_job_id()
                if worker.pid in pool and job_id and job_id.startswith("inbound-"):
                    return worker.pid, job_id
        except redis.RedisError:
            pass
        time.sleep(0.05)
    return (min(pool), None) if pool else (None, None)


# --------------------------------------------------------------------------- the count


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


@dataclass
class Count:
    """What the fake Twilio and the database say about the run's messages."""

    figures: dict[str, Any]
    #: Seconds from a message's first post to its first reply, by MessageSid.
    latency: dict[str, float]
    #: time.time() of the last first reply.
    last_answer: float | None


def count(
    messages: list[Message],
    replies: list[Reply],
    rows: dict[str, tuple[int, bool]],
    planned: dict[int, list[str]],
) -> Count:
    """Lost, duplicated, misdirected and out-of-order answers, from the fake's and the DB's view.

    ``planned``: the texts of each message's kept answer. A reply that is no part of it came
    from another Rasa turn for the same message: the message was answered twice.
    """
    by_id = {rows[m.sid][0]: m for m in messages if m.sid in rows}
    addresses = {m.address for m in messages}
    # A reply of ours names one of our messages; one naming none, to one of our senders, is ours
    # too (and a defect: every gateway reply carries its key).
    ours = [r for r in replies if r.inbound_id in by_id or (r.key is None and r.to in addresses)]
    sends = Counter(r.key for r in ours if r.key is not None)
    first: dict[int, Reply] = {}
    for reply in ours:
        if reply.inbound_id is not None:
            first.setdefault(reply.inbound_id, reply)
    answered = {by_id[i].sid for i in first}
    lost = [m for m in messages if m.sid not in answered]
    # A long text goes out in parts, the last cut with an ellipsis: each is a piece of its reply.
    twice_answered = {
        r.inbound_id
        for r in ours
        if r.inbound_id is not None
        and r.index is not None
        and r.inbound_id in planned
        and not (
            r.index < len(planned[r.inbound_id])
            and r.body.removesuffix("…").strip() in planned[r.inbound_id][r.index]
        )
    }

    # Order: the gateway answers each sender's messages in the order it stored them.
    by_sender: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for inbound_id, reply in first.items():
        by_sender[by_id[inbound_id].sender].append((inbound_id, reply.position))
    out_of_order = senders_out_of_order = 0
    for answers in by_sender.values():
        answers.sort()
        late = sum(1 for i, (_, pos) in enumerate(answers) if any(p > pos for _, p in answers[:i]))
        out_of_order += late
        senders_out_of_order += late > 0
    # How often Twilio-style retries made a sender's messages reach the webhook out of their
    # own numbering (then the stored order, not the numbering, is the one answered).
    stored_out_of_sequence = 0
    for sender in {m.sender for m in messages}:
        ids = [rows[m.sid][0] for m in messages if m.sender == sender and m.sid in rows]
        in_seq = [
            rows[m.sid][0]
            for m in sorted(messages, key=lambda m: m.seq)
            if m.sender == sender and m.sid in rows
        ]
        stored_out_of_sequence += in_seq != sorted(ids)

    latency = {
        m.sid: first[rows[m.sid][0]].received_at - m.posted_at
        for m in messages
        if m.sid in answered
    }
    values = list(latency.values())
    figures = {
        "messages": len(messages),
        "accepted": sum(1 for m in messages if m.accepted_at is not None),
        "stored": len(rows),
        "answered_in_db": sum(1 for _, done in rows.values() if done),
        "answered_at_fake": len(answered),
        "lost": len(lost),
        "lost_never_stored": sum(1 for m in lost if m.sid not in rows),
        "lost_sids": [m.sid for m in lost],
        "replies": len(ours),
        "duplicates": sum(n - 1 for n in sends.values() if n > 1),
        "duplicate_keys": sorted(k for k, n in sends.items() if n > 1),
        "answered_twice": len(twice_answered),
        "answered_twice_ids": sorted(twice_answered),
        "without_kept_answer": sum(1 for i in first if i not in planned),
        "replies_without_key": sum(1 for r in ours if r.key is None),
        "misdirected": sum(
            1 for r in ours if r.inbound_id in by_id and r.to != by_id[r.inbound_id].address
        ),
        "out_of_order": out_of_order,
        "senders_out_of_order": senders_out_of_order,
        "senders_stored_out_of_sequence": stored_out_of_sequence,
        "latency_p50": median(values),
        "latency_p95": pct(values, 95),
        "latency_max": max(values, default=None),
    }
    last = max((r.received_at for r in first.values()), default=None)
    return Count(figures, latency, last)


# --------------------------------------------------------------------------- the run


def wait_answered(
    database_url: str,
    fake: str,
    messages: list[Message],
    bar: tqdm,
    until: float,
    posted: threading.Event,
) -> None:
    """Wait until every message is posted and every stored one answered (or ``until``)."""
    sids = {m.sid for m in messages}
    while time.monotonic() < until:
        try:
            ids = {i for i, _ in stored(database_url, sids).values()}
            answered = {r.inbound_id for r in fake_replies(fake)} & ids
        except (requests.RequestException, OSError) as exc:
            tqdm.write(f"  (progress unavailable: {type(exc).__name__})")
            time.sleep(2)
            continue
        bar.n = len(answered)
        bar.refresh()
        if posted.is_set() and ids and len(answered) == len(ids):
            return
        time.sleep(1)


def wait_settled(conn: redis.Redis, fake: str, quiet: float, until: float) -> bool:
    """Wait until no inbound job is pending and the fake Twilio got nothing for ``quiet`` s."""
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < until:
        try:
            pending = inbound_jobs_pending(conn)
            sent = len(requests.get(f"{fake}/sent", timeout=30).json()["messages"])
        except (redis.RedisError, requests.RequestException):
            time.sleep(1)
            continue
        if sent != last_count:
            last_count, last_change = sent, time.monotonic()
        if pending == 0 and time.monotonic() - last_change >= quiet:
            return True
        time.sleep(1)
    return False


def warm_up(cfg: settings_mod.Settings, web: str, fake: str, count: int = 4) -> None:
    """A few messages through the whole path before the run: the stack answers, warmed up."""
    mobiles = [f"+917999{i:06d}" for i in range(count)]
    for i, mobile in enumerate(mobiles):
        msg = Message(
            i, -1, 1, "whatsapp", mobile, MESSAGES[i], "SMwarm" + secrets.token_hex(14), False
        )
        form, sig = signed_form(cfg, msg)
        response = requests.post(
            f"{web}/twilio/messages", data=form, headers={"X-Twilio-Signature": sig}, timeout=30
        )
        response.raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        got = {r.to for r in fake_replies(fake)}
        if all(f"whatsapp:{m}" in got for m in mobiles):
            return
        time.sleep(0.5)
    raise RuntimeError("the stack did not answer the warm-up messages within 300 s")


def guarded(chaos: Chaos, target: Callable[..., None]) -> Callable[..., None]:
    """``target``, with an exception recorded in ``chaos.errors`` instead of lost in a thread."""

    def run(*args: Any) -> None:
        try:
            target(*args)
        except Exception as exc:  # the run goes on, and the report says what failed
            chaos.errors.append(f"{type(exc).__name__}: {exc}")
            tqdm.write(f"chaos failed: {type(exc).__name__}: {exc}")

    return run


def replay_failed(env: dict[str, str]) -> str:
    """Run ``bijli replay-failed``; its last line of output."""
    result = subprocess.run(
        bijli("replay-failed"),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown, for bench/RESULTS.md."""
    f, s, c, p = report["figures"], report["settings"], report["chaos"], report["posting"]
    letters = report["dead_letters"]
    rows = [
        ("messages lost (posted or stored, never answered)", f["lost"], "0"),
        ("duplicates (a reply sent twice; replies with no key)",
         f"{f['duplicates']}; {f['replies_without_key']}", "0"),
        ("messages answered from two Rasa turns", f["answered_twice"], "0"),
        ("replies to the wrong number", f["misdirected"], "0"),
        ("answered out of order (senders affected)",
         f"{f['out_of_order']} ({f['senders_out_of_order']})", "0"),
        ("dead letters (replayed; failed jobs without a row)",
         f"{letters['rows']} ({letters['replayed']}; {letters['failed_jobs']})", ""),
        ("time to drain: last message accepted → all answered", seconds(report["drain"]), ""),
        ("all answered, from the first post", seconds(report["all_answered_after"]), ""),
        ("webhook → first reply, median (p95, max)",
         f"{seconds(f['latency_p50'])} ({seconds(f['latency_p95'])}, "
         f"{seconds(f['latency_max'])})", ""),
        ("  median, posted before the first failure", seconds(report["latency_calm_p50"]), ""),
        ("  median, posted after it", seconds(report["latency_chaos_p50"]), ""),
    ]  # fmt: skip
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"{s['messages']} messages from {s['senders']} senders ({s['registered']} registered "
        f"consumers) at {s['rate']:g}/s, {s['workers']} pool workers, {report['database']}, "
        f"durable embedded Redis; {report['machine']}.",
        "",
        "| figure | result | target |",
        "|---|---:|---:|",
        *(f"| {name} | {value} | {target} |" for name, value, target in rows),
        "",
        "What was done (seconds from the first post):",
        "",
        f"- action server SIGKILLed at {c['actions_killed_at']}, answering again at "
        f"{c['actions_back_at']};",
        f"- pool worker {c['worker_killed_pid']} SIGKILLed at {c['worker_killed_at']} while "
        f"running `{c['worker_killed_job']}`, respawned at {c['worker_respawned_at']};",
        f"- Redis stopped ({c['redis_signal']}) at {c['redis_stopped_at']}, started again on "
        f"the same port and append-only file at {c['redis_back_at']}.",
    ]
    if c["errors"]:
        lines.append(f"- **failures of the bench itself:** {'; '.join(c['errors'])}")
    w, web = report["worker_log"], report["web_log"]
    lines += [
        "",
        "How the stack recovered:",
        "",
        f"- webhook: {p['attempts']} posts for {f['messages']} messages ({p['retried']} "
        f"retried as Twilio does, {p['redelivered']} delivered twice on purpose), answers "
        f"other than 200: {p['not_200'] or 'none'}; HTTP round trip p50 "
        f"{p['rtt_p50_ms']:.0f} ms, p99 {p['rtt_p99_ms']:.0f} ms; duplicates recognised "
        f"{web['inbound_duplicate']}, enqueues left to the sweep "
        f"{web['inbound_enqueue_deferred']}, senders' earlier messages enqueued with their "
        f"next {web['inbound_earlier_enqueued']} time(s);",
        f"- worker: {w['inbound_job_retry']} job retries, {w['worker_died']} dead worker(s) "
        f"reported, "
        f"{w['inbox_sweep_enqueued']} messages enqueued again by the sweep, "
        f"{w['twilio_send_found_in_list'] + w['twilio_send_confirmed_by_callback']} sends "
        "found already accepted, dead letters written "
        f"{w['inbound_dead_letter'] + w['inbound_dead_letter_written_late']};",
        f"- Rasa heard {report['rasa_turns']} user messages for {f['stored']} stored "
        "(a turn that failed is heard again when its job is retried);",
        f"- stored: {f['stored']}, answered in the database: {f['answered_in_db']}, answered "
        f"at the fake Twilio: {f['answered_at_fake']} ({f['without_kept_answer']} without a kept "
        f"answer to compare with); settled afterwards: {report['settled']}.",
    ]
    if report["replay_failed"]:
        lines.append(f"- `bijli replay-failed`: {report['replay_failed']}")
    if f["lost_sids"]:
        lines.append(f"- lost: {', '.join(f['lost_sids'][:20])}")
    if f["answered_twice_ids"]:
        lines.append(f"- answered twice: inbound {f['answered_twice_ids'][:20]}")
    if f["duplicate_keys"]:
        lines.append(f"- sent twice: {', '.join(f['duplicate_keys'][:20])}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--registered", type=int, help="registered senders (default: half)")
    parser.add_argument("--rate", type=float, default=12.0, help="messages posted per second")
    parser.add_argument("--workers", type=int, default=settings_mod.DEFAULT_WORKERS)
    parser.add_argument("--redeliver", type=float, default=0.02, help="share delivered twice")
    parser.add_argument("--actions-down", type=float, default=30.0, help="seconds")
    parser.add_argument("--redis-down", type=float, default=5.0, help="seconds")
    parser.add_argument("--redis-crash", action="store_true", help="SIGKILL Redis, not SIGTERM")
    parser.add_argument("--deadline", type=float, default=1200.0, help="seconds to drain")
    parser.add_argument("--settle", type=float, default=15.0, help="quiet seconds at the end")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--workdir", type=Path, help="for data and logs (default: a new one)")
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--write", type=Path, help="write the report as Markdown to this file")
    args = parser.parse_args(argv)
    if not model.model_path().exists():
        sys.exit(f"no trained model at {model.model_path()}: run `bijli train` first")
    rng = random.Random(args.seed)
    registered = min(
        args.senders, args.senders // 2 if args.registered is None else args.registered
    )
    load_before = os.getloadavg()[0]
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="bijli-chaos-"))
    tmp.mkdir(parents=True, exist_ok=True)
    logs = tmp / "logs"
    print(f"logs and data in {tmp}", flush=True)
    with ExitStack() as exits:
        pg = args.database_url and args.database_url.startswith("postgresql")
        if pg:
            schema = exits.enter_context(PrivateSchema(args.database_url, PG_SCHEMA_PREFIX))
            database_url = schema.url
        else:
            database_url = f"sqlite:///{tmp / 'chaos.sqlite3'}"
        migrations.upgrade(database_url)
        # Durable, as `bijli run` starts it: an append-only file, the same port after a restart.
        redis_server = exits.enter_context(EmbeddedRedis(port=free_port(), workdir=tmp / "redis"))
        ports, env = stack_env(tmp, database_url, redis_server.url)
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            env[key] = getattr(settings_mod, f"DEV_{key.removeprefix('TWILIO_')}")
        env["BIJLI_WORKERS"] = str(args.workers)
        cfg = settings_mod.load(env)
        if registered:
            from bot.dev.launcher import load_demo_data

            load_demo_data(cfg, max(500, registered * 4))
        messages = plan(
            args.messages, senders(database_url, args.senders, registered), args.redeliver, rng
        )
        stack = Stack(exits, env, logs, redis_server, ports["actions"], args.workers)
        fake, web = env["TWILIO_API_BASE_URL"], env["PUBLIC_BASE_URL"]
        print("starting the stack …", flush=True)
        stack.start(
            "fake",
            bijli("fake-twilio", "--port", str(ports["fake"])),
            ready_url=f"{fake}/_fake/health",
        )
        stack.start_actions()
        loading = time.monotonic()
        stack.start("rasa", bijli("rasa-server"), timeout=600, ready_url=f"{env['RASA_URL']}/")
        print(f"  Rasa loaded in {time.monotonic() - loading:.0f} s", flush=True)
        stack.start("worker", bijli("worker"), ready_text="Listening on")
        stack.start("cron", bijli("cron"), ready_text="starting")
        gunicorn = str(Path(bijli()[0]).with_name("gunicorn"))
        # As the Procfile runs it.
        stack.start(
            "web",
            [gunicorn, "--bind", f"127.0.0.1:{ports['web']}", "--workers", "2",
             "--access-logfile", "-", "bot:create_app()"],
            ready_url=f"{web}/healthz",
        )  # fmt: skip
        conn = redis_client(redis_server.url)
        warm_up(cfg, web, fake)

        send_seconds = args.messages / args.rate
        print(
            f"posting {args.messages} messages from {args.senders} senders ({registered} "
            f"registered) at {args.rate:g}/s for {send_seconds:.0f} s; the action server down "
            f"{args.actions_down:g} s, a worker SIGKILLed, Redis down {args.redis_down:g} s",
            flush=True,
        )
        chaos, posting, posted = Chaos(), Posting(), threading.Event()
        sent_bar = tqdm(total=len(messages), desc="posted  ", unit="msg", position=0)
        answered_bar = tqdm(total=len(messages), desc="answered", unit="msg", position=1)

        def post() -> None:
            asyncio.run(post_all(cfg, web, messages, args.rate, posting, sent_bar, rng))
            posted.set()

        t0, wall0 = time.monotonic(), time.time()
        chaos_args = (stack, conn, chaos, t0, send_seconds, args.actions_down, args.redis_down,
                      args.redis_crash)  # fmt: skip
        chaos_thread = threading.Thread(target=guarded(chaos, run_chaos), args=chaos_args)
        poster = threading.Thread(target=post, name="poster")
        chaos_thread.start()
        poster.start()
        deadline = t0 + send_seconds + args.deadline
        wait_answered(database_url, fake, messages, answered_bar, deadline, posted)
        poster.join()
        chaos_thread.join()
        sids = {m.sid for m in messages}
        letters = dead_letters(
            database_url, conn, {i for i, _ in stored(database_url, sids).values()}
        )
        replayed = ""
        if letters["rows"] > letters["replayed"] or letters["failed_jobs"]:
            replayed = replay_failed(env)
            tqdm.write(f"dead letters remained: `bijli replay-failed`: {replayed}")
            wait_answered(
                database_url, fake, messages, answered_bar, time.monotonic() + args.deadline, posted
            )
        settled = wait_settled(conn, fake, args.settle, time.monotonic() + 300)
        sent_bar.close()
        answered_bar.close()

        rows = stored(database_url, sids)
        ids = {i for i, _ in rows.values()}
        counted = count(messages, fake_replies(fake), rows, planned_replies(conn, ids))
        letters = dead_letters(database_url, conn, ids)
        turns = rasa_turns(conn, messages)
        worker_log = log_events(logs / "worker.log", WORKER_EVENTS)
        worker_log["inbox_sweep_enqueued"] = sweep_enqueued(logs / "worker.log")
        web_log = log_events(logs / "web.log", WEB_EVENTS)
        load_after = os.getloadavg()[0]
        conn.close()

    figures = counted.figures
    accepted = [m.accepted_at for m in messages if m.accepted_at is not None]
    done = counted.last_answer if figures["lost"] == 0 else None
    first_failure = wall0 + (chaos.actions_killed_at or send_seconds)
    rtts = [m.rtt for m in messages if m.rtt is not None]
    report: dict[str, Any] = {
        "command": "python bench/chaos_bench.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{os.cpu_count()} cores shared with other work, Python "
        f"{platform.python_version()}, load average {load_before:.1f} at the start and "
        f"{load_after:.1f} at the end",
        "database": "PostgreSQL" if pg else "SQLite",
        "settings": {
            "messages": args.messages,
            "senders": args.senders,
            "registered": registered,
            "rate": args.rate,
            "workers": args.workers,
            "actions_down": args.actions_down,
            "redis_down": args.redis_down,
            "redis_crash": args.redis_crash,
            "redeliver": args.redeliver,
            "seed": args.seed,
        },
        "figures": figures,
        "drain": done - max(accepted) if done and accepted else None,
        "all_answered_after": done - wall0 if done else None,
        "latency_calm_p50": median(
            [
                v
                for m in messages
                if m.posted_at < first_failure and (v := counted.latency.get(m.sid)) is not None
            ]
        ),
        "latency_chaos_p50": median(
            [
                v
                for m in messages
                if m.posted_at >= first_failure and (v := counted.latency.get(m.sid)) is not None
            ]
        ),
        "settled": settled,
        "dead_letters": letters,
        "replay_failed": replayed,
        "posting": {
            "attempts": posting.attempts,
            "retried": posting.retried,
            "redelivered": posting.redelivered,
            "not_200": {str(k): v for k, v in sorted(posting.not_200.items())},
            "rtt_p50_ms": (median(rtts) or 0) * 1000,
            "rtt_p99_ms": (pct(rtts, 99) or 0) * 1000,
        },
        "rasa_turns": turns,
        "worker_log": worker_log,
        "web_log": web_log,
        "chaos": asdict(chaos),
        "logs": str(logs),
    }
    text = markdown(report)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    ok = not (
        figures["lost"] or figures["duplicates"] or figures["answered_twice"]
        or figures["replies_without_key"] or figures["misdirected"] or chaos.errors
    )  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
