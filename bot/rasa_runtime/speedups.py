"""Measured speed-ups to Rasa 3.6, installed by `bijli rasa-server` (and, for the action
server's half, `bijli actions-server`) before the server starts.

py-spy on the Rasa server at 10 concurrent senders: 53 % of its busy time was jsonschema
rebuilding a validator for every action-server response, 11 % was resolving event classes
while reading trackers from Redis, and then 16 % was ``json.dumps`` of the request body of each
action-server call (the whole session's events and the domain). Behaviour and error messages are
unchanged; see bench/RASA_RESULTS.md.

Since issue 14: the pure slot-mapping validation runs in Rasa's own process, the policies'
past states are built once and then extended event by event (across turns too, with the
tracker store's kept trackers), the deep copies meant for unwritten debug lines are skipped,
and action responses are checked against their own event's schema first. The model's graph runs
its nodes in a fixed order instead of through dask's scheduler, and RulePolicy asks only the
rules whose last previous action is the conversation's. Action calls send the events the tracker
store already encoded as that JSON; a form's and the slot validation's temporary trackers are
copies, not replays; DIET's sparse features are joined in one step and its outputs read back
without tf.nest; and what loading the model made is frozen out of the garbage collector's way.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """``json.dumps``, about fifteen times faster on a tracker; json.dumps where orjson refuses."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, default=_fragment_value)


