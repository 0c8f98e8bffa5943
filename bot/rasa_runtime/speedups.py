"""Measured speed-ups to Rasa 3.6, installed by `bijli rasa-server` (and, for the action
server's half, `bijli actions-server`) before the server starts.

py-spy on the Rasa server at 10 concurrent senders: 53 % of its busy time was jsonschema
rebuilding a validator for every action-server response, 11 % was resolving event classes
while reading trackers from Redis, and then 16 % was ``json.dumps`` of the request body of each
action-server call (the whole session's events and the domain). Behaviour and error messages are
unchanged; see bench/RASA_RESULTS.md.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> str:
    """``json.dumps``, about fifteen times faster on a tracker; json.dumps where orjson refuses."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)


def install() -> None:
    """Apply the speed-ups (idempotent enough: each just rebinds a method)."""
    cache_action_result_validator()
    cache_event_types()
    fast_action_request_bodies()


def cache_action_result_validator() -> None:
    """Validate action server responses with one compiled JSON schema validator.

    Rasa checks every action server response with ``jsonschema.validate``, which validates the
    (constant) response schema against its metaschema and builds a new validator on every call:
    about 28 ms of CPU per custom action call, several calls a turn, all on the event loop. The
    same checks, with the same errors, cost about 1 ms with a validator built once.
    """
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import DOCS_BASE_URL, RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
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


def fast_action_request_bodies() -> None:
    """Encode action-server request bodies with orjson.

    Every custom action call posts the current session's events and the domain (about 135 kB
    after 20 turns) and aiohttp encodes it with ``json.dumps``: 1.8 ms a call, several calls a
    turn. orjson writes the same JSON (UTF-8 instead of \\u escapes) in about 0.1 ms. Rasa builds
    a new aiohttp session for each call in ``EndpointConfig.session``; this builds the same
    session, with the same headers, auth and timeout, and orjson as its JSON encoder.
    """
    import aiohttp
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

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
        )

    EndpointConfig.session = session


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
        return app

    rasa_sdk.endpoint.create_app = create_app_with_orjson
