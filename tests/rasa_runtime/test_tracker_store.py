"""The append-only Redis tracker store, on the real Redis, against Rasa's own RedisTrackerStore."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from rasa.core.tracker_store import RedisTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.connections import REDIS_SOCKET_TIMEOUT
from bot.rasa_runtime.environment import rasa_env
from bot.rasa_runtime.tracker_store import EventLogTrackerStore
from bot.settings import load

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    with warnings.catch_warnings():
        # Rasa warns on every domain load that slot auto-fill is gone (it lists it as expected).
        warnings.filterwarnings("ignore", message="Slot auto-fill has been removed")
        return Domain.load(str(ROOT / "bot" / "intents"))


def _redis_kwargs(redis_url: str) -> dict[str, Any]:
    parsed = urlparse(redis_url)
    return {"host": parsed.hostname, "port": parsed.port, "db": int(parsed.path.lstrip("/") or 0)}


@pytest.fixture()
def store(domain: Domain, redis_url: str, redis_conn: Any) -> Iterator[EventLogTrackerStore]:
    """The store on a flushed database (redis_conn flushes it)."""
    yield EventLogTrackerStore(
        domain, key_prefix="test", record_exp=3600, **_redis_kwargs(redis_url)
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


class Clock:
    """Distinct, increasing event timestamps, as a live conversation has."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.25
        return self.now


def session_start(clock: Clock) -> list[Event]:
    return [
        ActionExecuted(ACTION_SESSION_START_NAME, timestamp=clock()),
        SessionStarted(timestamp=clock()),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock()),
    ]


def turn(clock: Clock, text: str, intent: str = "greet") -> list[Event]:
    return [
        UserUttered(text, {"name": intent, "confidence": 0.99}, timestamp=clock()),
        SlotSet("language", "hinglish", timestamp=clock()),
        ActionExecuted("utter_greet", timestamp=clock()),
        BotUttered("Namaste", {"utter_action": "utter_greet"}, timestamp=clock()),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock()),
    ]


def dicts(tracker: DialogueStateTracker | None) -> list[dict[str, Any]]:
    assert tracker is not None
    return [event.as_dict() for event in tracker.events]


def grow(store: TrackerStore, sender: str, events: list[Event]) -> DialogueStateTracker:
    """What Rasa does each turn: retrieve (or create), add the turn's events, save."""
    tracker = run(store.retrieve(sender)) or store.init_tracker(sender)
    for event in events:
        tracker.update(event)
    run(store.save(tracker))
    return tracker


def test_round_trip_keeps_every_event_and_slot(store: EventLogTrackerStore) -> None:
    clock = Clock()
    saved = grow(store, "whatsapp:+919000000101", session_start(clock) + turn(clock, "hi"))

    loaded = run(store.retrieve("whatsapp:+919000000101"))

    assert dicts(loaded) == dicts(saved)
    assert loaded.get_slot("language") == "hinglish"
    assert loaded.latest_message.text == "hi"


def test_a_turn_appends_only_its_new_events(store: EventLogTrackerStore, redis_conn: Any) -> None:
    clock = Clock()
    sender = "sms:+919000000102"
    grow(store, sender, session_start(clock) + turn(clock, "hi"))
    key = f"{store.key_prefix}{sender}:events"
    before = redis_conn.lrange(key, 0, -1)

    grow(store, sender, turn(clock, "bill kitna hai", "ask_bill_amount"))

    after = redis_conn.lrange(key, 0, -1)
    assert after[: len(before)] == before
    assert len(after) == len(before) + 5
    # Saving an unchanged tracker writes nothing.
    run(store.save(run(store.retrieve(sender))))
    assert redis_conn.llen(key) == len(after)


def test_retrieve_gives_the_latest_session_and_saving_it_keeps_the_earlier_ones(
    store: EventLogTrackerStore,
) -> None:
    clock = Clock()
    sender = "whatsapp:+919000000103"
    first = session_start(clock) + turn(clock, "hi")
    second = session_start(clock) + turn(clock, "bill?", "ask_bill_amount")
    grow(store, sender, first)
    grow(store, sender, second)

    latest = run(store.retrieve(sender))
    assert dicts(latest) == [e.as_dict() for e in second]

    third_turn = turn(clock, "thanks", "thanks")
    grow(store, sender, third_turn)
    full = run(store.retrieve_full_tracker(sender))
    assert dicts(full) == [e.as_dict() for e in first + second + third_turn]
    assert dicts(run(store.retrieve(sender))) == [e.as_dict() for e in second + third_turn]


