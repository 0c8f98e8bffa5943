"""Exactly one message per consumer per campaign, with real worker processes while things fail.

A real ``bijli worker`` pool (two RQ workers, as the Procfile runs it) serves a Redis of its own,
durable as ``bijli run`` starts it (append-only file, fixed port), and sends to the fake Twilio.
Each test runs a campaign of a couple of hundred consumers while one thing goes wrong:

- a pool worker is SIGKILLed while it runs a batch (the pool respawns it);
- the fake Twilio answers 30% of requests with 500 or 429;
- Redis is stopped mid-campaign and started again on its append-only file;
- the fake Twilio accepts messages and then drops the connection without answering.

Each then counts what the fake Twilio received: every selected consumer exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import redis
from rq import Worker

from bot.connections import redis_client
from bot.dev.embedded_redis import EmbeddedRedis, free_port
from notifier import campaigns
from notifier.campaigns import Filters
from tests.gateway_stack import wait_for
from tests.notifier.conftest import add_consumers
from tests.processes import bijli, running

pytestmark = pytest.mark.slow

#: Consumers per test, and recipients per batch job (several jobs, so two workers share them).
CONSUMERS = 200
BATCH = 25


class Stack:
    """The durable Redis and the worker pool the tests share."""

    def __init__(self, tmp: Path, database_url: str, fake_url: str) -> None:
        self.redis = EmbeddedRedis(port=free_port(), workdir=tmp / "redis")
        self.env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url,
            "TWILIO_API_BASE_URL": fake_url,
            # Nothing listens here: the fake's status callbacks fail, as when the web is down;
            # an unconfirmed send is then found in Twilio's list of messages.
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",
            "BIJLI_VAR_DIR": str(tmp / "var"),
            "BIJLI_QUIET_HOURS": "off",
            "BIJLI_WORKERS": "2",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        # The development account, which the fake Twilio serves (empty means unset).
        self.env.update(TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="", TWILIO_SMS_FROM="")
        self.logs = tmp / "logs"
        self.exits = ExitStack()
        self.worker: Any = None

    def __enter__(self) -> Stack:
        self.redis.start()
        self.exits.callback(self.redis.stop)
        self.worker = self.exits.enter_context(
            running(
                "worker",
                bijli("worker"),
                env=self.env,
                log_dir=self.logs,
                ready_text="Listening on",
                timeout=120,
            )
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.exits.close()

    def conn(self) -> redis.Redis:
        return redis_client(self.redis.url)

    def pool_workers(self) -> set[int]:
        """Pids of the pool's live workers."""
        live = set()
        for child in psutil.Process(self.worker.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    live.add(child.pid)
            except psutil.NoSuchProcess:
                continue
        return live


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, fake_twilio_server: Any
) -> Iterator[Stack]:
    with Stack(
        tmp_path_factory.mktemp("campaign-stack"), database_url, fake_twilio_server.url
    ) as s:
        yield s


@pytest.fixture()
def conn(stack: Stack) -> Iterator[redis.Redis]:
    client = stack.conn()
    yield client
    client.close()


def _campaign(engine: Any, settings: Any, conn: redis.Redis, start: int) -> tuple[int, set[str]]:
    """A started new-account-number campaign to CONSUMERS consumers of their own."""
    area = f"Reliability {start}"
    accounts = add_consumers(engine, CONSUMERS, start=start, area=area)
    cid = campaigns.create(
        engine,
        "new-account-number",
        Filters(areas=(area,)),
        cfg=settings,
        valid_until=__import__("datetime").date(2027, 5, 31),
    )
    assert isinstance(cid, int)
    campaigns.start(engine, conn, cid, batch_size=BATCH)
    return cid, set(accounts)


def _finished(engine: Any, cid: int, timeout: float) -> campaigns.CampaignStatus:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (st := campaigns.status(engine, cid)).state == "done" and st,
        timeout=timeout,
        interval=0.5,
    )


def _assert_exactly_once(fake: Any, cid: int, accounts: set[str]) -> None:
    """Every account got one message, under its own key, and none got two."""
    time.sleep(1.0)  # anything still in flight lands
    keys: Counter[str] = Counter()
    for message in fake.sent():
        query = parse_qs(urlsplit(message["status_callback"] or "").query)
        key = (query.get("key") or [""])[0]
        if key.startswith(f"campaign:{cid}:"):
            keys[key.rsplit(":", 1)[1]] += 1
    missing = accounts - set(keys)
    doubled = {a: n for a, n in keys.items() if n > 1}
    assert not missing, f"{len(missing)} consumers got nothing"
    assert not doubled, f"{len(doubled)} consumers got more than one message: {doubled}"
    assert set(keys) == accounts


def test_a_worker_killed_mid_campaign(stack, conn, engine, settings, fake):  # type: ignore[no-untyped-def]
    # Slow replies keep a batch busy long enough to be caught in the middle of it.
    fake.configure(callback_delay=0.02)
    cid, accounts = _campaign(engine, settings, conn, start=10_000)
    pool = stack.pool_workers()
    victim = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        for worker in Worker.all(connection=conn):
            current = worker.get_current_job_id()
            if worker.pid in pool and current and current.startswith(f"campaign-{cid}-"):
                victim = worker.pid
                break
        else:
            time.sleep(0.02)
    assert victim is not None, "no worker was seen running a campaign batch"
    sent_before = len(fake.sent())
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(stack.pool_workers()) == 2 and victim not in stack.pool_workers(), 30)
    st = _finished(engine, cid, timeout=150)
    assert sent_before < CONSUMERS, "the worker was killed after the campaign had finished"
    assert (st.sent, st.queued, st.failed) == (CONSUMERS, 0, 0)
    _assert_exactly_once(fake, cid, accounts)


def test_twilio_failing_30_percent_with_500_and_429(stack, conn, engine, settings, fake):  # type: ignore[no-untyped-def]
    fake.configure(error_rate_429=0.15, error_rate_500=0.15)
    cid, accounts = _campaign(engine, settings, conn, start=20_000)
    st = _finished(engine, cid, timeout=120)
    assert fake.state.errors_injected > CONSUMERS * 0.2  # the failures did happen
    assert (st.sent, st.queued, st.failed) == (CONSUMERS, 0, 0)
    _assert_exactly_once(fake, cid, accounts)


def test_redis_restarted_mid_campaign(stack, conn, engine, settings, fake):  # type: ignore[no-untyped-def]
    cid, accounts = _campaign(engine, settings, conn, start=30_000)
    wait_for(lambda: 10 < len(fake.sent()), timeout=30, interval=0.01)
    stack.redis.stop()
    stopped_at = len(fake.sent())
    time.sleep(2.0)
    stack.redis.start()
    assert stopped_at < CONSUMERS, "Redis was stopped after the campaign had finished"
    st = _finished(engine, cid, timeout=150)
    assert (st.sent, st.queued, st.failed) == (CONSUMERS, 0, 0)
    _assert_exactly_once(fake, cid, accounts)


def test_twilio_accepting_then_dropping_the_connection(stack, conn, engine, settings, fake):  # type: ignore[no-untyped-def]
    fake.configure(drop_after_accept=30)
    cid, accounts = _campaign(engine, settings, conn, start=40_000)
    st = _finished(engine, cid, timeout=120)
    assert fake.state.drop_after_accept == 0  # all 30 drops happened
    assert (st.sent, st.queued, st.failed) == (CONSUMERS, 0, 0)
    _assert_exactly_once(fake, cid, accounts)
