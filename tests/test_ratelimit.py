"""``bot.ratelimit``: one token bucket per sender in a real Redis, shared by processes.

Replies take tokens before campaign (bulk) sends; nothing is dropped, a caller waits the
computed time; and several processes together keep to the configured rate.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time

import pytest

from bot import ratelimit
from bot.connections import redis_client
from bot.ratelimit import BULK, REPLY, RateLimited, RateLimiter

SENDER = "whatsapp:+14155238886"


def test_off_means_no_limit_and_no_redis_calls(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 0)
    assert not limiter.enabled
    assert all(limiter.try_acquire(BULK) == 0.0 for _ in range(1000))
    assert redis_conn.keys("bijli:ratelimit:*") == []


def test_a_full_bucket_gives_one_seconds_worth_then_asks_to_wait(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 10)
    granted = [limiter.try_acquire(BULK) for _ in range(10)]
    assert granted == [0.0] * 10
    wait = limiter.try_acquire(BULK)
    assert 0.05 < wait <= 0.1 + 1e-6, "about one token's time (1/10 s) until the next"
    time.sleep(wait)
    assert limiter.try_acquire(BULK) == 0.0


def test_each_sender_has_its_own_bucket(redis_conn):
    whatsapp = RateLimiter(redis_conn, SENDER, 1)
    sms = RateLimiter(redis_conn, "+15005550006", 1)
    assert whatsapp.try_acquire() == 0.0
    assert whatsapp.try_acquire() > 0
    assert sms.try_acquire() == 0.0


def test_a_waiting_reply_holds_back_campaign_sends(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 20)
    while limiter.try_acquire(BULK) == 0.0:
        pass  # campaign traffic has emptied the bucket
    reply_wait = limiter.try_acquire(REPLY, waiter="reply-1")
    assert reply_wait > 0
    time.sleep(reply_wait)
    # A token is there now, but it is the waiting reply's: the campaign must leave it.
    assert limiter.try_acquire(BULK) > 0
    assert limiter.try_acquire(REPLY, waiter="reply-1") == 0.0
    # The reply took it and stopped waiting: campaign sends go on at the next token.
    time.sleep(0.06)
    assert limiter.try_acquire(BULK) == 0.0


def test_a_reply_whose_process_died_stops_holding_tokens(redis_conn, monkeypatch):
    monkeypatch.setattr(ratelimit, "WAITER_GRACE", 0.05)
    limiter = RateLimiter(redis_conn, SENDER, 20)
    while limiter.try_acquire(BULK) == 0.0:
        pass
    assert limiter.try_acquire(REPLY, waiter="gone") > 0  # and never asks again
    time.sleep(0.2)
    assert limiter.try_acquire(BULK) == 0.0


def test_acquire_waits_and_never_drops(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 20)
    started = time.monotonic()
    for _ in range(30):
        limiter.acquire(BULK)
    elapsed = time.monotonic() - started
    # 20 from the full bucket, then 10 more at 20 a second.
    assert 0.45 <= elapsed < 5  # the upper bound only catches a hang: this machine is shared


def test_a_wait_longer_than_allowed_raises_with_retry_after(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 1)
    limiter.acquire(REPLY)
    with pytest.raises(RateLimited) as raised:
        limiter.acquire(REPLY, max_wait=0.1)
    assert 0.5 < raised.value.retry_after <= 1.0
    # The reply that gave up no longer holds campaign sends back.
    assert redis_conn.zcard(ratelimit.WAITERS_KEY.format(sender=SENDER)) == 0


def test_unknown_lane_is_refused(redis_conn):
    with pytest.raises(ValueError):
        RateLimiter(redis_conn, SENDER, 5).try_acquire("urgent")


def test_the_script_is_loaded_again_after_redis_forgets_it(redis_conn):
    limiter = RateLimiter(redis_conn, SENDER, 100)
    assert limiter.try_acquire() == 0.0
    redis_conn.script_flush()
    assert limiter.try_acquire() == 0.0


# --------------------------------------------------------------------------- processes

RATE = 50.0
#: Seconds the processes send for; the bucket's burst is left out of the measured window.
DURATION = 3.0
WARMUP = 1.0


def _sender(url: str, lane: str, start: float, stop: float, gap: float, out) -> None:  # type: ignore[no-untyped-def]
    """Take tokens until ``stop`` (epoch seconds); report when each was granted and waits."""
    conn = redis_client(url)
    limiter = RateLimiter(conn, SENDER, RATE)
    while time.time() < start:
        time.sleep(0.001)
    granted, waits = [], []
    while time.time() < stop:
        asked = time.time()
        limiter.acquire(lane, max_wait=5)
        now = time.time()
        granted.append(now)
        waits.append(now - asked)
        if gap:
            time.sleep(gap)
    out.put((lane, granted, waits))


def test_processes_together_keep_the_rate_and_replies_go_first(redis_conn, redis_url):
    """Three campaign processes flat out and one process of replies share a 50 MPS sender."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 0.5
    stop = start + DURATION
    procs = [
        ctx.Process(target=_sender, args=(redis_url, BULK, start, stop, 0, out)) for _ in range(3)
    ]
    # A reply every 100 ms: the demand a busy conversation queue puts on the sender.
    procs.append(ctx.Process(target=_sender, args=(redis_url, REPLY, start, stop, 0.1, out)))
    for proc in procs:
        proc.start()
    results = [out.get(timeout=DURATION + 20) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0
    every = sorted(t for _, granted, _ in results for t in granted)
    window = [t for t in every if start + WARMUP <= t < stop]
    measured = len(window) / (DURATION - WARMUP)
    assert abs(measured - RATE) <= 0.05 * RATE, f"{measured:.1f}/s against {RATE}/s"
    reply_waits = [w for lane, _, waits in results if lane == REPLY for w in waits]
    bulk_waits = [w for lane, _, waits in results if lane == BULK for w in waits]
    assert len(reply_waits) >= 20
    # Each of three campaign processes gets a token about every 3/50 s; a reply only waits for
    # the next token (1/50 s) however busy the campaign is.
    assert statistics.median(reply_waits) < statistics.median(bulk_waits)
    assert statistics.median(reply_waits) <= 2 / RATE + 0.05
    # (Generous for a loaded machine: a starved reply would wait for every campaign process.)
    assert max(reply_waits) < 1.0