def test_saving_the_full_tracker_appends_after_all_sessions(store: EventLogTrackerStore) -> None:
    clock = Clock()
    sender = "whatsapp:+919000000104"
    grow(store, sender, session_start(clock) + turn(clock, "hi"))
    grow(store, sender, session_start(clock))
    full = run(store.retrieve_full_tracker(sender))
    extra = turn(clock, "namaste")
    for event in extra:
        full.update(event)

    run(store.save(full))

    assert dicts(run(store.retrieve_full_tracker(sender))) == dicts(full)


def test_a_tracker_that_does_not_continue_the_stored_one_replaces_it(
    store: EventLogTrackerStore,
) -> None:
    clock = Clock()
    sender = "whatsapp:+919000000105"
    grow(store, sender, session_start(clock) + turn(clock, "hi") + turn(clock, "bye"))

    # What the REST API's "replace events" hands the store: other events from the start.
    other = DialogueStateTracker.from_events(sender, session_start(clock) + turn(clock, "hello"))
    run(store.save(other))
    assert dicts(run(store.retrieve_full_tracker(sender))) == dicts(other)

    # A tracker cut short within the stored session is written from that session's start.
    shorter = DialogueStateTracker.from_events(sender, list(other.events)[:4])
    run(store.save(shorter))
    assert dicts(run(store.retrieve_full_tracker(sender))) == dicts(shorter)
    grow(store, sender, turn(clock, "phir se"))
    assert len(run(store.retrieve(sender)).events) == 4 + 5


def test_saving_an_empty_tracker_erases_nothing(store: EventLogTrackerStore) -> None:
    clock = Clock()
    sender = "whatsapp:+919000000109"
    saved = grow(store, sender, session_start(clock) + turn(clock, "hi"))

    run(store.save(store.init_tracker(sender)))

    assert dicts(run(store.retrieve(sender))) == dicts(saved)


def test_conversations_expire_and_are_listed(store: EventLogTrackerStore, redis_conn: Any) -> None:
    clock = Clock()
    grow(store, "whatsapp:+919000000106", session_start(clock))
    grow(store, "sms:+919000000107", session_start(clock))

    assert sorted(run(store.keys())) == ["sms:+919000000107", "whatsapp:+919000000106"]
    assert run(store.exists("sms:+919000000107"))
    assert not run(store.exists("sms:+919999999999"))
    assert run(store.retrieve("sms:+919999999999")) is None
    for key in redis_conn.keys(f"{store.key_prefix}*"):
        assert 0 < redis_conn.ttl(key) <= 3600


def test_a_long_conversation_reads_back_exactly_as_rasas_own_redis_store_does(
    domain: Domain, redis_url: str, store: EventLogTrackerStore
) -> None:
    theirs = RedisTrackerStore(domain, key_prefix="theirs", **_redis_kwargs(redis_url))
    clock = Clock()
    sender = "whatsapp:+919000000108"
    script = [session_start(clock)] + [turn(clock, f"sandesh {i}") for i in range(12)]
    script.insert(6, session_start(clock))
    for events in script:
        grow(store, sender, events)
        grow(theirs, sender, events)
        assert dicts(run(store.retrieve(sender))) == dicts(run(theirs.retrieve(sender)))
    assert dicts(run(store.retrieve_full_tracker(sender))) == dicts(
        run(theirs.retrieve_full_tracker(sender))
    )


def test_rasa_builds_this_store_from_endpoints_yml(
    domain: Domain, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rasa falls back to an in-memory store, with only a warning, when the class will not
    # import; several Rasa processes would then each keep their own conversations.
    # rasa_env supplies every ${VARIABLE} endpoints.yml names (the action server's token too).
    for name, value in rasa_env(load({"REDIS_URL": redis_url})).items():
        monkeypatch.setenv(name, value)
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")

    built = TrackerStore.create(config, domain)

    inner = getattr(built, "_tracker_store", built)
    assert isinstance(inner, EventLogTrackerStore), type(inner)
    assert inner.record_exp == 2592000


def test_an_unresponsive_redis_fails_a_turn_in_seconds(domain: Domain):
    """Rasa's store made its client without timeouts: a Redis that never answers hung the turn."""
    with socket.socket() as silent:
        # Accepts connections (the kernel's backlog does) and never says a word.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host, port = silent.getsockname()
        store = EventLogTrackerStore(domain, host=host, port=port, key_prefix="test")
        outcome: dict[str, BaseException] = {}

        def turn() -> None:
            try:
                run(store.retrieve("sms:+919800000001"))
            except redis.RedisError as exc:
                outcome["error"] = exc

        started = time.monotonic()
        thread = threading.Thread(target=turn, daemon=True)
        thread.start()
        thread.join(REDIS_SOCKET_TIMEOUT + 10)
        assert not thread.is_alive(), "the turn still waits for Redis"
    assert isinstance(outcome.get("error"), redis.TimeoutError)
    assert time.monotonic() - started < REDIS_SOCKET_TIMEOUT + 5