def _fragment_value(value: Any) -> Any:
    """What an ``orjson.Fragment`` (JSON already written) holds, for json.dumps."""
    if isinstance(value, orjson.Fragment):
        return orjson.loads(orjson.dumps(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def install() -> None:
    """Apply the speed-ups (idempotent enough: each just rebinds a method)."""
    cache_action_result_validator()
    cache_event_types()
    fast_action_request_bodies()
    send_stored_events_as_stored()
    run_pure_actions_in_process()
    cache_applied_events()
    cache_past_states()
    skip_unlogged_deepcopies()
    run_graphs_in_order()
    match_rules_by_their_last_action()
    format_rule_states_only_for_debug_lines()
    validate_forms_once_at_activation()
    copy_trackers_without_replay()
    extend_copies_for_temporary_trackers()
    call_predictions_directly()
    combine_sparse_features_at_once()
    freeze_what_loading_made()


def cache_action_result_validator() -> None:
    """Validate action server responses with one compiled JSON schema validator.

    Rasa checks every action server response with ``jsonschema.validate``, which validates the
    (constant) response schema against its metaschema and builds a new validator on every call:
    about 28 ms of CPU per custom action call, several calls a turn, all on the event loop. The
    same checks, with the same errors, cost about 1 ms with a validator built once.

    Most of that millisecond is the events' ``oneOf``: each event is checked against all 23
    event schemas. Each of those schemas fixes the ``event`` name to its own constant, so an
    event can only ever match the one its name picks; a valid response is recognised by
    checking each event against that one alone (``valid_by_event_name``). Anything that fails
    that check is checked again in full, so that errors are Rasa's own.
    """
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import DOCS_BASE_URL, RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    quick_check = valid_by_event_name(schema, validator_class)

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
        if quick_check(result):
            return True
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    RemoteAction._validate_action_result = _validate_action_result


def valid_by_event_name(schema: dict[str, Any], validator_class: Any) -> Any:
    """A check that says True only of responses the whole ``schema`` accepts (else False).

    The response schema's events are ``{type: array, items: {type, properties, required,
    oneOf: [one schema per event name]}}``, each alternative fixing ``properties.event.const``
    to a different name. An event whose name picks alternative A matches no other, so it
    satisfies the ``oneOf`` exactly when it satisfies A: ``items`` without the ``oneOf`` and
    with A alone is the same test for it. The rest of the response (``responses``) is checked
    with the schema minus ``events``. Should Rasa's schema ever have another shape, the check
    says False to everything and the full validator decides.
    """
    events = schema.get("properties", {}).get("events", {})
    items = dict(events.get("items", {}))
    alternatives = items.pop("oneOf", None)
    names = [
        alt.get("properties", {}).get("event", {}).get("const")
        for alt in alternatives or []
        if isinstance(alt, dict)
    ]
    if (
        set(events) != {"type", "items"}
        or events["type"] != "array"
        or not alternatives
        or len(names) != len(alternatives)
        or not all(isinstance(name, str) for name in names)
        or len(set(names)) != len(names)
        or "event" not in items.get("required", ())
    ):
        return lambda result: False
    by_name = {
        name: validator_class({**items, "allOf": [alt]})
        for name, alt in zip(names, alternatives, strict=True)
    }
    rest = validator_class(
        {
            **schema,
            "properties": {k: v for k, v in schema["properties"].items() if k != "events"},
        }
    )

    def check(result: Any) -> bool:
        if not isinstance(result, dict) or not rest.is_valid(result):
            return False
        if "events" not in result:
            return True
        events = result["events"]
        if not isinstance(events, list):
            return False
        for event in events:
            name = event.get("event") if isinstance(event, dict) else None
            event_validator = by_name.get(name) if isinstance(name, str) else None
            if event_validator is None or not event_validator.is_valid(event):
                return False
        return True

    return check


def cache_event_types() -> None:
    """Remember which Event class each event type name resolves to.

    Reading a tracker from Redis resolves every stored event's class by walking all subclasses
    of ``Event`` (``Event.resolve_by_type``): a few hundred events a turn, each walk about 30 µs.
    A name found once resolves to the same class again; unknown names still take the walk.
    """
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    resolved: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> type[Event] | None:
        cls = resolved.get(type_name)
        if cls is None:
            cls = original(type_name, default)
            if cls is not None and cls is not default:
                resolved[type_name] = cls
        return cls

    Event.resolve_by_type = staticmethod(resolve_by_type)


#: Seconds a kept connection to the action server may sit idle before this side closes it: under
#: the action server's own keep-alive (Sanic's KEEP_ALIVE_TIMEOUT, 5 s), so that the server never
#: closes a connection that Rasa is about to send a call on.
ACTION_KEEPALIVE_S = 2.0


def fast_action_request_bodies() -> None:
    """Encode action-server request bodies with orjson, on kept connections.

    Every custom action call posts the current session's events (and, for validation actions,
    the domain) and aiohttp encodes it with ``json.dumps``: 1.8 ms a call after 20 turns, several
    calls a turn. orjson writes the same JSON (UTF-8 instead of \\u escapes) in about 0.1 ms.

    Rasa builds a new aiohttp session for each call in ``EndpointConfig.session``, and with it a
    new cookie jar (the costliest part of a session, about 5 % of the Rasa server's busy time) and
    a new connection to the action server, which it closes after the one call. This builds the
    same session, with the same headers, auth and timeout, and orjson as its JSON encoder, but
    with no cookie jar (a session that lives for one call never sends a cookie back anyway) and
    on one connection pool per event loop that outlives it (``connector_owner=False``), so calls
    reuse open connections. The pool has no size limit, as Rasa's one-call sessions had none,
    and closes a connection idle for ``ACTION_KEEPALIVE_S``.
    """
    import asyncio
    import weakref

    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

    pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.TCPConnector] = (
        weakref.WeakKeyDictionary()
    )

    def pool() -> aiohttp.TCPConnector:
        loop = asyncio.get_running_loop()
        connector = pools.get(loop)
        if connector is None or connector.closed:
            connector = pools[loop] = aiohttp.TCPConnector(
                limit=0, keepalive_timeout=ACTION_KEEPALIVE_S
            )
        return connector

    def session(self: EndpointConfig) -> aiohttp.ClientSession:
        auth = (
            aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"])
            if self.basic_auth
            else None
        )
        return aiohttp.ClientSession(
            headers=self.headers,
            auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            json_serialize=dumps,
            connector=pool(),
            connector_owner=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    EndpointConfig.session = session


#: Where an event keeps the JSON the tracker store wrote or read for it: (timestamp, metadata
#: dict, JSON). Rasa changes an event only by giving it a new timestamp or a new metadata dict,
#: and only as it joins a tracker (``DialogueStateTracker.update``, ``update_with_events``,
#: which a form's temporary tracker runs before the real one); an event whose timestamp or
#: metadata dict is no longer the kept one is encoded afresh.
_STORED_JSON = "_bijli_stored_json"


def remember_stored_json(event: Any, text: str) -> None:
    """Keep on ``event`` the JSON the tracker store wrote for it, or read it from."""
    event.__dict__[_STORED_JSON] = (event.timestamp, event.metadata, text)


def stored_json(event: Any) -> str | None:
    """The JSON the tracker store wrote or read for ``event``, if the event has not changed."""
    kept = event.__dict__.get(_STORED_JSON)
    if kept is not None and kept[0] == event.timestamp and kept[1] is event.metadata:
        return kept[2]
    return None


def action_call_body(action: Any, tracker: Any, domain: Any, *, stored: bool) -> dict[str, Any]:
    """Rasa's ``RemoteAction._action_call_format``: the body of a call to the action server.

    With ``stored``, each event the tracker store has written or read goes in as that JSON
    (an ``orjson.Fragment``), not as a new dict, and the domain as the JSON it was the first
    time; every other event, and the rest of the body, is as Rasa builds it.
    tests/rasa_runtime/test_speedups.py checks that the two bodies are the same JSON.
    """
    import rasa
    from rasa.shared.core.trackers import EventVerbosity

    state = tracker.current_state(EventVerbosity.NONE)
    if stored:
        state["events"] = [
            e.as_dict() if (text := stored_json(e)) is None else orjson.Fragment(text)
            for e in tracker.events
        ]
    else:
        state["events"] = [e.as_dict() for e in tracker.events]
    body = {
        "next_action": action._name,
        "sender_id": tracker.sender_id,
        "tracker": state,
        "version": rasa.__version__,
    }
    selective = action._is_selective_domain_enabled()
    if not selective or domain.does_custom_action_explicitly_need_domain(action.name()):
        body["domain"] = _encoded_domain(domain.as_dict()) if stored else domain.as_dict()
    return body


#: The domain's dict (``Domain.as_dict`` returns the same one every time) and its JSON: a new
#: model's domain is another dict, and is encoded again.
_domain_json: list[Any] = [None, None]


def _encoded_domain(data: dict[str, Any]) -> Any:
    """The domain as JSON, encoded once (about 99 kB, for each action that needs it)."""
    if _domain_json[0] is not data:
        _domain_json[:] = [data, orjson.Fragment(dumps(data))]
    return _domain_json[1]


def send_stored_events_as_stored() -> None:
    """Send the session's earlier events, and the domain, to the action server as JSON already
    written.

    Every call to the action server carries the whole session: Rasa turns each event into a new
    dict (``as_dict``) and encodes it, on every call, although all but the current turn's events
    were encoded before, when the tracker store wrote them or read them back (Rasa's events
    read back into the same dicts: tests/rasa_runtime/test_tracker_store.py). Building and
    encoding the events was 17 % of the Rasa server's busy time with every sender unknown
    (py-spy). The tracker store now keeps each event's JSON on the event
    (``remember_stored_json``) and the body takes it as it is; the domain (validation calls)
    is encoded once. The action server gets the same JSON as before.
    """
    from rasa.core.actions.action import RemoteAction

    def _action_call_format(self: RemoteAction, tracker: Any, domain: Any) -> dict[str, Any]:
        return action_call_body(self, tracker, domain, stored=True)

    RemoteAction._action_call_format = _action_call_format


def fast_action_server_requests() -> None:
    """Parse the action server's request bodies with orjson.

    Half the action server's busy time went to parsing each call's body (the whole session's
    events and the domain) with ujson. rasa_sdk builds its Sanic app in ``create_app``; this
    gives that app a request class whose ``json`` uses orjson, Sanic's own hook for it
    (``request_class``). A body that is not JSON still gets Sanic's 400.
    """
    import rasa_sdk.endpoint
    from sanic import Sanic
    from sanic.request import Request

    class OrjsonRequest(Request):
        def load_json(self, loads: Any = orjson.loads) -> Any:
            return super().load_json(loads=loads)

    create_app = rasa_sdk.endpoint.create_app

    def create_app_with_orjson(*args: Any, **kwargs: Any) -> Sanic:
        app = create_app(*args, **kwargs)
        app.request_class = OrjsonRequest
        # Started and the actions imported: what is alive now lives as long as the server.
        app.register_listener(_freeze_listener, "after_server_start")
        return app

    rasa_sdk.endpoint.create_app = create_app_with_orjson


#: Custom actions that read nothing but the tracker (no database, no Redis, no network): Rasa
#: runs them in its own process instead of posting the session to the action server.
#: ``action_validate_slot_mappings`` runs after every user message, twice when a form starts.
IN_PROCESS_ACTIONS = (
    "bot.actions.slots:ValidateSlotMappings",
    "bot.actions.slots:ActionChangeLanguage",
)


def executor_for(actions: Iterable[str]) -> Any:
    """A rasa_sdk ``ActionExecutor`` with the actions named ``module:Class`` registered, as the
    action server registers them."""
    import importlib

    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    for dotted in actions:
        module, _, name = dotted.partition(":")
        executor.register_action(getattr(importlib.import_module(module), name))
    return executor


def run_pure_actions_in_process(actions: tuple[str, ...] = IN_PROCESS_ACTIONS) -> None:
    """Run the named rasa_sdk actions inside Rasa's process, as Rasa Pro's ``actions_module``.

    Every other custom action still goes to the action server. A call runs what the action
    server would run for it (rasa_sdk's ``ActionExecutor``) on the same request body, taken
    through JSON as the server gets it, and its response goes through JSON and the rest of
    Rasa's ``RemoteAction.run`` (response validation, responses, events) unchanged. What is
    saved is the HTTP round trip and the action server's reading of the whole session and domain
    (about 135 kB after 20 turns). A rejection is Rasa's ``ActionExecutionRejection``, as the
    server's 400 would be; any other error is the ``RasaException`` a 500 would be. The domain
    goes through JSON once, not on every call (none of these actions changes it). The session's
    events are not taken through JSON either: each is Rasa's own ``as_dict()``, a new dict per
    call whose values are the event's, which these actions only read (their answers are the
    same as through JSON, and the events stay as they were: tests/rasa_runtime). Encoding and
    decoding the whole session was 13 % of the Rasa process with every sender unknown (py-spy).

    Only the code that ran in the action server moves: the actions read the sender only from
    the gateway's signed vouch in the latest message's metadata (bot.actions.turn.sender_of),
    with the same secret (BIJLI_GATEWAY_SECRET, which Rasa's gateway channel checks too).
    Actions are named by dotted path: bot.rasa_runtime does not import bot.actions.
    """
    import logging

    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.shared.core import events
    from rasa.shared.exceptions import RasaException
    from rasa_sdk.interfaces import ActionExecutionRejection as SdkRejection

    logger = logging.getLogger("rasa.core.actions.action")
    executor = executor_for(actions)
    local = frozenset(executor.actions)
    remote_run = RemoteAction.run
    # The domain is most of a call's body (about 95 of 120 kB) and does not change: it goes
    # through JSON once. ``Domain.as_dict`` returns the same object every time; the entry holds
    # it, so a new domain (a new model) is never mistaken for it.
    domain_json: list[Any] = [None, None]

    def through_json(data: dict[str, Any]) -> Any:
        if domain_json[0] is not data:
            domain_json[:] = [data, orjson.loads(dumps(data))]
        return domain_json[1]

    async def run(
        self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any
    ) -> list[Any]:
        if self.name() not in local:
            return await remote_run(self, output_channel, nlg, tracker, domain)
        body = action_call_body(self, tracker, domain, stored=False)
        domain_data = body.pop("domain", None)
        session = body["tracker"].pop("events", None)
        call = orjson.loads(dumps(body))
        if session is not None:
            call["tracker"]["events"] = session
        if domain_data is not None:
            call["domain"] = through_json(domain_data)
        try:
            result = await executor.run(call)
        except SdkRejection as e:
            exception = ActionExecutionRejection(e.action_name, e.message)
            logger.error(exception.message)
            raise exception from e
        except Exception as e:
            logger.exception("in-process custom action %r failed", self.name())
            raise RasaException(f"Failed to execute custom action '{self.name()}'") from e
        response = orjson.loads(dumps(result))
        self._validate_action_result(response)
        bot_messages = await self._utter_responses(
            response.get("responses", []), output_channel, nlg, tracker
        )
        return bot_messages + events.deserialise_events(response.get("events", []))

    RemoteAction.run = run


@dataclass(eq=False)
class _Applied:
    """A tracker's applied events, for its first ``count`` events (the first and last named)."""

    count: int
    first: Any
    last: Any
    loop_names: frozenset[str]
    applied: list[Any]


def cache_applied_events() -> None:
    """Work out a tracker's applied events for the events added since the last time only.

    ``DialogueStateTracker.applied_events`` goes through the whole session (a few hundred
    events, each through several ``isinstance`` checks on Rasa's event classes) and Rasa asks
    for it again and again: before each turn's session check, for every past-states walk, for
    every replay. In a 30-turn session it was a quarter of the Rasa process's CPU.

    Rasa's loop is a fold: it goes through the events in order, each one appending to the list
    or undoing its end, and reads nothing but the list so far, the event and the names of all
    the loops activated anywhere in the tracker. So the list after N events, kept on the
    tracker, is taken further with the events after them, as long as the tracker still starts
    with those N events (same first and N-th event objects; events are only appended) and no
    new loop name appeared (a new one changes how earlier runs of that action count). Anything
    else goes through the whole session as Rasa does. Each caller gets its own list.
    """
    from rasa.shared.core.events import (
        ActionExecuted,
        ActionReverted,
        ActiveLoop,
        Restarted,
        SessionStarted,
        UserUtteranceReverted,
        UserUttered,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    def fold(
        tracker: DialogueStateTracker,
        events: Any,
        loop_names: frozenset[str],
        applied: list[Any],
    ) -> list[Any]:
        # Rasa 3.6's loop in ``applied_events``, step for step.
        for event in events:
            if isinstance(event, (Restarted, SessionStarted)):
                applied = []
            elif isinstance(event, ActionReverted):
                tracker._undo_till_previous(ActionExecuted, applied)
            elif isinstance(event, UserUtteranceReverted):
                tracker._undo_till_previous(UserUttered, applied)
                tracker._undo_till_previous(ActionExecuted, applied)
            elif (
                isinstance(event, ActionExecuted)
                and event.action_name in loop_names
                and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
            ):
                tracker._undo_till_previous_loop_execution(event.action_name, applied)
            else:
                applied.append(event)
        return applied

    def names_of_loops(events: Any) -> frozenset[str]:
        return frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)

    def applied_events(self: DialogueStateTracker) -> list[Any]:
        events = self.events
        count = len(events)
        kept: _Applied | None = self.__dict__.get("_bijli_applied")
        applied: list[Any] | None = None
        if (
            kept is not None
            and 0 < kept.count <= count
            and events[0] is kept.first
            and events[kept.count - 1] is kept.last
        ):
            new = list(itertools.islice(events, kept.count, None))
            loop_names = kept.loop_names | names_of_loops(new)
            if loop_names == kept.loop_names:
                applied = fold(self, new, loop_names, list(kept.applied))
        if applied is None:
            loop_names = names_of_loops(events)
            applied = fold(self, events, loop_names, [])
        if count:
            self.__dict__["_bijli_applied"] = _Applied(
                count, events[0], events[-1], loop_names, list(applied)
            )
        return applied

    DialogueStateTracker.applied_events = applied_events


@dataclass(eq=False)
class _Walk:
    """Rasa's walk over a tracker's applied events (``Domain.states_for_tracker_history``),
    stopped after the events in ``applied``, to be taken further when more come."""

    domain: Any
    options: tuple[bool, bool]
    rule_only: Any
    #: The applied events walked so far, and the replayed tracker after them.
    applied: list[Any]
    tracker: Any
    #: The state before each ActionExecuted walked so far (the last, current state is not).
    states: list[dict[str, Any]]
    #: The walk's two running variables, as Rasa names them.
    last_ml_action_sub_state: Any = None
    turn_was_hidden: bool = False


def cache_past_states() -> None:
    """Build a tracker's dialogue states once, and then only the states of its new events.

    Every prediction, RulePolicy (twice: the text, then the intent of the latest message) and
    MemoizationPolicy (and TEDPolicy, when configured) each ask the tracker for its past
    states, and each time Rasa replays the whole session event by event to build them
    (``past_states``): about a quarter of the Rasa process's CPU on a 20-turn session, and
    growing with the session. Rule asks with one set of options, Memo (and TED) with another;
    the states only depend on those options, the domain and the tracker's applied events.

    Rasa's walk (``Domain.states_for_tracker_history``) replays the applied events on a fresh
    tracker and takes a state before each ``ActionExecuted``, then one of the end. Everything
    before the last event depends only on the events before it, so the walk is kept on the
    tracker object, per domain and options, where it stopped, and the next call walks only the
    applied events that were not there then. Events are compared by identity: a turn appends
    new event objects, and bot.rasa_runtime.tracker_store keeps the same objects from turn to
    turn. When the applied events walked are not the start of the tracker's applied events (an
    undone turn, a restart, a form's repeated run that undoes the turn before it), the walk
    starts again from the beginning. The end state is taken afresh every call.

    Callers change the states they get (the featurizer deletes the text or the intent of the
    last user turn), so each gets its own copy of every state and sub-state, as if built
    afresh; the sub-states' values are immutable.
    """
    import operator

    from rasa.shared.core.constants import PREVIOUS_ACTION
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    def copy_states(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {name: dict(sub) if isinstance(sub, dict) else sub for name, sub in state.items()}
            for state in states
        ]

    def step(walk: _Walk, tr: Any, hide_rule_turn: bool, keep: bool) -> dict[str, Any] | None:
        """One iteration of Rasa's loop in ``states_for_tracker_history``, on ``walk``'s
        running variables (left as they were unless ``keep``); the state it appends, or None."""
        domain = walk.domain
        omit_unset_slots, ignore_rule_only_turns = walk.options
        last_ml_action_sub_state = walk.last_ml_action_sub_state
        turn_was_hidden = walk.turn_was_hidden
        if ignore_rule_only_turns:
            if not turn_was_hidden:
                last_ml_action_sub_state = domain._get_prev_action_sub_state(tr)
            if not tr.followup_action and not tr.latest_action_name == tr.active_loop_name:
                turn_was_hidden = hide_rule_turn
        if keep:
            walk.last_ml_action_sub_state = last_ml_action_sub_state
            walk.turn_was_hidden = turn_was_hidden
        if ignore_rule_only_turns and turn_was_hidden:
            return None
        state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
        if ignore_rule_only_turns:
            domain._remove_rule_only_features(state, walk.rule_only)
            if walk.states:
                domain._substitute_rule_only_user_input(state, walk.states[-1])
            if last_ml_action_sub_state:
                state[PREVIOUS_ACTION] = last_ml_action_sub_state
        state = domain._clean_state(state)
        if keep:
            walk.states.append(state)
        return state

    def past_states(
        self: DialogueStateTracker,
        domain: Any,
        omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        options = (omit_unset_slots, ignore_rule_only_turns)
        # Rasa reads rule_only_data only to ignore rule-only turns (RulePolicy, which does not,
        # passes a new dict each time).
        rule_only = rule_only_data if ignore_rule_only_turns else None
        applied = self.applied_events()
        walks: list[_Walk] = self.__dict__.setdefault("_bijli_walks", [])
        # The domain by identity (the walk holds it, so its id is not reused).
        walk = next(
            (
                w
                for w in walks
                if w.domain is domain and w.options == options and w.rule_only == rule_only
            ),
            None,
        )
        if walk is not None and (
            len(walk.applied) > len(applied) or not all(map(operator.is_, walk.applied, applied))
        ):
            walks.remove(walk)
            walk = None
        if walk is None:
            walk = _Walk(domain, options, copy.deepcopy(rule_only), [], self.init_copy(), [])
            # Walks for another domain (an older model) are of no more use.
            walks[:] = [w for w in walks if w.domain is domain]
            walks.append(walk)
        tr = walk.tracker
        for event in applied[len(walk.applied) :]:
            if isinstance(event, ActionExecuted):
                step(walk, tr, event.hide_rule_turn, keep=True)
            tr.update(event)
        walk.applied = applied
        last = step(walk, tr, False, keep=False)
        return copy_states(walk.states if last is None else [*walk.states, last])

    DialogueStateTracker.past_states = past_states


#: Rasa modules whose only use of ``copy.deepcopy`` is for the values of debug log lines.
DEBUG_DEEPCOPY_MODULES = (
    "rasa.core.processor",
    "rasa.core.policies.rule_policy",
    "rasa.core.policies.memoization",
)


def skip_unlogged_deepcopies(modules: tuple[str, ...] = DEBUG_DEEPCOPY_MODULES) -> None:
    """Deep-copy the values of Rasa's debug log lines only when debug lines are written.

    Rasa 3.6 passes ``copy.deepcopy(...)`` of the states, parse data and events to
    ``structlogger.debug`` in these modules, copied before the logger drops the line at the
    INFO level it runs at. Each of these modules uses ``copy`` for nothing else (checked
    against Rasa's source in tests/rasa_runtime). With debug logging on, the copies are made.
    """
    import importlib
    import logging
    import types

    def shim(logger: logging.Logger) -> types.SimpleNamespace:
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            # structlog's stdlib level filter asks the module's logger the same question.
            if logger.isEnabledFor(logging.DEBUG):
                return copy.deepcopy(value, memo)
            return value

        return types.SimpleNamespace(deepcopy=deepcopy)

    for name in modules:
        module = importlib.import_module(name)
        if getattr(module, "copy", None) is copy:
            module.copy = shim(logging.getLogger(name))  # type: ignore[attr-defined]


def run_graphs_in_order() -> None:
    """Run the model's graph by calling its nodes in a fixed order, without dask's scheduler.

    Rasa runs the predict graph through ``dask.get`` about three times a turn (the NLU, then each
    action prediction): dask builds, orders and schedules a task graph each time, which cost
    about a tenth of the Rasa process's CPU (cProfile, headline mix). Here the needed nodes of
    each (targets, inputs) pair are put in dependency order once, and then each node is called
    with its inputs as dask calls it: ``node(*outputs of its needs)``, each output a
    ``(node name, value)`` pair, an input named like a node standing in for that node. Only what
    the targets need runs, as with dask's culling; errors pass as Rasa's runner passes them.
    """
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner.dask import DaskGraphRunner

    def plan(
        runner: DaskGraphRunner, targets: tuple[str, ...], given: frozenset[str]
    ) -> list[tuple[Any, tuple[str, ...]]]:
        nodes = runner._graph_schema.nodes
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name in given or name not in nodes:
                return
            seen.add(name)
            for need in nodes[name].needs.values():
                visit(need)
            order.append(name)

        for target in targets:
            visit(target)
        return [(name, tuple(nodes[name].needs.values())) for name in order]

    def run(
        self: DaskGraphRunner,
        inputs: dict[str, Any] | None = None,
        targets: list[str] | None = None,
    ) -> dict[str, Any]:
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        given = frozenset(inputs or ())
        orders = self.__dict__.setdefault("_bijli_orders", {})
        steps = orders.get((run_targets, given))
        if steps is None:
            steps = orders[run_targets, given] = plan(self, run_targets, given)
        values: dict[str, Any] = {name: (name, value) for name, value in (inputs or {}).items()}
        nodes = self._instantiated_nodes
        try:
            for name, needs in steps:
                # A need that is neither a node nor an input reaches the node as its bare
                # name, as dask passes an unknown key (GraphNode then reports it missing).
                values[name] = nodes[name](*(values.get(need, need) for need in needs))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(values[target] for target in run_targets)

    DaskGraphRunner.run = run


def match_rules_by_their_last_action() -> None:
    """RulePolicy's rule matching, asking only the rules that can apply.

    ``RulePolicy._get_possible_keys`` walks back over the conversation's states and keeps the
    rules that apply at each step, asking ``_is_rule_applicable`` of every rule (hundreds) at
    the last state. A rule whose state there names a previous action applies only where the
    conversation's previous action is that one (``_does_rule_match_state``), so at the last
    state only those rules and the rules naming none are asked; a rule shorter than the step
    applies without asking (Rasa's own first test), and once every rule kept is shorter than
    the step the walk stops. Each question left is asked of Rasa's ``_is_rule_applicable``.
    """
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.shared.core.constants import PREVIOUS_ACTION, SHOULD_NOT_BE_SET
    from rasa.shared.nlu.constants import ACTION_NAME

    @dataclass(frozen=True)
    class Index:
        lengths: dict[str, int]  # rule key -> number of states
        by_last_action: dict[str, frozenset[str]]  # previous action at the last state -> keys
        any_last_action: frozenset[str]  # the keys naming no previous action there

    def index(policy: RulePolicy, lookup: dict[str, str]) -> Index:
        lengths: dict[str, int] = {}
        by_action: dict[str, set[str]] = {}
        others: set[str] = set()
        for key in lookup:
            states = policy._rule_key_to_state(key)
            lengths[key] = len(states)
            name = states[-1].get(PREVIOUS_ACTION, {}).get(ACTION_NAME) if states else None
            if isinstance(name, str) and name and name != SHOULD_NOT_BE_SET:
                by_action.setdefault(name, set()).add(key)
            else:
                others.add(key)
        frozen = {name: frozenset(keys) for name, keys in by_action.items()}
        return Index(lengths, frozen, frozenset(others))

    def _get_possible_keys(self: RulePolicy, lookup: dict[str, str], states: list[Any]) -> set[str]:
        indexes = self.__dict__.setdefault("_bijli_rule_index", {})
        found = indexes.get(id(lookup))
        if found is None or found[0] is not lookup or len(found[1].lengths) != len(lookup):
            found = indexes[id(lookup)] = (lookup, index(self, lookup))
        rules: Index = found[1]
        lengths = rules.lengths
        possible: set[str] = set(lookup)
        for i, state in enumerate(reversed(states)):
            if all(lengths[key] <= i for key in possible):
                break
            asked: Iterable[str] = possible
            if i == 0:
                name = state.get(PREVIOUS_ACTION, {}).get(ACTION_NAME)
                asked = rules.any_last_action | rules.by_last_action.get(name, frozenset())
            possible = {
                key for key in asked if lengths[key] <= i or self._is_rule_applicable(key, i, state)
            }
        return possible

    RulePolicy._get_possible_keys = _get_possible_keys


def format_rule_states_only_for_debug_lines() -> None:
    """Write RulePolicy's states out as text only when its debug line is written.

    ``RulePolicy._find_action_from_rules`` formats every prediction's states
    (``format_tracker_states``) for one ``structlogger.debug`` line, and nothing else reads the
    text. At the INFO level the server runs at, the line is dropped: the text is then left
    empty. With debug lines on, it is Rasa's text.
    """
    import logging

    from rasa.core.policies import rule_policy

    formatter = rule_policy.RulePolicy.format_tracker_states
    logger = logging.getLogger(rule_policy.__name__)

    def format_tracker_states(states: list[dict[str, Any]]) -> str:
        # structlog's stdlib level filter asks the module's logger the same question.
        return formatter(states) if logger.isEnabledFor(logging.DEBUG) else ""

    rule_policy.RulePolicy.format_tracker_states = staticmethod(format_tracker_states)


def validate_forms_once_at_activation() -> None:
    """Ask a form's validation action once when the form starts, not twice.

    Rasa's ``FormAction`` calls ``validate_<form>`` at activation with the slots already filled,
    then again in ``do`` with the slots extracted since the user's message, unless the first call
    returned events: an empty answer is taken for "not validated". For a form started with no
    slot filled and nothing extracted (an unknown sender's question: the account form asks for
    the number), both calls send the same candidates and the same message, and each is an action
    server round trip carrying the whole session. Here the second is left out when, and only
    when, it would repeat the first: ``do`` asks again only when the activation returned nothing
    but the form's ``ActiveLoop`` (so the first call answered no events and extracted no slot),
    and the skip also needs the same candidates, the requested slot empty in both calls, and no
    other loop active (so Rasa's ``validate`` could not reject either). The one difference left
    between Rasa's two calls is that the first sees the form as active; the project's validation
    actions do not read it with nothing to validate (bot/actions). Anything else runs as Rasa
    runs it.
    """
    from rasa.core.actions.forms import FormAction
    from rasa.shared.core.constants import REQUESTED_SLOT

    rasa_activate_loop = FormAction._activate_loop
    rasa_validate_slots = FormAction.validate_slots
    rasa_validate_if_required = FormAction._validate_if_required
    # Rasa makes a new FormAction for every run, so the instance carries the activation's call
    # from ``_activate_loop`` to ``do`` within that run.
    activating, answered = "_bijli_activating", "_bijli_activation_candidates"

    async def _activate_loop(self: FormAction, *args: Any, **kwargs: Any) -> list[Any]:
        self.__dict__[activating] = True
        try:
            return await rasa_activate_loop(self, *args, **kwargs)
        finally:
            self.__dict__.pop(activating, None)

    async def validate_slots(
        self: FormAction, slot_candidates: dict[str, Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        events = await rasa_validate_slots(self, slot_candidates, *args, **kwargs)
        if self.__dict__.get(activating):
            self.__dict__[answered] = dict(slot_candidates)
        return events

    async def _validate_if_required(
        self: FormAction, tracker: Any, domain: Any, *args: Any, **kwargs: Any
    ) -> list[Any]:
        activation = self.__dict__.pop(answered, None)
        if (
            activation is not None
            and not tracker.active_loop
            and tracker.get_slot(REQUESTED_SLOT) is None
            and activation == self._get_slot_extractions(tracker, domain)
        ):
            return []
        return await rasa_validate_if_required(self, tracker, domain, *args, **kwargs)

    FormAction._activate_loop = _activate_loop
    FormAction.validate_slots = validate_slots
    FormAction._validate_if_required = _validate_if_required


def copy_trackers_without_replay() -> None:
    """Copy a tracker's state instead of replaying its whole history into a new one.

    ``DialogueStateTracker.copy`` builds a new tracker and applies every event of the session to
    it again; Rasa copies the tracker before every action it runs (``_run_action``, and a
    form's activation), each copy a few hundred events long: about 5 % of the Rasa process
    (cProfile, every sender unknown). Only ``DialogueStateTracker`` and the events change a
    tracker's state, always through ``update``, so the state is what the replay would rebuild:
    the copy takes the same events and the same values, with its own slots and its own active
    loop (events change both in place). Anything a replay would set that is not listed here is
    caught by tests/rasa_runtime/test_speedups.py, which compares every attribute.
    """
    from rasa.shared.core.trackers import DialogueStateTracker

    def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
        new = self.init_copy()
        new.events.extend(self.events)
        for name, slot in self.slots.items():
            new.slots[name] = copy.copy(slot)
        new._paused = self._paused
        new.followup_action = self.followup_action
        new.latest_action = None if self.latest_action is None else dict(self.latest_action)
        new.latest_message = self.latest_message
        new.latest_bot_utterance = self.latest_bot_utterance
        new.active_loop = None if self.active_loop is None else copy.copy(self.active_loop)
        return new

    DialogueStateTracker.copy = copy_tracker


#: The live tracker whose temporary copy Rasa is building (see below), in this task only.
_replaying: ContextVar[Any] = ContextVar("bijli_replaying", default=None)


def _same_slot_definitions(tracker_slots: dict[str, Any], slots: list[Any]) -> bool:
    """Whether ``slots`` define the tracker's slots: the same slots, each a copy of the same
    definition. A tracker's slots are shallow copies (``copy.copy``) of the domain's, so a copy
    shares its definition's ``mappings`` list; a new domain's slots have lists of their own."""
    if len(slots) != len(tracker_slots):
        return False
    for slot in slots:
        mine = tracker_slots.get(slot.name)
        if (
            mine is None
            or type(mine) is not type(slot)
            or mine.mappings is not slot.mappings
            or mine.initial_value != slot.initial_value
            or mine.influence_conversation != slot.influence_conversation
        ):
            return False
    return True


def extend_copies_for_temporary_trackers() -> None:
    """Build a form's and the slot-mapping validation's temporary trackers from a copy.

    For each call to ``validate_<form>`` and ``action_validate_slot_mappings`` (after every user
    message) Rasa builds a temporary tracker with ``DialogueStateTracker.from_events``: a new
    tracker that replays the whole session, then the new events (``FormAction.
    _temporary_tracker``, ``ActionExtractSlots._execute_validation_action``). That was 7 % of
    the Rasa server's busy time with every sender unknown (py-spy). While those two run, a
    ``from_events`` given the live tracker's own events (the same objects, from the first on: no
    restart cut them), the same sender and slots defined alike, instead copies the live tracker
    (``DialogueStateTracker.copy``: the state a replay builds, see
    ``copy_trackers_without_replay``) and applies only the new events, as the replay would.
    Anything else replays as before. tests/rasa_runtime/test_speedups.py compares the trackers.
    """
    from rasa.core.actions.action import ActionExtractSlots
    from rasa.core.actions.forms import FormAction
    from rasa.shared.core.trackers import DialogueStateTracker

    rasa_from_events = DialogueStateTracker.__dict__["from_events"].__func__
    rasa_temporary_tracker = FormAction._temporary_tracker
    rasa_validation = ActionExtractSlots._execute_validation_action

    def from_events(
        cls: type[DialogueStateTracker],
        sender_id: str,
        evts: list[Any],
        slots: Any = None,
        max_event_history: int | None = None,
        sender_source: str | None = None,
        domain: Any = None,
    ) -> DialogueStateTracker:
        live = _replaying.get()
        if live is not None and slots is not None and not isinstance(slots, list):
            slots = list(slots)  # read twice below
        if (
            live is not None
            and cls is DialogueStateTracker
            and type(live) is DialogueStateTracker
            and sender_id == live.sender_id
            and max_event_history is None
            and live._max_event_history is None
            and sender_source is None
            and live.sender_source is None
            and not live.is_rule_tracker
            and slots is not None
            and len(evts) >= len(live.events)
            and all(a is b for a, b in zip(evts, live.events, strict=False))
            and _same_slot_definitions(live.slots, slots)
        ):
            tracker = live.copy()
            for event in evts[len(live.events) :]:
                tracker.update(event, domain)
            return tracker
        return rasa_from_events(
            cls, sender_id, evts, slots, max_event_history, sender_source, domain
        )

    def _temporary_tracker(self: FormAction, current_tracker: Any, *args: Any) -> Any:
        token = _replaying.set(current_tracker)
        try:
            return rasa_temporary_tracker(self, current_tracker, *args)
        finally:
            _replaying.reset(token)

    async def _execute_validation_action(
        self: ActionExtractSlots,
        extraction_events: Any,
        output_channel: Any,
        nlg: Any,
        tracker: Any,
        domain: Any,
    ) -> Any:
        token = _replaying.set(tracker)
        try:
            return await rasa_validation(
                self, extraction_events, output_channel, nlg, tracker, domain
            )
        finally:
            _replaying.reset(token)

    DialogueStateTracker.from_events = classmethod(from_events)
    FormAction._temporary_tracker = _temporary_tracker
    ActionExtractSlots._execute_validation_action = _execute_validation_action


def call_predictions_directly() -> None:
    """Call a model's compiled prediction function directly, without ``tf.function``'s dispatch.

    Rasa wraps ``predict_step`` in a ``tf.function`` with a fixed input signature on its first
    prediction (``RasaModel._rasa_predict``). Every later call then goes through TensorFlow's
    Python dispatch: bind and flatten the inputs, convert each array, check it against the
    signature, build a cache key for the whole structure and look up the one compiled function:
    about 8 % of the Rasa process with every sender unknown (py-spy), against about 2 % for
    running the graph itself. With a fixed signature that lookup always finds
    the same function, so after Rasa's first call this keeps it (``get_concrete_function``) and
    calls it with the converted inputs, each still checked against its spec; inputs of another
    structure, or any check failing, go through Rasa's call, which raises as before. Outputs
    are read back as Rasa reads them. ``ConcreteFunction._call_flat`` is TensorFlow's own entry
    for already flattened inputs; TensorFlow is pinned by Rasa 3.6 (2.12), and
    tests/rasa_runtime/test_speedups.py compares DIET's predictions with Rasa's call (TED's too,
    while it was configured).
    """
    import tensorflow as tf
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from rasa.utils.tensorflow import models

    rasa_predict = models.RasaModel._rasa_predict
    sync = models.tf_utils.sync_to_numpy_or_python_type

    def _rasa_predict(self: models.RasaModel, batch_in: tuple[Any, ...]) -> dict[str, Any]:
        direct = self.__dict__.get("_bijli_direct")
        if direct is None:
            outputs = rasa_predict(self, batch_in)
            step = self._tf_predict_step
            if step is not None and not self._run_eagerly:
                specs = tuple(step.input_signature[0])
                self.__dict__["_bijli_direct"] = (step.get_concrete_function(), specs)
            return outputs
        concrete, specs = direct
        if len(batch_in) != len(specs):
            return rasa_predict(self, batch_in)
        tensors = []
        for value, spec in zip(batch_in, specs, strict=True):
            tensor = tf.convert_to_tensor(value, dtype_hint=spec.dtype)
            if not spec.is_compatible_with(tensor):
                return rasa_predict(self, batch_in)
            tensors.append(tensor)
        outputs = numpy_outputs(concrete._call_flat(tensors, concrete.captured_inputs), sync)
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
        return outputs

    models.RasaModel._rasa_predict = _rasa_predict


def numpy_outputs(outputs: Any, sync: Any) -> Any:
    """keras's ``sync_to_numpy_or_python_type`` (``sync``) for a dict of tensors and dicts.

    keras maps each tensor to NumPy (a scalar to a Python number) through ``tf.nest``, whose
    flattening and repacking of DIET's output dict was 4 % of the Rasa server's busy time with
    every sender unknown (py-spy). A dict, nested dicts included, is mapped here key by key in
    its own order, as ``tf.nest`` rebuilds it; any other structure goes to keras.
    """
    import numpy as np
    import tensorflow as tf

    def leaf(value: Any) -> Any:
        if isinstance(value, tf.Tensor):
            value = value.numpy()
        if not isinstance(value, (np.ndarray, np.generic)):
            return value
        return value.item() if np.ndim(value) == 0 else value

    def mapped(value: Any) -> Any:
        if isinstance(value, dict):
            return type(value)((key, mapped(item)) for key, item in value.items())
        if isinstance(value, (list, tuple)) or hasattr(value, "__attrs_attrs__"):
            raise TypeError("not a dict of tensors")
        return leaf(value)

    if type(outputs) is not dict:
        return sync(outputs)
    try:
        return mapped(outputs)
    except TypeError:
        return sync(outputs)


def combine_sparse_features_at_once() -> None:
    """Join a message's sparse features side by side in one step, where Rasa takes three.

    DIET reads each message's features of each kind (sequence, sentence) as one matrix: Rasa
    deep-copies the first featurizer's matrix, then ``scipy.sparse.hstack``s the next ones onto
    it one at a time (``Message._combine_features``), and each ``hstack`` goes through scipy's
    general ``bmat``. For the usual case, COO matrices of the same height, this builds the
    matrix ``bmat`` builds (its COO branch: the blocks' data, rows and columns one after the
    other, columns shifted by the widths before) in one step. Anything else (dense features,
    other formats, heights that differ) goes to Rasa's own code and its errors.
    tests/rasa_runtime/test_speedups.py compares the two on the training data's messages.
    """
    import numpy as np
    import scipy.sparse
    from rasa.shared.nlu.training_data.features import Features
    from rasa.shared.nlu.training_data.message import Message
    from scipy.sparse._sputils import get_index_dtype, upcast

    rasa_combine = Message._combine_features

    def _combine_features(features: list[Any], featurizers: list[str]) -> Any:
        matrices = [f.features for f in features]
        if len(matrices) < 2 or not all(type(m) is scipy.sparse.coo_matrix for m in matrices):
            return rasa_combine(features, featurizers)
        height = matrices[0].shape[0]
        if any(m.shape[0] != height for m in matrices):
            return rasa_combine(features, featurizers)
        width = sum(m.shape[1] for m in matrices)
        nnz = sum(m.nnz for m in matrices)
        data = np.empty(nnz, dtype=upcast(*(m.dtype for m in matrices)))
        index_dtype = get_index_dtype(maxval=max(height, width))
        row = np.empty(nnz, dtype=index_dtype)
        col = np.empty(nnz, dtype=index_dtype)
        start = offset = 0
        for m in matrices:
            end = start + m.nnz
            data[start:end] = m.data
            row[start:end] = m.row
            np.add(m.col, offset, out=col[start:end], dtype=index_dtype)
            start, offset = end, offset + m.shape[1]
        matrix = scipy.sparse.coo_matrix((data, (row, col)), shape=(height, width))
        first = features[0]
        return Features(matrix, first.type, first.attribute, featurizers)

    Message._combine_features = staticmethod(_combine_features)


def freeze_alive_objects() -> None:
    """Collect, then keep everything still alive out of the collector's way (``gc.freeze``).

    A loaded Rasa server holds millions of objects (TensorFlow, the model, the domain) that live
    as long as it does, and every full collection walked them all again: about 70 ms each, three
    in ten seconds of the bench's load with every sender unknown (2 % of the Rasa process's CPU,
    and a 70 ms pause for every reply waiting then), against 1 ms each once frozen (gc
    callbacks). Frozen objects are used as before; the collector only never examines them, so
    one of them in a reference cycle is never freed (a model replaced through Rasa's HTTP API
    would stay in memory; `bijli rasa-server` loads one model, at start). ``gc.freeze`` is the
    gc module's own way to set objects aside in a generation that collections skip.
    """
    import gc

    gc.collect()
    gc.freeze()


async def _freeze_listener(app: Any, loop: Any) -> None:
    freeze_alive_objects()


def freeze_what_loading_made() -> None:
    """Freeze what the model's loading made, once each Sanic worker has loaded it.

    Rasa loads the model in each worker in a ``before_server_start`` listener,
    ``rasa.core.run.load_agent_on_start``, looked up when the server is set up: this wraps it.
    """
    import rasa.core.run

    rasa_load = rasa.core.run.load_agent_on_start

    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        agent = await rasa_load(*args, **kwargs)
        freeze_alive_objects()
        return agent

    rasa.core.run.load_agent_on_start = load_agent_on_start
