"""A Redis tracker store that appends each turn's new events instead of rewriting the conversation.

Rasa's own ``RedisTrackerStore`` keeps a conversation as one JSON string. Every save reads the
whole string back, parses it, merges it with the tracker in hand and writes all of it again, so
a turn costs time in proportion to the length of the conversation, twice over. Profiled under ten
concurrent senders, saving was 13 % of the Rasa server's busy time (bench/RASA_RESULTS.md).

This store keeps the same data in two Redis keys per conversation:

- ``<prefix><sender>:events``, a list with one JSON event per item, in order;
- ``<prefix><sender>:meta``, a hash: ``session`` (index of the latest ``action_session_start``),
  ``first``/``start``/``last`` (the timestamps of the first event, the session's first event and
  the last event) that tell a save which stored events the tracker in hand already holds.

A save appends only the events after those (``RPUSH``, in one ``MULTI``), as Rasa's SQL tracker
store does. A retrieve reads only the latest session, with one ``LRANGE``. A tracker whose events
do not line up with the stored ones (the REST API's "replace events") is written out whole, and
counts one more ``rewrites`` in the hash. The lock store (bot/rasa_runtime/lock_store.py)
serialises the turns of one sender, across processes too, so two saves never race.

Each process (each Sanic worker) also keeps the trackers it last saved or read, for the
``cache_size`` senders it saw last (endpoints.yml; 0 turns it off). A retrieve first asks Redis
for the hash and the list's length. While the stored conversation is the one the process
holds (same ``first``/``start``/``session``/``rewrites``, the list no shorter), it reads only the
events another process appended since, if any, instead of the whole session, and rebuilds the
tracker's state from its events exactly as Rasa does after reading them (``replay_events``).
Anything else (another session, a rewrite, a tracker changed and never saved) reads the
session from Redis as before. The events stay the same objects from turn to turn, which is
what lets bot.rasa_runtime.speedups extend the past states instead of rebuilding them.

Configure it in endpoints.yml with
``type: bot.rasa_runtime.tracker_store.EventLogTrackerStore`` and the same keys as Rasa's
``type: redis``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from rasa.core.tracker_store import RedisTrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.conversation import Dialogue
from rasa.shared.core.events import ActionExecuted, Event, deserialise_events
from rasa.shared.core.trackers import DialogueStateTracker

from bot import connections
from bot.logfmt import kv
from bot.phone import mask
from bot.rasa_runtime.speedups import dumps, remember_stored_json

log = logging.getLogger(__name__)

EVENTS_SUFFIX = ":events"
META_SUFFIX = ":meta"

#: How many senders' trackers each process keeps between turns (endpoints.yml ``cache_size``).
DEFAULT_CACHE_SIZE = 512

#: The hash fields that say which stored conversation a kept tracker is: a change in any of them
#: (a new session, a rewrite, a conversation deleted and begun again) means read it afresh.
_IDENTITY_FIELDS = ("first", "start", "session", "rewrites")


@dataclass(eq=False)
class _Kept:
    """A tracker this process saved or read, and what Redis held for it then."""

    tracker: DialogueStateTracker
    domain: Any
    #: The hash's identity fields and the list's length when the tracker matched them.
    identity: tuple[str | None, ...]
    stored: int
    #: The tracker's event count and last event then: anything added since and not saved
    #: (a failed turn) makes it unusable.
    count: int
    last: Event

    def unchanged(self) -> bool:
        events = self.tracker.events
        return len(events) == self.count and events[-1] is self.last


def _is_session_start(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_SESSION_START_NAME


class EventLogTrackerStore(RedisTrackerStore):
    """Redis tracker store with an append-only event list per conversation."""

    def __init__(self, *args: Any, cache_size: int = DEFAULT_CACHE_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = int(cache_size)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        # Rasa's store makes its client without timeouts, so an unresponsive Redis would hold a
        # turn (and the sender's lock) for ever. No connection exists yet: set them on the pool.
        self.red.connection_pool.connection_kwargs.update(
            socket_connect_timeout=connections.REDIS_CONNECT_TIMEOUT,
            socket_timeout=connections.REDIS_SOCKET_TIMEOUT,
            health_check_interval=connections.REDIS_HEALTH_CHECK_INTERVAL,
        )

    def _keys(self, sender_id: str) -> tuple[str, str]:
        base = self.key_prefix + sender_id
        return base + EVENTS_SUFFIX, base + META_SUFFIX

    async def save(self, tracker: DialogueStateTracker, timeout: float | None = None) -> None:
        """Append the tracker's events that Redis does not hold yet."""
        await self.stream_events(tracker)
        if not tracker.events:
            return  # nothing to add; as Rasa's store, an empty tracker erases nothing
        timeout = timeout or self.record_exp
        events_key, meta_key = self._keys(tracker.sender_id)
        with self.red.pipeline(transaction=False) as pipe:
            meta, stored = pipe.hgetall(meta_key).llen(events_key).execute()
        offset = self._offset(tracker, meta, stored)
        events = list(tracker.events)

        if offset is None:
            # Not a continuation of what is stored: the tracker replaces the conversation.
            offset = 0
            meta, stored = self._write(tracker.sender_id, 0, events, meta, timeout)
        else:
            known = stored - offset
            if known > len(events) or (
                known and not _same_time(events[known - 1].timestamp, meta.get("last"))
            ):
                # Events the store holds are gone from the tracker: rewrite its part of the list.
                meta, stored = self._write(tracker.sender_id, offset, events, meta, timeout)
            elif known < len(events):
                meta, stored = self._append(
                    tracker.sender_id, stored, events[known:], meta, timeout
                )
        self._keep(tracker, meta, stored, offset)

    @staticmethod
    def _offset(tracker: DialogueStateTracker, meta: dict[str, str], stored: int) -> int | None:
        """Index in the stored list of the tracker's first event (None: it matches neither)."""
        if not stored or not meta:
            return 0
        first = tracker.events[0].timestamp
        session = int(meta.get("session", 0))
        if _same_time(first, meta.get("start")):
            return session
        if _same_time(first, meta.get("first")):
            return 0
        return None

    def _append(
        self,
        sender_id: str,
        stored: int,
        new: Sequence[Event],
        meta: dict[str, str],
        timeout: float | None,
    ) -> tuple[dict[str, str], int]:
        """Append ``new``; return the hash and the list's length as they are now."""
        events_key, meta_key = self._keys(sender_id)
        fields: dict[str, Any] = {"last": repr(new[-1].timestamp)}
        if not stored:
            fields["first"] = fields["start"] = repr(new[0].timestamp)
            fields["session"] = 0
        starts = [i for i, event in enumerate(new) if _is_session_start(event)]
        if starts:
            fields["session"] = stored + starts[-1]
            fields["start"] = repr(new[starts[-1]].timestamp)
        with self.red.pipeline(transaction=True) as pipe:
            pipe.rpush(events_key, *_encoded(new))
            pipe.hset(meta_key, mapping=fields)
            self._expire(pipe, sender_id, timeout)
            length = pipe.execute()[0]
        return {**meta, **{k: str(v) for k, v in fields.items()}}, length

    def _write(
        self,
        sender_id: str,
        offset: int,
        events: Sequence[Event],
        meta: dict[str, str],
        timeout: float | None,
    ) -> tuple[dict[str, str], int]:
        """Replace the stored list from index ``offset`` on with ``events``; return the hash
        and the list's length as they are now."""
        events_key, meta_key = self._keys(sender_id)
        starts = [i for i, event in enumerate(events) if _is_session_start(event)]
        channel, _, number = sender_id.rpartition(":")
        log.info(
            kv(
                "tracker_rewrite",
                sender=f"{channel}:{mask(number)}",
                start=offset,
                events=len(events),
            )
        )
        fields: dict[str, Any] = {}
        with self.red.pipeline(transaction=True) as pipe:
            if offset:
                pipe.ltrim(events_key, 0, offset - 1)
            else:
                pipe.delete(events_key, meta_key)
            if events:
                pipe.rpush(events_key, *_encoded(events))
                # The tracker began at the stored session start (offset), or at the first event.
                fields = {
                    "session": offset + starts[-1] if starts else offset,
                    "start": repr(events[starts[-1] if starts else 0].timestamp),
                    "last": repr(events[-1].timestamp),
                }
                if not offset:
                    fields["first"] = repr(events[0].timestamp)
                pipe.hset(meta_key, mapping=fields)
                # Processes that keep this conversation's tracker read it afresh.
                rewrites_at = len(pipe.command_stack)
                pipe.hincrby(meta_key, "rewrites", 1)
            self._expire(pipe, sender_id, timeout)
            results = pipe.execute()
        if not events:
            return {}, 0
        fields["rewrites"] = results[rewrites_at]
        kept = meta if offset else {}
        return {**kept, **{k: str(v) for k, v in fields.items()}}, offset + len(events)

    def _expire(self, pipe: Any, sender_id: str, timeout: float | None) -> None:
        if timeout:
            for key in self._keys(sender_id):
                pipe.expire(key, int(timeout))

    def _keep(
        self, tracker: DialogueStateTracker, meta: dict[str, str], stored: int, offset: int
    ) -> None:
        """Keep ``tracker`` for its sender's next turn if it is the stored latest session."""
        sender_id = tracker.sender_id
        session = int(meta.get("session", 0)) if meta else -1
        if (
            not self.cache_size
            or not tracker.events
            or offset != session
            or len(tracker.events) != stored - session
        ):
            self._kept.pop(sender_id, None)
            return
        self._kept[sender_id] = _Kept(
            tracker,
            self.domain,
            tuple(meta.get(name) for name in _IDENTITY_FIELDS),
            stored,
            len(tracker.events),
            tracker.events[-1],
        )
        self._kept.move_to_end(sender_id)
        while len(self._kept) > self.cache_size:
            self._kept.popitem(last=False)

    def _kept_tracker(
        self, sender_id: str, meta: dict[str, str], stored: int
    ) -> DialogueStateTracker | None:
        """The kept tracker brought up to date with Redis, or None if it cannot be."""
        kept = self._kept.get(sender_id)
        if (
            kept is None
            or kept.domain is not self.domain
            or kept.identity != tuple(meta.get(name) for name in _IDENTITY_FIELDS)
            or stored < kept.stored
            or (stored == kept.stored and not _same_time(kept.last.timestamp, meta.get("last")))
            or not kept.unchanged()
        ):
            return None
        tracker = kept.tracker
        if stored > kept.stored:
            # Another process's turns: read only their events.
            items = self.red.lrange(self._keys(sender_id)[0], kept.stored, -1)
            if len(items) != stored - kept.stored:
                return None
            tracker.events.extend(_parse(items))
        # The state Rasa rebuilds from the events it reads (recreate_from_dialogue), not the
        # state the live turn left (they differ inside a form: the form's repeated runs are
        # not applied events).
        tracker._reset()
        tracker.replay_events()
        tracker.model_id = None
        tracker.assistant_id = None
        return tracker

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The latest conversation session."""
        if not self.cache_size:
            return self._load(sender_id, all_sessions=False)
        events_key, meta_key = self._keys(sender_id)
        with self.red.pipeline(transaction=False) as pipe:
            meta, stored = pipe.hgetall(meta_key).llen(events_key).execute()
        if not stored:
            self._kept.pop(sender_id, None)
            return None
        tracker = self._kept_tracker(sender_id, meta, stored)
        session = int(meta.get("session", 0))
        if tracker is None:
            items = self.red.lrange(events_key, session, -1)
            if not items:
                return None
            tracker = self._tracker_of(sender_id, items)
            if len(items) != stored - session:
                return tracker  # changed since the hash was read: not kept
        self._keep(tracker, meta, stored, session)
        return tracker

    async def retrieve_full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        """Every session of the conversation."""
        return self._load(sender_id, all_sessions=True)

    def _load(self, sender_id: str, all_sessions: bool) -> DialogueStateTracker | None:
        events_key, meta_key = self._keys(sender_id)
        start = 0 if all_sessions else int(self.red.hget(meta_key, "session") or 0)
        items = self.red.lrange(events_key, start, -1)
        if not items:
            log.debug("no tracker for conversation %s", sender_id)
            return None
        return self._tracker_of(sender_id, items)

    def _tracker_of(self, sender_id: str, items: list[str]) -> DialogueStateTracker:
        """A tracker rebuilt from stored events, as Rasa's own stores rebuild it."""
        tracker = self.init_tracker(sender_id)
        tracker.recreate_from_dialogue(Dialogue(sender_id, _parse(items)))
        return tracker

    async def exists(self, conversation_id: str) -> bool:
        return bool(self.red.exists(self._keys(conversation_id)[0]))

    async def keys(self) -> Iterable[str]:
        """The sender ids of all stored conversations."""
        pattern = self.key_prefix + "*" + EVENTS_SUFFIX
        cut = len(EVENTS_SUFFIX)
        start = len(self.key_prefix)
        return [key[start:-cut] for key in self.red.scan_iter(match=pattern, count=1000)]


def _encoded(events: Sequence[Event]) -> list[str]:
    """The events' JSON, each also kept on its event for the action calls (speedups)."""
    texts = []
    for event in events:
        text = dumps(event.as_dict())
        remember_stored_json(event, text)
        texts.append(text)
    return texts


def _parse(items: list[str]) -> list[Event]:
    """Stored events, read back (one parse of the joined items beats one parse per item), each
    keeping its JSON for the action calls (speedups)."""
    events = deserialise_events(orjson.loads("[" + ",".join(items) + "]"))
    if len(events) == len(items):  # else Rasa skipped an event it does not know
        for event, text in zip(events, items, strict=True):
            remember_stored_json(event, text)
    return events


def _same_time(timestamp: float, stored: str | None) -> bool:
    return stored is not None and repr(timestamp) == stored


__all__ = ["EventLogTrackerStore"]
