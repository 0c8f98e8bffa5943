"""Rasa's Redis ticket lock, with each change to a lock made in one atomic step.

Rasa serialises the turns of one sender with a ticket lock (rasa.core.lock): a turn takes the
next ticket, waits until its ticket is the one served, and gives it back when done. Rasa's
``RedisLockStore`` keeps the lock as one JSON string and changes it by reading it, changing it in
Python and writing it back. Two Rasa processes that take a ticket for the same sender at the
same moment can both read "no lock", both write ticket 0 and both go ahead, so the lock does not
hold across processes; and a turn costs eight round trips to Redis (get, set; get; get, set,
get, delete), about 6 % of the Rasa server's busy time under ten concurrent senders (py-spy).

This store keeps the same key (``<key_prefix>:lock:<sender>``) and the same JSON (a list of
tickets, each itself a JSON string), and changes it with two Lua scripts that Redis runs
atomically: one takes a ticket and answers with the lock as it now is, the other gives a ticket
back (and drops the key when nobody holds one). A turn whose ticket is served at once costs two
round trips; one that has to wait polls with Rasa's own loop (``_acquire_lock``) as before.
Expired tickets are dropped by Rasa's rule (``time.time()`` on the Rasa server, passed to the
script), so a lock written by Rasa's own store is read the same way, and the other way round.
A Redis that restarted has lost the scripts: redis-py loads them again on ``NOSCRIPT``.

Configure it in endpoints.yml with ``type: bot.rasa_runtime.lock_store.AtomicRedisLockStore``
and the same keys as Rasa's ``type: redis``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

#: KEYS[1] the lock; ARGV now, lifetime, conversation id. Drops expired tickets, appends the next
#: one (numbered after the last, 0 on a new lock) and returns ``{number, lock JSON}``.
_TAKE = """
local raw = redis.call('GET', KEYS[1])
local now = tonumber(ARGV[1])
local lock = {conversation_id = ARGV[3], tickets = {}}
if raw then lock = cjson.decode(raw) end
local live, number = {}, 0
for _, text in ipairs(lock.tickets) do
  local ticket = cjson.decode(text)
  if ticket.expires >= now then
    live[#live + 1] = text
    number = ticket.number + 1
  end
end
live[#live + 1] = cjson.encode({number = number, expires = now + tonumber(ARGV[2])})
lock.tickets = live
raw = cjson.encode(lock)
redis.call('SET', KEYS[1], raw)
return {number, raw}
"""

#: KEYS[1] the lock; ARGV now, ticket number (or -2 for none). Drops expired tickets and that
#: ticket; deletes the lock when no ticket is left. Returns how many are left.
_GIVE_BACK = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local lock = cjson.decode(raw)
local now, number = tonumber(ARGV[1]), tonumber(ARGV[2])
local live = {}
for _, text in ipairs(lock.tickets) do
  local ticket = cjson.decode(text)
  if ticket.expires >= now and ticket.number ~= number then live[#live + 1] = text end
end
if #live == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
if #live < #lock.tickets then
  lock.tickets = live
  redis.call('SET', KEYS[1], cjson.encode(lock))
end
return #live
"""

_NO_TICKET = -2


class AtomicRedisLockStore(RedisLockStore):
    """``RedisLockStore`` whose lock changes are atomic Lua scripts (see the module's text)."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)
        self._take = self.red.register_script(_TAKE)
        self._give_back = self.red.register_script(_GIVE_BACK)

    def _key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    def take_ticket(self, conversation_id: str, lock_lifetime: float) -> tuple[int, TicketLock]:
        """A new ticket for the sender, and the lock as it is with that ticket in it."""
        try:
            number, raw = self._take(
                keys=[self._key(conversation_id)],
                args=[repr(time.time()), repr(float(lock_lifetime)), conversation_id],
            )
        except Exception as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e
        return int(number), TicketLock.from_dict(json.loads(raw))

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        return self.take_ticket(conversation_id, lock_lifetime)[0]

    def update_lock(self, conversation_id: str) -> None:
        """Drop expired tickets (Rasa's waiting loop calls this between polls)."""
        self._give_back(keys=[self._key(conversation_id)], args=[repr(time.time()), _NO_TICKET])

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back; the lock goes when nobody holds a ticket."""
        self._give_back(keys=[self._key(conversation_id)], args=[repr(time.time()), ticket_number])

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncGenerator[TicketLock, None]:
        """Rasa's ``LockStore.lock``, without re-reading a lock that is already this turn's."""
        ticket, lock = self.take_ticket(conversation_id, lock_lifetime)
        try:
            if not lock.is_locked(ticket):
                yield lock
            else:
                yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
        finally:
            self.cleanup(conversation_id, ticket)
