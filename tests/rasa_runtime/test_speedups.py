"""bot/rasa_runtime/speedups.py: Rasa behaves as before, only faster.

Each test installs one speed-up with monkeypatch recording Rasa's original, so the rest of the
suite sees Rasa untouched.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import orjson
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActionExecuted, Event, SlotSet, UserUttered
from rasa.utils.endpoints import EndpointConfig

from bot.rasa_runtime import speedups as rasa_speedups


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
    # What orjson refuses (an integer beyond 64 bits) still encodes, through json.dumps.
    assert json.loads(rasa_speedups.dumps({"n": 2**70})) == {"n": 2**70}


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Recorder.bodies.append((self.headers["Content-Type"], body))
        payload = b'{"events": [], "responses": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.bodies = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


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
