"""The enumeration guard: how many accounts not registered to them a sender may look up a day.

Counted in Redis as a set of account numbers per sender per IST day, so asking twice about the
same account costs nothing extra and every Rasa/action-server replica shares the count. The key
expires a little after the IST day ends.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from bot.clock import IST

if TYPE_CHECKING:
    import redis

#: Prefix of the per-sender, per-day Redis sets.
KEY_PREFIX = "bijli:lookups"
#: Seconds a day's set outlives the end of that IST day (clock skew between replicas).
EXPIRY_GRACE_SECONDS = 3600

# Atomic check-and-add: an account already counted today is allowed again; a new one is added
# only while the set is below the limit. Returns 1 when allowed, 0 when refused.
_ALLOW = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1
"""


def day_key(sender: str, moment: dt.datetime) -> str:
    """The Redis key counting ``sender``'s lookups on the IST day of ``moment`` (aware)."""
    return f"{KEY_PREFIX}:{sender}:{moment.astimezone(IST):%Y%m%d}"


def day_end(moment: dt.datetime) -> dt.datetime:
    """Midnight IST after ``moment`` (aware)."""
    local = moment.astimezone(IST)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=IST)


class LookupGuard:
    """Allows at most ``limit`` distinct foreign accounts per sender per IST day."""

    def __init__(self, client: redis.Redis, limit: int) -> None:
        self.client = client
        self.limit = limit
        self._script = client.register_script(_ALLOW)

    def allow(self, sender: str, account: str, now: dt.datetime | None = None) -> bool:
        """Record a lookup of ``account`` by ``sender``; False when it is over the day's limit."""
        moment = now or dt.datetime.now(dt.timezone.utc)
        expires = int(day_end(moment).timestamp()) + EXPIRY_GRACE_SECONDS
        allowed = self._script(keys=[day_key(sender, moment)], args=[account, self.limit, expires])
        return bool(int(allowed))

    def used(self, sender: str, now: dt.datetime | None = None) -> int:
        """How many distinct foreign accounts ``sender`` has looked up today."""
        moment = now or dt.datetime.now(dt.timezone.utc)
        return int(self.client.scard(day_key(sender, moment)))


__all__ = ["LookupGuard", "day_end", "day_key"]
