"""bot/rasa_runtime/speedups.py: Rasa behaves as before, only faster.

Each test installs one speed-up with monkeypatch recording Rasa's original, so the rest of the
suite sees Rasa untouched.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import itertools
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import ActionExecutionRejection as RasaRejection
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    ConversationPaused,
    ConversationResumed,
    Event,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Action
from rasa_sdk.interfaces import ActionExecutionRejection as SdkRejection

from bot import signing
from bot.rasa_runtime import speedups as rasa_speedups
from bot.settings import ROOT
from tests.actions.helpers import MESSAGE_ID, MOBILE, STRANGER
from tests.actions.helpers import vouched as _vouched
from tests.domain import project_domain
from tests.rasa_runtime.action_stub import JSONHandler, serving
from tests.rasa_runtime.model import MODEL_MARKS, nodes_of, provided


def test_action_responses_are_checked_as_rasa_checks_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        RemoteAction, "_validate_action_result", RemoteAction._validate_action_result
    )
    action = RemoteAction("action_bill_amount", None)
    bad = {"events": [{"event": "slot"}], "responses": "not a list"}
    with pytest.raises(ValidationError) as theirs:
        action._validate_action_result(bad)

    rasa_speedups.cache_action_result_validator()

    good = {"events": [{"event": "slot", "name": "language", "value": "hi"}], "responses": []}
    assert action._validate_action_result(good) is True
    with pytest.raises(ValidationError) as ours:
        action._validate_action_result(bad)
    assert ours.value.message == theirs.value.message
    assert "Failed to validate Action server response" in ours.value.message


def test_the_quick_check_accepts_only_what_the_schema_accepts() -> None:
    from jsonschema import validators

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    full = validator_class(schema)
    quick = rasa_speedups.valid_by_event_name(schema, validator_class)
    valid_events = [
        e.as_dict()
        for e in (
            SlotSet("language", "hi"),
            SlotSet("account_number", None),
            ActionExecuted("action_listen"),
            UserUttered("hi", {"name": "greet", "confidence": 0.9}, message_id="m1"),
            BotUttered("Namaste", {"buttons": None}, {"utter_action": "utter_greet"}),
            ActiveLoop("account_form"),
            ActiveLoop(None),
            SessionStarted(),
            ActionExecutionRejected("account_form"),
            FollowupAction("action_listen"),
            Restarted(),
        )
    ]
    valid = [
        {"events": valid_events, "responses": [{"response": "utter_greet"}]},
        {"events": [], "responses": []},
        {"responses": []},
        {},
    ]
    invalid = [
        {"events": [{"event": "slot", "name": "language"}], "responses": []},  # no value
        {"events": [{"event": "no_such_event"}], "responses": []},
        {"events": [{"name": "language", "value": "hi"}], "responses": []},  # no event name
        {"events": [{"event": "slot", "name": "x", "value": 1, "timestamp": "now"}]},
        {"events": [{"event": 7}]},
        {"events": ["slot"]},
        {"events": {"event": "slot"}},
        {"events": [], "responses": "not a list"},
        {"events": [], "responses": ["not an object"]},
        ["not", "an", "object"],
    ]

    for result in valid:
        assert full.is_valid(result)
        assert quick(result) is True
    for result in invalid:
        assert not full.is_valid(result)
        assert quick(result) is False


def test_event_types_resolve_to_the_same_classes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    rasa_speedups.cache_event_types()

    for _ in range(2):  # the second round comes from the cache
        assert Event.resolve_by_type("user") is UserUttered
        assert Event.resolve_by_type("slot") is SlotSet
        assert Event.resolve_by_type("action") is ActionExecuted
    assert Event.resolve_by_type("no_such_event", default=SlotSet) is SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")


def test_dumps_writes_what_json_dumps_writes() -> None:
    value = {
        "text": "मेरा बिल कितना है",
        "confidence": np.float32(0.5),
        "ranking": (1, 2.25, None, True),
        3: "a non-string key",
    }
    assert json.loads(rasa_speedups.dumps(value)) == {
        "text": "मेरा बिल कितना है",
        "confidence": 0.5,
        "ranking": [1, 2.25, None, True],
        "3": "a non-string key",
    }
    # What orjson refuses (an integer beyond 64 bits) still encodes, through json.dumps, and
    # so does JSON already written (an orjson.Fragment: an event's stored JSON) beside it.
    assert json.loads(rasa_speedups.dumps({"n": 2**70})) == {"n": 2**70}
    mixed = {"n": 2**70, "events": [orjson.Fragment('{"event": "user", "text": "बिल"}')]}
    assert json.loads(rasa_speedups.dumps(mixed)) == {
        "n": 2**70,
        "events": [{"event": "user", "text": "बिल"}],
    }


class _Recorder(JSONHandler):
    bodies: list[tuple[str, bytes]] = []

    def answer(self, body: bytes) -> tuple[int, bytes]:
        _Recorder.bodies.append((self.headers["Content-Type"], body))
        return 200, b'{"events": [], "responses": []}'


@pytest.fixture()
def recorder() -> Iterator[str]:
    _Recorder.bodies = []
    with serving(_Recorder) as url:
        yield url


def test_action_requests_carry_the_same_json(
    recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    rasa_speedups.fast_action_request_bodies()
    payload = {
        "next_action": "action_bill_amount",
        "tracker": {"events": [{"event": "user", "text": "बिल कितना है", "timestamp": 1.5}]},
        "domain": {"slots": {"language": {"type": "categorical"}}},
    }
    endpoint = EndpointConfig(recorder + "/webhook", headers={"X-Test": "1"})

    answer = asyncio.run(endpoint.request(json=payload, method="post"))

    assert answer == {"events": [], "responses": []}
    ((content_type, body),) = _Recorder.bodies
    assert content_type == "application/json"
    assert json.loads(body) == payload
    # orjson's mark: UTF-8 text where json.dumps would write \u escapes.
    assert "बिल".encode() in body


class _KeepAlive(JSONHandler):
    """Keeps connections open (HTTP/1.1) and records the client port of each call."""

    protocol_version = "HTTP/1.1"
    ports: list[int] = []

    def answer(self, body: bytes) -> tuple[int, bytes]:
        _KeepAlive.ports.append(self.client_address[1])
        return 200, b'{"events": [], "responses": []}'


async def _calls(endpoints: list[EndpointConfig]) -> list[Any]:
    return [
        await endpoint.request(json={"n": n}, method="post") for n, endpoint in enumerate(endpoints)
    ]


def test_action_calls_reuse_connections_within_a_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    _KeepAlive.ports = []
    with serving(_KeepAlive) as url:
        endpoint = EndpointConfig(url + "/webhook")
        # Rasa's own sessions: a new connection for every call.
        assert asyncio.run(_calls([endpoint] * 3)) == [{"events": [], "responses": []}] * 3
        assert len(set(_KeepAlive.ports)) == 3

        rasa_speedups.fast_action_request_bodies()
        _KeepAlive.ports = []
        # Three calls (two endpoint objects, as Rasa copies them) in one loop: one connection.
        answers = asyncio.run(_calls([endpoint, endpoint.copy(), endpoint]))
        assert answers == [{"events": [], "responses": []}] * 3
        assert len(set(_KeepAlive.ports)) == 1
        # A new event loop (a test's asyncio.run, another Sanic worker) gets its own pool.
        asyncio.run(_calls([endpoint]))
        assert len(set(_KeepAlive.ports)) == 2


def test_action_calls_survive_a_server_that_closes_connections(
    recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The recorder answers HTTP/1.0 and closes each connection: the pool must not reuse it.
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    rasa_speedups.fast_action_request_bodies()
    endpoint = EndpointConfig(recorder + "/webhook")

    assert asyncio.run(_calls([endpoint] * 4)) == [{"events": [], "responses": []}] * 4
    assert [json.loads(body) for _, body in _Recorder.bodies] == [{"n": n} for n in range(4)]


def test_the_action_server_parses_bodies_with_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa_sdk.endpoint
    from sanic.compat import Header
    from sanic.exceptions import InvalidUsage

    monkeypatch.setattr(rasa_sdk.endpoint, "create_app", rasa_sdk.endpoint.create_app)
    rasa_speedups.fast_action_server_requests()
    monkeypatch.setattr("sanic.Sanic._app_registry", {})  # a fresh name registry for this app

    app = rasa_sdk.endpoint.create_app("bot.actions")

    load_json = inspect.signature(app.request_class.load_json)
    assert load_json.parameters["loads"].default is orjson.loads

    request = app.request_class(b"/webhook", Header({}), "1.1", "POST", None, app)
    request.body = '{"next_action": "action_bill_amount", "text": "बिल"}'.encode()
    assert request.json == {"next_action": "action_bill_amount", "text": "बिल"}
    request = app.request_class(b"/webhook", Header({}), "1.1", "POST", None, app)
    request.body = b"{not json"
    with pytest.raises(InvalidUsage):
        _ = request.json


# In-process actions ---------------------------------------------------------------------------


class Rejecting(Action):
    def name(self) -> str:
        return "action_test_rejecting"

    def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[dict[str, Any]]:
        raise SdkRejection(self.name(), "not this time")


class Failing(Action):
    def name(self) -> str:
        return "action_test_failing"

    def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[dict[str, Any]]:
        raise KeyError("a bug")


class Uttering(Action):
    def name(self) -> str:
        return "action_test_uttering"

    def run(self, dispatcher: Any, tracker: Any, domain: Any) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_ask_account_number")
        return [{"event": "slot", "name": "pending_query", "value": ("a", "tuple")}]


TEST_ACTIONS = (
    *rasa_speedups.IN_PROCESS_ACTIONS,
    f"{__name__}:Rejecting",
    f"{__name__}:Failing",
    f"{__name__}:Uttering",
)


@pytest.fixture()
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    rasa_speedups.fast_action_request_bodies()
    rasa_speedups.run_pure_actions_in_process(TEST_ACTIONS)


def _tracker(
    text: str,
    intent: str,
    sender_id: str,
    metadata: dict[str, Any],
    message_id: str = MESSAGE_ID,
) -> DialogueStateTracker:
    events = [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered(
            text,
            {"name": intent, "confidence": 0.98},
            metadata=metadata,
            message_id=message_id,
        ),
    ]
    return DialogueStateTracker.from_events(sender_id, events, slots=project_domain().slots)


def _run(action: str, tracker: DialogueStateTracker, url: str) -> list[Event]:
    remote = RemoteAction(action, EndpointConfig(url + "/webhook"))
    return asyncio.run(
        remote.run(
            CollectingOutputChannel(),
            TemplatedNaturalLanguageGenerator(project_domain().responses),
            tracker,
            project_domain(),
        )
    )


def _slots(events: list[Event]) -> dict[str, Any]:
    return {e.key: e.value for e in events if isinstance(e, SlotSet)}


def test_slot_mappings_are_validated_in_rasa_without_the_action_server(
    in_process: None, recorder: str
) -> None:
    tracker = _tracker("मेरा बिल कितना है", "ask_bill_amount", **_vouched(MOBILE, channel="sms"))

    slots = _slots(_run("action_validate_slot_mappings", tracker, recorder))

    assert slots == {"channel": "sms", "mobile": MOBILE, "role": "consumer", "language": "hi"}
    assert _Recorder.bodies == []  # the action server was never asked


def test_in_process_actions_trust_only_the_channels_vouch(in_process: None, recorder: str) -> None:
    forged = _vouched(MOBILE)
    forged["metadata"][signing.VOUCH_KEY]["mobile"] = STRANGER  # signed for MOBILE, not this
    plain = {"sender_id": f"whatsapp:{MOBILE}", "metadata": {"mobile": MOBILE, "role": "staff"}}

    for who in (forged, plain):
        slots = _slots(
            _run("action_validate_slot_mappings", _tracker("bill", "ask", **who), recorder)
        )
        assert slots.keys().isdisjoint({"channel", "mobile", "role"})


def test_other_actions_still_go_to_the_action_server(in_process: None, recorder: str) -> None:
    tracker = _tracker("bill kitna hai", "ask_bill_amount", **_vouched(MOBILE, channel="sms"))

    assert _run("action_bill_amount", tracker, recorder) == []

    ((_, body),) = _Recorder.bodies
    assert json.loads(body)["next_action"] == "action_bill_amount"


def test_in_process_answers_go_through_rasas_checks(in_process: None, recorder: str) -> None:
    tracker = _tracker("hi", "greet", **_vouched(MOBILE, channel="sms"))

    with pytest.raises(RasaRejection) as rejected:
        _run("action_test_rejecting", tracker, recorder)
    assert rejected.value.action_name == "action_test_rejecting"
    assert rejected.value.message == "not this time"
    with pytest.raises(
        RasaException, match="Failed to execute custom action 'action_test_failing'"
    ):
        _run("action_test_failing", tracker, recorder)

    uttered, slot = _run("action_test_uttering", tracker, recorder)
    assert isinstance(uttered, BotUttered)
    assert uttered.metadata["utter_action"] == "utter_ask_account_number"
    # Through JSON, as from the action server: a tuple arrives as a list.
    assert slot == SlotSet("pending_query", ["a", "tuple"])
    assert _Recorder.bodies == []


# Stored events sent as stored ----------------------------------------------------------------

#: Rasa's own (no test leaves a speed-up installed: each restores Rasa's with monkeypatch).
RASAS_CALL_FORMAT = RemoteAction._action_call_format


def _stored(tracker: DialogueStateTracker, keep_last: int = 0) -> DialogueStateTracker:
    """The tracker with its events' JSON kept as the tracker store keeps it, except the last
    ``keep_last`` (the current turn's, not saved yet)."""
    for event in list(tracker.events)[: len(tracker.events) - keep_last]:
        rasa_speedups.remember_stored_json(event, rasa_speedups.dumps(event.as_dict()))
    return tracker


@pytest.mark.parametrize("selective", [False, True])
def test_action_call_bodies_with_stored_events_are_rasas_json(selective: bool) -> None:
    """The body built from stored JSON is the very JSON Rasa's own body encodes to, for the
    conversation tests' trackers and for actions with and without the domain."""
    endpoint = EndpointConfig("http://actions.invalid/webhook", enable_selective_domain=selective)
    trackers = [_stored(_conversation(), keep_last=3)]
    trackers += [_stored(t, keep_last=2) for t in _conversation_test_trackers()[::3]]
    assert len(trackers) > 10
    for tracker in trackers:
        for name in ("action_bill_amount", "validate_account_form"):
            action = RemoteAction(name, endpoint)
            theirs = rasa_speedups.dumps(RASAS_CALL_FORMAT(action, tracker, project_domain()))
            ours = rasa_speedups.action_call_body(action, tracker, project_domain(), stored=True)
            assert rasa_speedups.dumps(ours) == theirs
            assert any(isinstance(e, orjson.Fragment) for e in ours["tracker"]["events"])
            plain = rasa_speedups.action_call_body(action, tracker, project_domain(), stored=False)
            assert rasa_speedups.dumps(plain) == theirs


def test_an_event_changed_since_it_was_stored_is_encoded_afresh() -> None:
    """Rasa changes an event by giving it a new timestamp or new metadata (as a form's
    temporary tracker's events join the real one): the body has the event as it is now."""
    tracker = _stored(_conversation())
    slot, user = tracker.events[-4], tracker.events[-1]
    assert rasa_speedups.stored_json(slot) is not None
    tracker.update_with_events([slot], project_domain())  # a new timestamp
    user.metadata = {**user.metadata, "model_id": "another-model"}  # new metadata

    assert rasa_speedups.stored_json(slot) is None
    assert rasa_speedups.stored_json(user) is None
    action = RemoteAction("action_bill_amount", EndpointConfig("http://actions.invalid/webhook"))
    body = rasa_speedups.action_call_body(action, tracker, project_domain(), stored=True)
    assert rasa_speedups.dumps(body) == rasa_speedups.dumps(
        RASAS_CALL_FORMAT(action, tracker, project_domain())
    )
    assert body["tracker"]["events"][-1]["timestamp"] == slot.timestamp
    assert any(
        e.get("metadata", {}).get("model_id") == "another-model"
        for e in body["tracker"]["events"]
        if isinstance(e, dict)
    )


def test_the_action_server_gets_rasas_body_from_stored_events(
    recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    monkeypatch.setattr(RemoteAction, "_action_call_format", RASAS_CALL_FORMAT)
    rasa_speedups.fast_action_request_bodies()
    rasa_speedups.send_stored_events_as_stored()
    tracker = _stored(_conversation(), keep_last=2)
    action = RemoteAction("validate_account_form", EndpointConfig(recorder + "/webhook"))

    _run("validate_account_form", tracker, recorder)

    ((_, body),) = _Recorder.bodies
    assert json.loads(body) == json.loads(
        rasa_speedups.dumps(RASAS_CALL_FORMAT(action, tracker, project_domain()))
    )
    assert len(json.loads(body)["tracker"]["events"]) == len(tracker.events)


# The past states and applied events, taken further event by event ------------------------------

#: Rasa's own (no test leaves a speed-up installed: each restores Rasa's with monkeypatch).
RASAS_APPLIED_EVENTS = DialogueStateTracker.applied_events

OPTIONS = [
    {},
    {"omit_unset_slots": True},
    {"ignore_rule_only_turns": True, "rule_only_data": {"slots": ["needs_account"], "loops": []}},
]


def _conversation() -> DialogueStateTracker:
    tracker = _tracker("bill kitna hai", "ask_bill_amount", **_vouched(MOBILE, channel="sms"))
    tracker.update_with_events(
        [
            SlotSet("language", "hinglish"),
            ActionExecuted("action_bill_amount"),
            SlotSet("needs_account", True),
            ActionExecuted("account_form"),
            ActiveLoop("account_form"),
            SlotSet("requested_slot", "account_number"),
            ActionExecuted("action_listen"),
            UserUttered("456789", {"name": "inform", "confidence": 0.9}),
        ],
        project_domain(),
    )
    return tracker


def _rasas_states(tracker: DialogueStateTracker, **options: Any) -> list[dict[str, Any]]:
    """The states as Rasa builds them, walking the whole history."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DialogueStateTracker, "applied_events", RASAS_APPLIED_EVENTS)
        return Domain.states_for_tracker_history(project_domain(), tracker, **options)


@pytest.fixture()
def incremental(monkeypatch: pytest.MonkeyPatch) -> None:
    """Applied events and past states taken further event by event (restored afterwards)."""
    monkeypatch.setattr(DialogueStateTracker, "past_states", DialogueStateTracker.past_states)
    monkeypatch.setattr(DialogueStateTracker, "applied_events", RASAS_APPLIED_EVENTS)
    rasa_speedups.cache_applied_events()
    rasa_speedups.cache_past_states()


def test_past_states_are_the_states_rasa_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueStateTracker, "past_states", DialogueStateTracker.past_states)
    tracker, domain = _conversation(), project_domain()
    expected = [_rasas_states(tracker, **options) for options in OPTIONS]
    rasa_speedups.cache_past_states()
    built: list[Any] = []
    monkeypatch.setattr(
        "rasa.shared.core.domain.Domain.get_active_state",
        _counting(Domain.get_active_state, built),
    )

    for _ in range(3):
        for options, states in zip(OPTIONS, expected, strict=True):
            got = tracker.past_states(domain, **options)
            assert got == states
            # What a caller does to its states (the featurizer drops the last turn's text)
            # reaches no other caller.
            del got[-1]["user"]["intent"]
            got[0].clear()
    # The walk once for each set of options, then only the state of the end on each call.
    walked = sum(len(states) - 1 for states in expected)
    assert len(built) == walked + 3 * len(OPTIONS)

    # Rule-only data read fresh each call when rule-only turns are ignored.
    other = {"slots": [], "loops": ["account_form"]}
    assert tracker.past_states(domain, ignore_rule_only_turns=True, rule_only_data=other) == (
        _rasas_states(tracker, ignore_rule_only_turns=True, rule_only_data=other)
    )

    # A new event: only the states after the last one walked are built.
    built.clear()
    tracker.update(ActionExecuted("utter_help"), domain)
    again = tracker.past_states(domain)
    assert len(built) == 2  # the state before the new ActionExecuted, and the end
    assert again != expected[0]
    assert again == _rasas_states(tracker)
    # An undone turn: the events walked are no longer the start of the applied ones.
    from rasa.shared.core.events import UserUtteranceReverted

    built.clear()
    tracker.update(UserUtteranceReverted(), domain)
    ours = tracker.past_states(domain)
    assert len(built) == len(ours)  # every state built again
    assert ours == _rasas_states(tracker)


def _counting(method: Any, calls: list[Any]) -> Any:
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return method(self, *args, **kwargs)

    return counted


RULE_ONLY = [
    {"slots": ["needs_account", "requested_slot"], "loops": []},
    {"slots": [], "loops": ["account_form"]},
]
ALL_OPTIONS = [
    *OPTIONS,
    {"omit_unset_slots": True, "ignore_rule_only_turns": True, "rule_only_data": RULE_ONLY[1]},
]


def _conversation_test_trackers() -> list[DialogueStateTracker]:
    """The trackers of the conversation tests' stories (tests/conversations), as Rasa's
    training data generator builds them."""
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.core.training_data.structures import StoryGraph

    steps = []
    for path in sorted((ROOT / "tests" / "conversations").glob("*.yml")):
        steps += YAMLStoryReader(project_domain()).read_from_file(str(path))
    generator = TrainingDataGenerator(
        StoryGraph(steps), project_domain(), augmentation_factor=0, use_story_concatenation=False
    )
    return generator.generate_story_trackers()


def _grown_event_by_event(events: list[Event], every: int = 1) -> int:
    """Feed ``events`` to a tracker one at a time, as turns do, and compare its applied events
    and past states with Rasa's after every ``every`` of them; return how many comparisons of
    past states were made."""
    tracker = DialogueStateTracker(STRANGER, project_domain().slots)
    compared = 0
    for index, event in enumerate(events, 1):
        tracker.update(event)
        if index % every and index != len(events):
            continue
        theirs = RASAS_APPLIED_EVENTS(tracker)
        ours = tracker.applied_events()
        assert len(ours) == len(theirs)
        assert all(a is b for a, b in zip(ours, theirs, strict=True))
        ours.clear()  # a caller's own list
        for options in ALL_OPTIONS:
            assert tracker.past_states(project_domain(), **options) == _rasas_states(
                tracker, **options
            )
            compared += 1
    return compared


def test_past_states_built_turn_by_turn_are_rasas_across_the_conversation_tests(
    incremental: None,
) -> None:
    trackers = _conversation_test_trackers()
    assert len(trackers) > 40
    # Forms run again and again in these (their repeated runs are undone in applied events).
    assert any(isinstance(e, ActiveLoop) for t in trackers for e in t.events)

    compared = sum(_grown_event_by_event(list(t.events)) for t in trackers)
    # Several events between two predictions, as an action's events or another turn bring.
    compared += sum(_grown_event_by_event(list(t.events), every=4) for t in trackers)

    assert compared > 4000


def test_past_states_follow_undone_turns_restarts_and_hidden_rule_turns(
    incremental: None,
) -> None:
    from rasa.shared.core.events import (
        ActionReverted,
        DefinePrevUserUtteredFeaturization,
        UserUtteranceReverted,
    )

    def user(text: str, intent: str) -> list[Event]:
        return [
            ActionExecuted("action_listen"),
            UserUttered(text, {"name": intent, "confidence": 0.9}),
            DefinePrevUserUtteredFeaturization(False),
        ]

    events: list[Event] = [
        ActionExecuted("action_session_start"),
        SessionStarted(),
        SlotSet("language", "hi"),
        *user("hi", "greet"),
        ActionExecuted("utter_greet", hide_rule_turn=True),
        *user("bill", "ask_bill_amount"),
        SlotSet("needs_account", True),
        ActionExecuted("action_bill_amount", hide_rule_turn=True),
        FollowupAction("account_form"),
        ActionExecuted("account_form"),
        ActiveLoop("account_form"),
        SlotSet("requested_slot", "account_number"),
        *user("12", "inform_account_number"),
        ActionExecuted("account_form"),
        ActionExecutionRejected("account_form"),
        ActionExecuted("utter_help", hide_rule_turn=True),
        UserUtteranceReverted(),
        *user("456789", "inform_account_number"),
        SlotSet("account_number", "456789"),
        ActionExecuted("account_form"),
        ActiveLoop(None),
        ActionExecuted("action_bill_amount"),
        ActionReverted(),
        ActionExecuted("utter_help"),
        *user("kuch aur", "help"),
        ActionExecuted("utter_help", hide_rule_turn=True),
        Restarted(),
        *user("hello", "greet"),
        ActionExecuted("utter_greet"),
        ActionExecuted("action_session_start"),
        SessionStarted(),
        *user("bye", "goodbye"),
    ]

    # A loop's name first seen after it ran twice: from then on its second run undoes the turn
    # before it, so the applied events change behind the latest event.
    late_loop: list[Event] = [
        *user("bill", "ask_bill_amount"),
        ActionExecuted("account_form"),
        *user("12", "inform_account_number"),
        ActionExecuted("account_form"),
        ActiveLoop("account_form"),
        *user("456789", "inform_account_number"),
        ActionExecuted("account_form"),
    ]
    for script in (events, late_loop):
        assert _grown_event_by_event(script) == len(script) * len(ALL_OPTIONS)
        for every in (2, 3, 5):
            assert _grown_event_by_event(script, every) >= len(script) // every * len(ALL_OPTIONS)


def test_applied_events_of_changed_events_are_worked_out_afresh(incremental: None) -> None:
    from rasa.shared.core.events import UserUtteranceReverted

    tracker = _conversation()
    assert tracker.applied_events() == RASAS_APPLIED_EVENTS(tracker)
    # Not appended: the last event replaced (as many events, the same first one).
    tracker.events.pop()
    tracker.events.append(UserUtteranceReverted())
    assert tracker.applied_events() == RASAS_APPLIED_EVENTS(tracker)
    # And a new tracker object on the same events starts on its own.
    other = DialogueStateTracker.from_events(tracker.sender_id, list(tracker.events))
    assert other.applied_events() == RASAS_APPLIED_EVENTS(tracker)


# Debug log lines' copies ------------------------------------------------------------------------


@pytest.mark.parametrize("name", rasa_speedups.DEBUG_DEEPCOPY_MODULES)
def test_the_modules_use_deepcopy_only_in_debug_log_lines(name: str) -> None:
    module = importlib.import_module(name)
    tree = ast.parse(inspect.getsource(module))
    in_debug_lines: set[int] = set()
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if (
            isinstance(node, ast.Call)
            and isinstance(func, ast.Attribute)
            and func.attr == "debug"
            and isinstance(func.value, ast.Name)
            and func.value.id == "structlogger"
        ):
            in_debug_lines.update(id(n) for n in ast.walk(node))
    uses = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "copy"
    ]
    assert uses, f"{name} no longer uses copy: drop it from DEBUG_DEEPCOPY_MODULES"
    assert all(node.attr == "deepcopy" and id(node) in in_debug_lines for node in uses)


def test_debug_lines_still_get_copies_when_written(monkeypatch: pytest.MonkeyPatch) -> None:
    import rasa.core.processor

    monkeypatch.setattr(rasa.core.processor, "copy", rasa.core.processor.copy)
    rasa_speedups.skip_unlogged_deepcopies(("rasa.core.processor",))
    shim = rasa.core.processor.copy
    logger = logging.getLogger("rasa.core.processor")
    value = {"events": [{"event": "slot"}]}

    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert shim.deepcopy(value) is value
        logger.setLevel(logging.DEBUG)
        copied = shim.deepcopy(value)
    finally:
        logger.setLevel(level)
    assert copied == value
    assert copied is not value
    assert copied["events"][0] is not value["events"][0]


def _with_model(test: Any) -> Any:
    """Marks a test that loads the trained model in this process (the ``predict_graph`` fixture)."""
    for mark in MODEL_MARKS:
        test = mark(test)
    return test


def _prediction_points(domain: Domain) -> Iterator[DialogueStateTracker]:
    """A tracker at each point of the conversation tests where Rasa predicts an action."""
    for number, story in enumerate(_conversation_test_trackers()):
        events = list(story.events)
        for index, event in enumerate(events):
            if index and isinstance(event, ActionExecuted):
                yield DialogueStateTracker.from_events(
                    f"{STRANGER}-{number}-{index}", events[:index], domain.slots
                )


@_with_model
def test_graphs_run_in_order_give_what_dask_gives(
    predict_graph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.engine.runner.dask import DaskGraphRunner

    metadata, runner, _ = predict_graph
    monkeypatch.setattr(DaskGraphRunner, "run", DaskGraphRunner.run)
    dask_run = DaskGraphRunner.run
    rasa_speedups.run_graphs_in_order()
    assert DaskGraphRunner.run is not dask_run
    domain = provided(runner, "domain_provider")
    assert (
        domain.as_dict()
        == dask_run(runner, targets=["domain_provider"])["domain_provider"].as_dict()
    )

    compared = 0
    for tracker in itertools.islice(_prediction_points(domain), 0, None, 3):
        inputs = {"__tracker__": tracker}
        ours = runner.run(inputs=inputs, targets=[metadata.core_target])
        theirs = dask_run(runner, inputs=inputs, targets=[metadata.core_target])
        assert ours == theirs
        compared += 1
    assert compared > 100

    from rasa.core.channels.channel import UserMessage

    for text in ("mera naya account number kya hai", "बिजली कब आएगी", "456789", "hi"):
        inputs = {"__message__": [UserMessage(text, sender_id=STRANGER)]}
        (ours,) = runner.run(inputs=inputs, targets=[metadata.nlu_target])[metadata.nlu_target]
        (theirs,) = dask_run(runner, inputs=inputs, targets=[metadata.nlu_target])[
            metadata.nlu_target
        ]
        assert ours.as_dict() == theirs.as_dict()
        assert ours.get("intent")["name"]

    # An input named like a node stands in for it: that node and what only it needs don't run.
    from rasa.core.policies.rule_policy import RulePolicy

    (rule,) = nodes_of(runner, RulePolicy)
    ran: list[str] = []
    for name, node in runner._instantiated_nodes.items():
        monkeypatch.setattr(node, "_fn", _recorded(node._fn, name, ran))
    given = runner.run(
        inputs={"__tracker__": tracker, rule: "stand-in"}, targets=[rule, "domain_provider"]
    )
    assert given == {rule: "stand-in", "domain_provider": domain}
    assert ran == ["domain_provider"]


def _recorded(fn: Any, name: str, ran: list[str]) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        ran.append(name)
        return fn(*args, **kwargs)

    return run


def _odd_turns(domain: Domain) -> Iterator[DialogueStateTracker]:
    """Turns no rule or story foresees: each intent after each of a few bot actions."""
    actions = sorted(domain.user_actions)[:: max(1, len(domain.user_actions) // 6)]
    for intent in domain.intents:
        said = UserUttered(intent, {"name": intent, "confidence": 1.0})
        for action in actions:
            events = [ActionExecuted("action_listen"), said, ActionExecuted(action)]
            yield DialogueStateTracker.from_events(STRANGER, events, domain.slots)
            events.append(ActionExecuted("action_listen"))
            events.append(said)
            yield DialogueStateTracker.from_events(STRANGER, events, domain.slots)


@_with_model
def test_rules_matched_by_their_last_action_keep_rasas_answers(
    predict_graph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy

    _, runner, _ = predict_graph
    domain = provided(runner, "domain_provider")
    rule_only = provided(runner, "rule_only_data_provider")
    (node,) = nodes_of(runner, RulePolicy).values()
    policy = node._component
    monkeypatch.setattr(RulePolicy, "_get_possible_keys", RulePolicy._get_possible_keys)
    rasas = RulePolicy._get_possible_keys
    asked: list[str] = []
    monkeypatch.setattr(
        RulePolicy, "_is_rule_applicable", _recorded(RulePolicy._is_rule_applicable, "", asked)
    )

    trackers = [*_prediction_points(domain), *_odd_turns(domain)]
    # Every rule of this model names a previous action at its last state; rules that name none
    # (a conversation start) or name a text instead are added to a lookup of their own.
    greet = {"user": {"intent": "greet"}}
    odd = {
        **policy.lookup[RULES],
        json.dumps([greet]): "utter_greet",
        json.dumps([{"prev_action": {"action_text": "hello"}, **greet}]): "utter_greet",
    }
    starts = [[greet], [{"prev_action": {"action_text": "hello"}, **greet}]]

    def walk(keys: Any) -> tuple[list[Any], list[Any], int]:
        monkeypatch.setattr(RulePolicy, "_get_possible_keys", keys)
        asked.clear()
        found, predicted = [], []
        for tracker in trackers:
            states = policy._prediction_states(tracker, domain, rule_only_data=rule_only)
            for lookup in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH):
                found.append(policy._get_possible_keys(policy.lookup[lookup], states))
            found.append(policy._get_possible_keys(odd, states))
            predicted.append(
                policy.predict_action_probabilities(tracker, domain, rule_only_data=rule_only)
            )
        found += [policy._get_possible_keys(odd, states) for states in starts]
        return found, predicted, len(asked)

    theirs, their_predictions, their_questions = walk(rasas)
    rasa_speedups.match_rules_by_their_last_action()
    ours, our_predictions, our_questions = walk(RulePolicy._get_possible_keys)
    assert RulePolicy._get_possible_keys is not rasas
    assert ours == theirs
    assert our_predictions == their_predictions
    assert sum(map(len, ours)) > 100  # rules do apply
    assert ours[-2] and ours[-1]  # the added rules too
    assert our_questions < their_questions / 5


def test_rule_states_are_formatted_only_for_rasas_debug_line() -> None:
    """In Rasa's source, RulePolicy formats states only to hand them to a debug line."""
    import rasa.core.policies.rule_policy as rule_policy

    tree = ast.parse(inspect.getsource(rule_policy))
    uses = 0
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        names = {
            target.id
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "attr", None) == "format_tracker_states"
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        if not names:
            continue
        debug_args = {
            id(inner)
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "debug"
            for inner in ast.walk(node)
        }
        for node in ast.walk(function):
            if isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load):
                assert id(node) in debug_args, f"{function.name} uses {node.id} elsewhere"
                uses += 1
    assert uses == 1


def test_rule_states_are_formatted_when_debug_lines_are_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rasa.core.policies.policy import Policy
    from rasa.core.policies.rule_policy import RulePolicy

    monkeypatch.setattr(RulePolicy, "format_tracker_states", RulePolicy.format_tracker_states)
    rasa_speedups.format_rule_states_only_for_debug_lines()
    states = [{}, {"user": {"intent": "greet"}, "prev_action": {"action_name": "action_listen"}}]
    logger = logging.getLogger("rasa.core.policies.rule_policy")
    level = logger.level
    try:
        logger.setLevel(logging.INFO)
        assert RulePolicy.format_tracker_states(states) == ""
        logger.setLevel(logging.DEBUG)
        written = RulePolicy.format_tracker_states(states)
    finally:
        logger.setLevel(level)
    assert written == Policy.format_tracker_states(states)
    assert "user intent: greet" in written


# Form validation at activation -----------------------------------------------------------------


class _Scripted(JSONHandler):
    """An action server that records which action each call names and answers from a script
    (each action's answers in turn; then no events)."""

    calls: list[str] = []
    script: dict[str, list[list[dict[str, Any]]]] = {}

    def answer(self, body: bytes) -> tuple[int, bytes]:
        name = json.loads(body)["next_action"]
        _Scripted.calls.append(name)
        answers = _Scripted.script.get(name) or [[]]
        events = answers.pop(0) if len(answers) > 1 else answers[0]
        return 200, json.dumps({"events": events}).encode()


@pytest.fixture()
def scripted() -> Iterator[str]:
    with serving(_Scripted) as url:
        yield url + "/webhook"


def _run_form(
    form: str, tracker: DialogueStateTracker, url: str, script: dict[str, Any]
) -> tuple[list[str], list[Event]]:
    """The calls a form's run makes to the action server, and the events it returns."""
    from rasa.core.actions.forms import FormAction

    _Scripted.calls = []
    _Scripted.script = {name: [list(a) for a in answers] for name, answers in script.items()}
    events = asyncio.run(
        FormAction(form, EndpointConfig(url)).run(
            CollectingOutputChannel(),
            TemplatedNaturalLanguageGenerator(project_domain().responses),
            tracker.copy(),
            project_domain(),
        )
    )
    return list(_Scripted.calls), events


def _question(*events: Event) -> DialogueStateTracker:
    """An unknown sender's bill question that starts the account form, then ``events``."""
    tracker = _tracker("bill kitna hai", "ask_bill_amount", **_vouched(MOBILE, channel="sms"))
    tracker.update_with_events(
        [ActionExecuted("action_bill_amount"), SlotSet("needs_account", True), *events],
        project_domain(),
    )
    return tracker


ACCOUNT_SET = [{"event": "slot", "name": "account_number", "value": "1234567890"}]
VISIT_ACTIVE = [ActiveLoop("staff_visit_form"), SlotSet("requested_slot", "visit_informed")]

FORM_STARTS = {
    # form, tracker, the action server's scripted answers, calls Rasa makes, calls now saved
    "nothing filled or extracted": ("account_form", _question(), {}, 4, 1),
    "the activation's call answers": (
        "account_form",
        _question(),
        {"validate_account_form": [ACCOUNT_SET]},
        2,  # the form has its number: no question
        0,
    ),
    "a question left in requested_slot": (
        "account_form",
        _question(SlotSet("requested_slot", "account_number")),
        {},
        4,
        0,
    ),
    "a slot emptied since the message": (
        "account_form",
        _question(SlotSet("account_number", None)),
        {},
        4,
        0,
    ),
    "another form active": ("account_form", _question(*VISIT_ACTIVE), {}, 4, 0),
    "another form active, asking nothing": (
        "account_form",
        _question(ActiveLoop("staff_visit_form")),
        {},
        4,
        0,
    ),
    "a number already given": (
        "account_form",
        _question(SlotSet("account_number", "1234567890")),
        {"validate_account_form": [ACCOUNT_SET]},
        2,
        0,
    ),
}


@pytest.mark.parametrize("case", list(FORM_STARTS))
def test_a_starting_form_skips_only_a_validation_that_repeats_the_first(
    case: str, scripted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.actions.forms import FormAction

    form, tracker, script, rasas_calls, saved = FORM_STARTS[case]
    for name in ("_activate_loop", "validate_slots", "_validate_if_required"):
        monkeypatch.setattr(FormAction, name, getattr(FormAction, name))
    theirs = _run_form(form, tracker, scripted, script)
    rasa_speedups.validate_forms_once_at_activation()

    ours = _run_form(form, tracker, scripted, script)

    assert len(theirs[0]) == rasas_calls
    assert ours[1] == theirs[1]  # the same events: slots, question, active loop
    removed = list(theirs[0])
    for _ in range(saved):
        removed.remove(f"validate_{form}")
    assert ours[0] == removed


def test_a_form_run_again_validates_as_rasa_does(
    scripted: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An active form's run on the user's answer is Rasa's own: one validation, which may
    reject."""
    from rasa.core.actions.forms import FormAction

    for name in ("_activate_loop", "validate_slots", "_validate_if_required"):
        monkeypatch.setattr(FormAction, name, getattr(FormAction, name))
    rasa_speedups.validate_forms_once_at_activation()
    tracker = _conversation()

    # Nothing extracted from the answer: the form rejects, as Rasa's does.
    with pytest.raises(RasaRejection, match="Failed to extract slot account_number"):
        _run_form("account_form", tracker, scripted, {})
    assert _Scripted.calls == ["validate_account_form"]

    calls, events = _run_form(
        "account_form", tracker, scripted, {"validate_account_form": [ACCOUNT_SET]}
    )
    assert calls == ["validate_account_form"]
    assert SlotSet("account_number", "1234567890") in events


# Tracker copies ---------------------------------------------------------------------------------


def _state_of(tracker: DialogueStateTracker) -> dict[str, Any]:
    """Every attribute of a tracker (its slots' too), for comparing two trackers."""
    state = {k: v for k, v in vars(tracker).items() if not k.startswith("_bijli")}
    state["events"] = list(tracker.events)
    state["maxlen"] = tracker.events.maxlen
    state["slots"] = {name: vars(slot) for name, slot in tracker.slots.items()}
    return state


def _undoing_conversation() -> list[Event]:
    """A conversation with what changes a tracker other than slots: undone turns, a paused
    and resumed conversation, an interrupted and rejected form, a follow-up action, a restart."""
    events = list(_conversation().events)
    return events + [
        ActionExecutionRejected("account_form"),
        LoopInterrupted(True),
        ActionExecuted("utter_greet"),
        BotUttered("Namaste", {"elements": None}),
        ActionReverted(),
        UserUtteranceReverted(),
        ConversationPaused(),
        ConversationResumed(),
        FollowupAction("action_bill_amount"),
        Restarted(),
        ActionExecuted("action_listen"),
        UserUttered("hi", {"name": "greet", "confidence": 1.0}),
    ]


def test_tracker_copies_hold_what_rasas_replay_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    rasas_copy = DialogueStateTracker.copy
    monkeypatch.setattr(DialogueStateTracker, "copy", rasas_copy)
    rasa_speedups.copy_trackers_without_replay()

    histories = [list(t.events) for t in _conversation_test_trackers()]
    histories.append(_undoing_conversation())
    compared = 0
    for events in histories:
        tracker = DialogueStateTracker(STRANGER, project_domain().slots)
        for event in events:
            tracker.update(event)
            theirs, ours = rasas_copy(tracker), tracker.copy()
            assert _state_of(ours) == _state_of(theirs)
            compared += 1
    assert compared > 900

    # The copy is a tracker of its own: changing it leaves the original as it was.
    tracker = _conversation()
    before = _state_of(rasas_copy(tracker))
    copied = tracker.copy()
    copied.update_with_events(
        [SlotSet("language", "en"), LoopInterrupted(True), ActionExecuted("action_listen")],
        project_domain(),
    )
    copied.reject_action("account_form")
    assert _state_of(tracker) == before
    assert copied.get_slot("language") == "en" and copied.active_loop.rejected


RASAS_FROM_EVENTS = DialogueStateTracker.__dict__["from_events"].__func__


@pytest.fixture()
def extended_copies(monkeypatch: pytest.MonkeyPatch) -> list[DialogueStateTracker]:
    """Both speed-ups installed; returns the trackers copied instead of replayed."""
    from rasa.core.actions.action import ActionExtractSlots
    from rasa.core.actions.forms import FormAction

    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    monkeypatch.setattr(
        DialogueStateTracker, "from_events", DialogueStateTracker.__dict__["from_events"]
    )
    monkeypatch.setattr(FormAction, "_temporary_tracker", FormAction._temporary_tracker)
    monkeypatch.setattr(
        ActionExtractSlots,
        "_execute_validation_action",
        ActionExtractSlots._execute_validation_action,
    )
    rasa_speedups.copy_trackers_without_replay()
    fast_copy = DialogueStateTracker.copy
    copied: list[DialogueStateTracker] = []

    def copy(self: DialogueStateTracker) -> DialogueStateTracker:
        copied.append(self)
        return fast_copy(self)

    monkeypatch.setattr(DialogueStateTracker, "copy", copy)
    rasa_speedups.extend_copies_for_temporary_trackers()
    return copied


def test_temporary_trackers_from_copies_are_rasas_replays(
    extended_copies: list[DialogueStateTracker],
) -> None:
    """A temporary tracker built from the live one's copy is the tracker Rasa's replay builds,
    at every point of the conversation tests and of a conversation with undone turns and a
    restart; with slots defined otherwise, or outside the two callers, Rasa replays."""
    domain = project_domain()
    histories = [list(t.events) for t in _conversation_test_trackers()[::2]]
    histories.append(_undoing_conversation())
    compared = 0
    for events in histories:
        live = DialogueStateTracker(STRANGER, domain.slots)
        for event in events:
            live.update(event)
            extra = [SlotSet("requested_slot", "account_number"), ActionExecuted("account_form")]
            evts = live.events_after_latest_restart() + extra
            token = rasa_speedups._replaying.set(live)
            try:
                ours = DialogueStateTracker.from_events(live.sender_id, evts, slots=domain.slots)
            finally:
                rasa_speedups._replaying.reset(token)
            theirs = RASAS_FROM_EVENTS(DialogueStateTracker, live.sender_id, evts, domain.slots)
            assert _state_of(ours) == _state_of(theirs)
            compared += 1
    assert compared > 400
    # Copied wherever no restart cut the session: all but the last events of the last history.
    assert len(extended_copies) == compared - 3

    live = _conversation()
    evts = live.events_after_latest_restart()
    extended_copies.clear()
    DialogueStateTracker.from_events(live.sender_id, evts, slots=domain.slots)  # no live tracker
    token = rasa_speedups._replaying.set(live)
    try:
        other_slots = [s for s in domain.slots if s.name != "language"]
        other = DialogueStateTracker.from_events(live.sender_id, evts, slots=other_slots)
        # Slots given as a generator, read once to compare and still all there for the replay.
        generated = DialogueStateTracker.from_events(
            live.sender_id, evts, slots=(s for s in other_slots)
        )
        assert list(generated.slots) == [s.name for s in other_slots]
        someone_else = DialogueStateTracker.from_events("someone-else", evts, slots=domain.slots)
        # The same slots, as another load of the domain (a new model) defines them.
        reloaded = project_domain.__wrapped__()
        assert [s.name for s in reloaded.slots] == [s.name for s in domain.slots]
        DialogueStateTracker.from_events(live.sender_id, evts, slots=reloaded.slots)
    finally:
        rasa_speedups._replaying.reset(token)
    assert extended_copies == []
    assert "language" not in other.slots
    assert someone_else.sender_id == "someone-else"


def test_forms_and_slot_validation_get_their_temporary_trackers_from_copies(
    extended_copies: list[DialogueStateTracker], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasa.core.actions.action import ActionExtractSlots
    from rasa.core.actions.forms import FormAction

    domain = project_domain()
    live = _conversation()
    form = FormAction("account_form", None)
    additional = [SlotSet("account_number", "456789")]

    ours = form._temporary_tracker(live, additional, domain)

    assert extended_copies == [live]
    theirs = RASAS_FROM_EVENTS(
        DialogueStateTracker,
        live.sender_id,
        [
            *live.events,
            SlotSet("requested_slot", "account_number"),
            ActionExecuted("account_form"),
            *additional,
        ],
        domain.slots,
    )
    assert _state_of(ours) == _state_of(theirs)

    validated: list[DialogueStateTracker] = []

    async def run_custom_action(self: Any, name: str, *args: Any) -> list[Event]:
        validated.append(args[2])
        return []

    monkeypatch.setattr(ActionExtractSlots, "_run_custom_action", run_custom_action)
    extended_copies.clear()
    events = asyncio.run(
        ActionExtractSlots(None)._execute_validation_action(
            additional, CollectingOutputChannel(), None, live, domain
        )
    )
    assert events == additional
    assert extended_copies == [live]
    theirs = RASAS_FROM_EVENTS(
        DialogueStateTracker, live.sender_id, [*live.events, *additional], domain.slots
    )
    assert _state_of(validated[0]) == _state_of(theirs)


# Predictions called directly --------------------------------------------------------------------


@_with_model
def test_predictions_called_directly_give_what_rasas_call_gives(
    predict_graph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tensorflow as tf
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier
    from rasa.utils.tensorflow import models
    from rasa.utils.tensorflow.models import RasaModel

    metadata, runner, _ = predict_graph
    ((diet_node, diet),) = [(n, x._component) for n, x in nodes_of(runner, DIETClassifier).items()]
    (featurised,) = runner._graph_schema.nodes[diet_node].needs.values()
    texts = ["mera naya account number kya hai", "बिजली कब आएगी", "456789", "hi", "bill 1234567"]

    def predict() -> list[Any]:
        parsed = []
        for text in texts:
            messages = runner.run(
                inputs={"__message__": [UserMessage(text, sender_id=STRANGER)]},
                targets=[featurised],
            )[featurised]
            parsed.append(diet.process(messages)[0].as_dict())
        return parsed

    rasas = RasaModel._rasa_predict
    monkeypatch.setattr(RasaModel, "_rasa_predict", rasas)
    theirs = predict()

    # Rasa's call, counted: after the speed-up it runs only for each model's first prediction.
    calls: list[str] = []
    batches: list[Any] = []

    def counted(self: RasaModel, batch_in: Any) -> Any:
        calls.append(type(self).__name__)
        batches.append(batch_in)
        return rasas(self, batch_in)

    monkeypatch.setattr(RasaModel, "_rasa_predict", counted)
    monkeypatch.delitem(diet.model.__dict__, "_bijli_direct", raising=False)
    rasa_speedups.call_predictions_directly()
    ours = predict()

    assert calls == [type(diet.model).__name__]
    # The compiled function's own outputs, read back as keras reads them.
    concrete, specs = diet.model.__dict__["_bijli_direct"]
    raw = concrete._call_flat(
        [
            tf.convert_to_tensor(value, dtype_hint=spec.dtype)
            for value, spec in zip(batches[0], specs, strict=True)
        ],
        concrete.captured_inputs,
    )
    sync = models.tf_utils.sync_to_numpy_or_python_type
    _same_outputs(rasa_speedups.numpy_outputs(raw, sync), sync(raw))
    for a, b in zip(ours, theirs, strict=True):
        assert a["intent"]["name"] == b["intent"]["name"]
        assert a["entities"] == b["entities"]
        np.testing.assert_allclose(
            [r["confidence"] for r in a["intent_ranking"]],
            [r["confidence"] for r in b["intent_ranking"]],
            atol=1e-6,
        )

    # Inputs the compiled function cannot take go through Rasa's call, which refuses them.
    batch = diet.model.__dict__["_bijli_direct"][1]
    assert len(batch) > 1
    with pytest.raises(ValueError):
        diet.model._rasa_predict((np.zeros((1, 1), dtype=np.float64),) * len(batch))
    assert calls[-1] == type(diet.model).__name__


def test_in_process_actions_read_the_events_as_if_through_json(
    in_process: None, recorder: str
) -> None:
    """The session's events reach the in-process actions as Rasa's own dicts, not through
    JSON: the actions answer as they answer through JSON, and leave the events as they were."""
    from rasa.shared.core import events as rasa_events

    executor = rasa_speedups.executor_for(rasa_speedups.IN_PROCESS_ACTIONS)
    vouched = _conversation()
    vouched.update_with_events(
        [
            ActionExecuted("action_listen"),
            UserUttered("English please", {"name": "change_language", "confidence": 0.9}),
        ],
        project_domain(),
    )
    trackers = [vouched, *itertools.islice(_prediction_points(project_domain()), 0, None, 9)]
    assert len(trackers) > 20
    answered = 0
    for tracker in trackers:
        before = rasa_speedups.dumps([e.as_dict() for e in tracker.events])
        for name in executor.actions:
            ours = _run(name, tracker, recorder)
            body = RemoteAction(name, None)._action_call_format(tracker, project_domain())
            reference = asyncio.run(executor.run(json.loads(rasa_speedups.dumps(body))))
            theirs = rasa_events.deserialise_events(json.loads(json.dumps(reference))["events"])
            assert [e for e in ours if not isinstance(e, BotUttered)] == theirs
            answered += bool(theirs)
        assert rasa_speedups.dumps([e.as_dict() for e in tracker.events]) == before
    assert answered > 10  # answers with events, not only empty ones
    assert _Recorder.bodies == []


@_with_model
def test_sparse_features_joined_at_once_are_scipys(
    predict_graph: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every join DIET asks for while parsing the training data's texts gives the matrix
    Rasa's one-at-a-time ``hstack`` gives: the same data, rows, columns, types and shape."""
    import scipy.sparse
    from rasa.core.channels.channel import UserMessage
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message

    from tests.nlu.components import training_data

    metadata, runner, _ = predict_graph
    rasas = Message.__dict__["_combine_features"]
    monkeypatch.setattr(Message, "_combine_features", rasas)
    rasa_speedups.combine_sparse_features_at_once()
    ours = Message.__dict__["_combine_features"]
    assert ours is not rasas
    joined = []

    def both(features: list[Features], featurizers: list[str]) -> Features | None:
        theirs = rasas.__func__(features, featurizers)
        mine = ours.__func__(features, featurizers)
        if theirs is None or mine is None:
            assert theirs is mine
            return theirs
        assert (mine.type, mine.attribute, mine.origin) == (
            theirs.type,
            theirs.attribute,
            theirs.origin,
        )
        assert type(mine.features) is type(theirs.features) is scipy.sparse.coo_matrix
        assert mine.features.shape == theirs.features.shape
        for part in ("data", "row", "col"):
            a, b = getattr(mine.features, part), getattr(theirs.features, part)
            assert a.dtype == b.dtype and np.array_equal(a, b), part
        joined.append(len(features))
        return theirs

    monkeypatch.setattr(Message, "_combine_features", staticmethod(both))
    texts = [m.get("text") for m in training_data().intent_examples][::7]
    assert len(texts) > 100
    for text in texts:
        runner.run(
            inputs={"__message__": [UserMessage(text, sender_id=STRANGER)]},
            targets=[metadata.nlu_target],
        )
    assert len(joined) >= 2 * len(texts) and min(joined) >= 2

    # What it does not handle goes to Rasa's code: a single matrix, dense ones, a mismatch.
    one = Features(scipy.sparse.coo_matrix(np.eye(2)), "sentence", "text", "a")
    assert ours.__func__([one], ["a"]).features.nnz == 2
    dense = [Features(np.ones((1, 2)), "sentence", "text", o) for o in "ab"]
    assert ours.__func__(dense, ["a", "b"]).features.shape == (1, 4)
    taller = Features(scipy.sparse.coo_matrix(np.eye(3)), "sentence", "text", "b")
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        ours.__func__([one, taller], ["a", "b"])


def _same_outputs(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same_outputs(a[key], b[key])
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    else:
        assert a == b


def test_outputs_read_back_as_keras_reads_them() -> None:
    """numpy_outputs gives what keras's sync_to_numpy_or_python_type gives: NumPy arrays,
    Python numbers for scalars, dicts in their own key order; other structures go to keras."""
    import tensorflow as tf
    from rasa.utils.tensorflow import models

    sync = models.tf_utils.sync_to_numpy_or_python_type
    outputs = {
        "i_scores": tf.constant([[0.25, 0.75]]),
        "e_ids": tf.constant([[1, 0, 2]], dtype=tf.int64),
        "count": tf.constant(3),
        "diagnostic_data": {"text": {"attention": tf.zeros((1, 2)), "none": None}},
        "already": np.float32(0.5),
        "name": "DIET",
    }
    ours = rasa_speedups.numpy_outputs(outputs, sync)
    _same_outputs(ours, sync(outputs))
    assert ours["count"] == 3 and type(ours["count"]) is int
    for other in ([tf.constant(1.0)], {"pair": (tf.constant(1), tf.constant(2))}):
        _same_outputs(rasa_speedups.numpy_outputs(other, sync), sync(other))


def test_what_loading_made_is_frozen_once_the_model_is_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each Sanic worker freezes what is alive once Rasa's listener has loaded the model, and
    the action server once it has started."""
    import gc

    import rasa.core.run
    import rasa_sdk.endpoint
    from sanic import Sanic

    loaded = object()

    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        assert gc.get_freeze_count() == 0  # not before the model is loaded
        return loaded

    monkeypatch.setattr(rasa.core.run, "load_agent_on_start", load_agent_on_start)
    rasa_speedups.freeze_what_loading_made()
    assert gc.get_freeze_count() == 0
    try:
        assert asyncio.run(rasa.core.run.load_agent_on_start("model", None, None)) is loaded
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()

    registered: list[tuple[Any, str]] = []
    monkeypatch.setattr(
        Sanic, "register_listener", lambda self, fn, event: registered.append((fn, event))
    )
    monkeypatch.setattr(rasa_sdk.endpoint, "create_app", rasa_sdk.endpoint.create_app)
    monkeypatch.setattr("sanic.Sanic._app_registry", {})
    rasa_speedups.fast_action_server_requests()
    app = rasa_sdk.endpoint.create_app("bot.actions")
    assert (rasa_speedups._freeze_listener, "after_server_start") in registered
    try:
        asyncio.run(rasa_speedups._freeze_listener(app, None))
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
