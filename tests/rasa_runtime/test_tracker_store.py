"""The append-only Redis tracker store, on the real Redis, against Rasa's own RedisTrackerStore."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
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
    ActionExecutionRejected,
    ActiveLoop,
    BotUttered,
    DefinePrevUserUtteredFeaturization,
    EntitiesAdded,
    Event,
    FollowupAction,
    LoopInterrupted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.connections import REDIS_SOCKET_TIMEOUT
from bot.rasa_runtime.environment import rasa_env
from bot.rasa_runtime.speedups import dumps, stored_json
from bot.rasa_runtime.tracker_store import EventLogTrackerStore
from bot.settings import load
from tests.domain import project_domain

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return project_domain()


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


def every_kind_of_turn(clock: Clock) -> list[Event]:
    """A turn with every kind of event a served conversation has, filled in as Rasa fills them."""
    parse_data = {
        "intent": {"name": "ask_bill_amount", "confidence": 0.93},
        "entities": [{"entity": "account_number", "value": "1234567890", "start": 0, "end": 10}],
        "intent_ranking": [
            {"name": "ask_bill_amount", "confidence": 0.93},
            {"name": "greet", "confidence": 0.07},
        ],
        "text": "1234567890 बिल कितना है",
        "message_id": "SM0123",
        "metadata": {"vouch": {"mobile": "+919700001509"}},
    }
    return [
        UserUttered(
            "1234567890 बिल कितना है",
            parse_data["intent"],
            parse_data["entities"],
            parse_data,
            timestamp=clock(),
            input_channel="gateway",
            message_id="SM0123",
            metadata={"vouch": {"mobile": "+919700001509"}, "profile_name": None},
        ),
        DefinePrevUserUtteredFeaturization(False, timestamp=clock()),
        EntitiesAdded([{"entity": "area", "value": "Kidwai Nagar"}], timestamp=clock()),
        SlotSet("account_number", "1234567890", timestamp=clock()),
        SlotSet("pending_query", ["bill", 2, None], timestamp=clock()),
        ActionExecuted("account_form", "RulePolicy", 1.0, hide_rule_turn=True, timestamp=clock()),
        ActiveLoop("account_form", timestamp=clock()),
        ActionExecutionRejected("account_form", "RulePolicy", 1.0, timestamp=clock()),
        LoopInterrupted(True, timestamp=clock()),
        FollowupAction("action_listen", timestamp=clock()),
        BotUttered(
            "₹1,250.00 baki hai",
            {"buttons": None, "custom": {"x": 1}},
            {"utter_action": "utter_bill", "model_id": "m1"},
            timestamp=clock(),
        ),
        UserUtteranceReverted(timestamp=clock()),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock()),
    ]


def test_events_keep_the_json_written_and_read_for_the_action_calls(
    store: EventLogTrackerStore, fresh: EventLogTrackerStore
) -> None:
    """What speedups.send_stored_events_as_stored sends: each event saved or read back keeps the
    JSON its own ``as_dict`` encodes to, for every kind of event a conversation has."""
    clock = Clock()
    sender = "whatsapp:+919700001509"
    saved = grow(store, sender, session_start(clock) + every_kind_of_turn(clock))
    saved.update(ActionExecuted("utter_greet", timestamp=clock()))  # not saved yet

    *written, unsaved = saved.events
    assert [stored_json(e) for e in written] == [dumps(e.as_dict()) for e in written]
    assert stored_json(unsaved) is None
    read = run(fresh.retrieve(sender))
    assert read is not None and read is not saved
    assert len(read.events) == len(written)
    assert [stored_json(e) for e in read.events] == [dumps(e.as_dict()) for e in read.events]
    assert [e.as_dict() for e in read.events] == [e.as_dict() for e in written]


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
    assert inner.cache_size == 512


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


# Trackers kept between turns ------------------------------------------------------------------


@pytest.fixture()
def fresh(domain: Domain, redis_url: str, store: EventLogTrackerStore) -> EventLogTrackerStore:
    """The same store without kept trackers: every retrieve reads Redis, as Rasa's does."""
    return EventLogTrackerStore(
        domain, key_prefix="test", record_exp=3600, cache_size=0, **_redis_kwargs(redis_url)
    )


def state(tracker: DialogueStateTracker | None) -> dict[str, Any]:
    """Everything a tracker read from a store is: its events and the state they rebuild."""
    assert tracker is not None
    return {
        "events": dicts(tracker),
        "slots": tracker.current_slot_values(),
        "latest_message": tracker.latest_message.as_dict() if tracker.latest_message else None,
        "latest_action": tracker.latest_action,
        "latest_bot_utterance": tracker.latest_bot_utterance.as_dict()
        if tracker.latest_bot_utterance
        else None,
        "active_loop": tracker.active_loop,
        "followup_action": tracker.followup_action,
        "paused": tracker.is_paused(),
        "model_id": tracker.model_id,
        "assistant_id": tracker.assistant_id,
    }


def form_turn(clock: Clock, value: str) -> list[Event]:
    """A turn inside the account form: the form runs again (not an applied event)."""
    return [
        UserUttered(
            value, {"name": "inform_account_number", "confidence": 0.99}, timestamp=clock()
        ),
        SlotSet("account_number", value, timestamp=clock()),
        ActionExecuted("account_form", timestamp=clock()),
        SlotSet("requested_slot", "account_number", timestamp=clock()),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock()),
    ]


