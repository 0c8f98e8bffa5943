"""bot/rasa_runtime/channel.py: the failures Rasa swallows reach the turn that suffered them.

Each test installs the hooks with monkeypatch recording Rasa's originals, so the rest of the
suite sees Rasa untouched. The channel's HTTP behaviour against the real Rasa server is in
tests/e2e/test_trust_boundary.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from bot import signing
from bot.dev.embedded_redis import free_port
from bot.rasa_runtime import channel
from tests.rasa_runtime.action_stub import JSONHandler, serving


@pytest.fixture()
def hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)
    for name in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        monkeypatch.setattr(FailSafeTrackerStore, name, getattr(FailSafeTrackerStore, name))
    channel.install_failure_hooks()


class _ActionServer(JSONHandler):
    """Answers every action call with ``status`` and ``body``."""

    status = 500
    body = b'{"error": "boom"}'

    def answer(self, body: bytes) -> tuple[int, bytes]:
        return self.status, self.body


@pytest.fixture()
def action_server() -> Iterator[str]:
    with serving(_ActionServer) as url:
        yield url + "/webhook"


def _run(url: str, name: str = "action_bill_amount") -> Any:
    action = RemoteAction(name, EndpointConfig(url))
    return action.run(
        CollectingOutputChannel(),
        TemplatedNaturalLanguageGenerator({}),
        DialogueStateTracker("whatsapp:+919876543210", []),
        Domain.empty(),
    )


def test_an_unreachable_action_server_fails_the_turn(hooks: None) -> None:
    async def turn() -> list[str]:
        with channel.turn_failures() as failures:
            with pytest.raises(RasaException):  # Rasa's processor catches this and carries on
                await _run(f"http://127.0.0.1:{free_port()}/webhook")
        return failures

    assert asyncio.run(turn()) == ["action_bill_amount: RasaException"]


def test_an_action_that_raised_fails_the_turn(hooks: None, action_server: str) -> None:
    _ActionServer.status, _ActionServer.body = 500, b'{"error": "boom"}'

    async def turn() -> list[str]:
        with channel.turn_failures() as failures:
            with pytest.raises(RasaException):
                await _run(action_server)
        return failures

    assert asyncio.run(turn()) == ["action_bill_amount: RasaException"]


def test_a_form_rejecting_a_value_is_dialogue_not_a_failure(
    hooks: None, action_server: str
) -> None:
    _ActionServer.status = 400
    _ActionServer.body = b'{"action_name": "validate_account_form", "error": "no"}'

    async def turn() -> list[str]:
        with channel.turn_failures() as failures:
            with pytest.raises(ActionExecutionRejection):
                await _run(action_server, "validate_account_form")
        return failures

    assert asyncio.run(turn()) == []


def test_each_turn_keeps_its_own_failures(hooks: None, action_server: str) -> None:
    _ActionServer.status, _ActionServer.body = 200, b'{"events": [], "responses": []}'
    down = f"http://127.0.0.1:{free_port()}/webhook"

    async def turn(url: str) -> list[str]:
        with channel.turn_failures() as failures:
            try:
                await _run(url)
            except RasaException:
                pass
        return failures

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(turn(down), turn(action_server)))

    assert asyncio.run(both()) == [["action_bill_amount: RasaException"], []]


def test_outside_a_turn_a_failure_is_only_raised(hooks: None) -> None:
    with pytest.raises(RasaException):
        asyncio.run(_run(f"http://127.0.0.1:{free_port()}/webhook"))


class _BrokenStore(InMemoryTrackerStore):
    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        raise ConnectionError("redis went away")

    async def save(self, tracker: DialogueStateTracker) -> None:
        raise ConnectionError("redis went away")


def test_a_tracker_store_error_fails_the_turn(hooks: None) -> None:
    store = FailSafeTrackerStore(_BrokenStore(Domain.empty()))

    async def turn() -> tuple[DialogueStateTracker | None, list[str]]:
        with channel.turn_failures() as failures:
            # Rasa falls back to a fresh, empty conversation and an in-memory store.
            found = await store.retrieve("whatsapp:+919876543210")
            await store.save(DialogueStateTracker("whatsapp:+919876543210", []))
        return found, failures

    found, failures = asyncio.run(turn())
    assert found is None
    assert failures == ["tracker_store: ConnectionError"] * 2


def test_installing_twice_records_once(hooks: None) -> None:
    channel.install_failure_hooks()

    async def turn() -> list[str]:
        with channel.turn_failures() as failures:
            with pytest.raises(RasaException):
                await _run(f"http://127.0.0.1:{free_port()}/webhook")
        return failures

    assert len(asyncio.run(turn())) == 1


def test_the_channel_vouches_for_a_location_pin_to_the_actions() -> None:
    secret = "s3cret-for-tests"
    seen: list[Any] = []

    async def on_new_message(message: Any) -> None:
        seen.append(message)
        await message.output_channel.send_text_message(message.sender_id, "ok")

    pinned = signing.new_message(
        "whatsapp", "+919876543210", "consumer", "/report_power_cut", location=(26.4268, 80.3325)
    )
    plain = signing.new_message("whatsapp", "+919876543210", "consumer", "light nahi hai")
    for msg in (pinned, plain):
        response = asyncio.run(channel.GatewayInput(secret).run_turn(msg, on_new_message))
        assert response.status == 200
    first, second = seen
    assert signing.vouched_location(secret, first.sender_id, first.message_id, first.metadata) == (
        26.4268,
        80.3325,
    )
    assert signing.LOCATION_KEY not in second.metadata
    # The sender is vouched for as before.
    assert signing.vouched_sender(secret, first.sender_id, first.message_id, first.metadata)
