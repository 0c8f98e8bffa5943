"""Messages per second per sender: a token bucket in Redis, shared by every worker and process.

Twilio queues what a sender is given faster than its throughput (and refuses with 429 or lets
messages go stale once its queue is long), so every send takes a token first: one bucket per
``From`` (the WhatsApp sender and the SMS number each have their own), refilled at the sender's
MPS and holding at most :data:`BURST_SECONDS` of them. The bucket is one Redis hash updated by
one Lua script, with Redis's own clock, so any number of processes on any number of machines
share it exactly.

Replies to people come before campaign traffic. There are two lanes:

- ``reply``: a token if there is one; otherwise the request registers as waiting (a sorted set
  of waiters, each with an expiry, so a waiter whose process died stops counting) and is told
  how long until the next token.
- ``bulk`` (campaigns): a token only if one is left over after every waiting reply has had one,
  i.e. when ``tokens >= 1 + waiting replies``. While replies wait, campaign sends leave the
  tokens to them; a reply therefore waits at most about one token's time (1/MPS) however many
  campaign workers run.

Nothing is dropped: :meth:`RateLimiter.acquire` sleeps for the computed time and asks again,
and only when the wait would exceed ``max_wait`` raises :class:`RateLimited`, whose
``retry_after`` tells the job when to come back.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

#: Lanes, in order of precedence.
REPLY = "reply"
BULK = "bulk"
LANES = (REPLY, BULK)
#: Seconds of tokens a full bucket holds: a sender idle for a while may send this much at once.
BURST_SECONDS = 1.0
#: Seconds a waiting reply keeps its claim on the next tokens beyond its computed wait (its
#: process re-asks well within this; one that died stops holding campaign traffic back).
WAITER_GRACE = 1.0
#: Redis keys of a sender's bucket and of its waiting replies (one hash tag: one cluster slot).
BUCKET_KEY = "bijli:ratelimit:{{{sender}}}:bucket"
WAITERS_KEY = "bijli:ratelimit:{{{sender}}}:waiting"

# KEYS[1] bucket hash (tokens, ts in µs), KEYS[2] waiting replies (member → expiry in µs).
# ARGV: rate (tokens/s), capacity, lane, waiter id, waiter grace (µs).
# Returns 0 when a token was taken, else the microseconds after which one may be.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local lane = ARGV[3]
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * rate / 1000000)
  ts = now
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local wait = 0
if lane == 'reply' then
  if tokens >= 1 then
    tokens = tokens - 1
    redis.call('ZREM', KEYS[2], ARGV[4])
  else
    wait = math.ceil((1 - tokens) * 1000000 / rate)
    redis.call('ZADD', KEYS[2], now + wait + tonumber(ARGV[5]), ARGV[4])
  end
else
  local need = 1 + redis.call('ZCARD', KEYS[2])
  if tokens >= need then
    tokens = tokens - 1
  else
    wait = math.ceil((need - tokens) * 1000000 / rate)
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
local idle = math.ceil((cap - tokens) * 1000 / rate) + 1000
redis.call('PEXPIRE', KEYS[1], idle)
redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[5]) / 1000) + idle)
return wait
"""


class RateLimited(RuntimeError):
    """No token within the longest wait a caller accepts; come back after ``retry_after`` s."""

    def __init__(self, sender: str, retry_after: float) -> None:
        super().__init__(f"sender {sender} is at its rate limit: retry in {retry_after:.2f} s")
        self.sender = sender
        self.retry_after = retry_after


@dataclass
class RateLimiter:
    """The token bucket of one sender at ``mps`` messages a second (0: no limit)."""

    conn: redis.Redis
    sender: str
    mps: float
    burst_seconds: float = BURST_SECONDS
    sleep: Callable[[float], None] = time.sleep

    @property
    def enabled(self) -> bool:
        return self.mps > 0

    @property
    def capacity(self) -> float:
        """Most tokens the bucket holds (at least one, or nothing could ever be sent)."""
        return max(1.0, self.mps * self.burst_seconds)

    def keys(self) -> list[str]:
        return [BUCKET_KEY.format(sender=self.sender), WAITERS_KEY.format(sender=self.sender)]

    def try_acquire(self, lane: str = REPLY, waiter: str | None = None) -> float:
        """Take a token: 0.0 when taken, else the seconds to wait before asking again.

        A ``reply`` that finds no token is registered as waiting under ``waiter`` (ask again
        with the same id) until it takes one or its wait runs out.
        """
        if lane not in LANES:
            raise ValueError(f"unknown lane {lane!r}: one of {', '.join(LANES)}")
        if not self.enabled:
            return 0.0
        script = _script(self.conn)
        micros = script(
            keys=self.keys(),
            args=[
                repr(float(self.mps)),
                repr(self.capacity),
                lane,
                waiter or secrets.token_hex(8),
                int(WAITER_GRACE * 1_000_000),
            ],
        )
        return int(str(micros)) / 1_000_000

    def acquire(self, lane: str = REPLY, max_wait: float = 20.0) -> float:
        """Wait for a token; the seconds waited. :class:`RateLimited` past ``max_wait``."""
        if not self.enabled:
            return 0.0
        waiter = secrets.token_hex(8)
        started = time.monotonic()
        while True:
            wait = self.try_acquire(lane, waiter)
            if wait <= 0:
                return time.monotonic() - started
            waited = time.monotonic() - started
            if waited + wait > max_wait:
                self._withdraw(waiter)
                raise RateLimited(self.sender, wait)
            self.sleep(wait)

    def _withdraw(self, waiter: str) -> None:
        """Stop holding tokens for a reply that gives up waiting."""
        self.conn.zrem(WAITERS_KEY.format(sender=self.sender), waiter)


_scripts: dict[int, Callable[..., object]] = {}


def _script(conn: redis.Redis) -> Callable[..., object]:
    """The registered acquire script for this client (EVALSHA, reloaded after a Redis restart)."""
    script = _scripts.get(id(conn))
    if script is None or getattr(script, "registered_client", None) is not conn:
        script = conn.register_script(_ACQUIRE)
        _scripts[id(conn)] = script
    return script


__all__ = ["BULK", "BURST_SECONDS", "LANES", "REPLY", "RateLimited", "RateLimiter"]