def form_start(clock: Clock) -> list[Event]:
    return [
        UserUttered("bill?", {"name": "ask_bill_amount", "confidence": 0.99}, timestamp=clock()),
        ActionExecuted("account_form", timestamp=clock()),
        ActiveLoop("account_form", timestamp=clock()),
        SlotSet("requested_slot", "account_number", timestamp=clock()),
        ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock()),
    ]


def test_the_next_turn_gets_the_same_tracker_in_the_state_a_fresh_read_gives(
    store: EventLogTrackerStore, fresh: EventLogTrackerStore
) -> None:
    clock = Clock()
    sender = "whatsapp:+919700001501"
    saved = grow(store, sender, session_start(clock) + turn(clock, "hi") + form_start(clock))
    saved.model_id = "a-model"
    for events in (form_turn(clock, "12"), form_turn(clock, "345"), turn(clock, "ok")):
        live = grow(store, sender, events)
        assert live is saved  # the same object, turn after turn
        # Inside the form the live tracker's latest message is the form's answer; read back,
        # Rasa's tracker has the one before the form (the form's runs are undone): so has ours.
        kept = run(store.retrieve(sender))
        assert kept is saved
        assert state(kept) == state(run(fresh.retrieve(sender)))
    assert state(kept)["latest_message"]["text"] == "ok"


def test_turns_served_by_another_process_are_read_as_new_events_only(
    domain: Domain, redis_url: str, store: EventLogTrackerStore, fresh: EventLogTrackerStore
) -> None:
    other = EventLogTrackerStore(domain, key_prefix="test", **_redis_kwargs(redis_url))
    clock = Clock()
    sender = "sms:+919700001502"
    mine = grow(store, sender, session_start(clock) + turn(clock, "hi"))
    before = list(mine.events)
    theirs = grow(other, sender, turn(clock, "bill?") + form_start(clock))
    assert theirs is not mine

    read = run(store.retrieve(sender))

    assert read is mine
    assert list(read.events)[: len(before)] == before
    assert all(a is b for a, b in zip(read.events, before, strict=False))
    assert state(read) == state(run(fresh.retrieve(sender)))
    # And back: the other process reads this one's turn.
    grow(store, sender, form_turn(clock, "456789"))
    assert state(run(other.retrieve(sender))) == state(run(fresh.retrieve(sender)))


def test_a_turn_that_never_saved_is_not_kept(
    store: EventLogTrackerStore, fresh: EventLogTrackerStore
) -> None:
    clock = Clock()
    sender = "whatsapp:+919700001503"
    saved = grow(store, sender, session_start(clock) + turn(clock, "hi"))
    failed = run(store.retrieve(sender))
    failed.update(UserUttered("lost", {"name": "greet"}, timestamp=clock()))  # the turn fails

    read = run(store.retrieve(sender))

    assert read is not saved
    assert state(read) == state(run(fresh.retrieve(sender)))
    assert read.latest_message.text == "hi"


def test_a_rewrite_or_a_new_session_elsewhere_is_read_afresh(
    domain: Domain, redis_url: str, store: EventLogTrackerStore, fresh: EventLogTrackerStore
) -> None:
    other = EventLogTrackerStore(domain, key_prefix="test", **_redis_kwargs(redis_url))
    clock = Clock()
    sender = "whatsapp:+919700001504"
    grow(store, sender, session_start(clock) + turn(clock, "hi") + turn(clock, "bye"))

    # Another process cuts the conversation back by one event and adds one of its own: as
    # long as before, and the same last event count, but other events.
    events = list(run(other.retrieve(sender)).events)[:-1]
    events.append(BotUttered("phir se", timestamp=clock()))
    run(other.save(DialogueStateTracker.from_events(sender, events)))
    assert state(run(store.retrieve(sender))) == state(run(fresh.retrieve(sender)))
    assert run(store.retrieve(sender)).latest_bot_utterance.text == "phir se"

    grow(other, sender, session_start(clock) + turn(clock, "naya"))
    read = run(store.retrieve(sender))
    assert state(read) == state(run(fresh.retrieve(sender)))
    assert len(read.events) == 3 + 5


def test_a_conversation_deleted_and_begun_again_is_read_afresh(
    store: EventLogTrackerStore, fresh: EventLogTrackerStore, redis_conn: Any
) -> None:
    clock = Clock()
    sender = "sms:+919700001505"
    grow(store, sender, session_start(clock) + turn(clock, "hi") + turn(clock, "a"))
    for key in redis_conn.keys(f"{store.key_prefix}{sender}:*"):
        redis_conn.delete(key)
    # Begun again elsewhere, with as many events and more.
    grow(fresh, sender, session_start(clock) + turn(clock, "b") + turn(clock, "c"))

    assert state(run(store.retrieve(sender))) == state(run(fresh.retrieve(sender)))


def test_only_the_latest_senders_are_kept(domain: Domain, redis_url: str, redis_conn: Any) -> None:
    small = EventLogTrackerStore(
        domain, key_prefix="test", cache_size=2, **_redis_kwargs(redis_url)
    )
    clock = Clock()
    senders = [f"sms:+91970000151{i}" for i in range(3)]
    saved = [grow(small, s, session_start(clock)) for s in senders]

    # The two saved last are kept; the first is read again (and then kept, in their place).
    hits = [
        run(small.retrieve(s)) is t for s, t in reversed(list(zip(senders, saved, strict=True)))
    ]
    assert hits == [True, True, False]
    assert len(small._kept) == 2
