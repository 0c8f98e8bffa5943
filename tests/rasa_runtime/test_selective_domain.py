"""Rasa sends the domain to the action server only for the actions that read it.

The domain is about 99 kB of JSON (84 kB when this was measured); the action server parsed it on
every call (1.6 ms), and Rasa wrote it (0.4 ms). Rasa 3.6's own setting,
``enable_selective_domain`` on the action endpoint (endpoints.yml), sends it only to
``validate_*`` actions and to actions the domain marks ``send_domain: true``, and not to a
``validate_*`` action marked ``send_domain: false``. rasa_sdk's validation actions read the
domain's slots and forms (``domain_slots``); ``validate_account_form`` names its form's slots
itself, and every other action here ignores its ``domain`` argument.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config
from rasa_sdk.forms import ValidationAction

import bot.actions
from bot.rasa_runtime.environment import rasa_env
from bot.settings import ROOT, load
from tests.domain import project_domain


def _validation_classes() -> list[type[ValidationAction]]:
    """The project's rasa_sdk validation actions (forms' and slot mappings')."""
    classes = []
    for info in pkgutil.iter_modules(bot.actions.__path__, "bot.actions."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, ValidationAction)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
            ):
                classes.append(cls)
    return classes


def _validation_actions() -> set[str]:
    """Names of the project's rasa_sdk validation actions."""
    return {cls().name() for cls in _validation_classes()}


#: Validation actions Rasa sends no domain: each names its form's slots itself.
WITHOUT_DOMAIN = {"validate_account_form"}


def test_every_action_that_reads_the_domain_is_sent_it() -> None:
    domain = project_domain()
    readers = _validation_actions() - WITHOUT_DOMAIN
    assert "action_validate_slot_mappings" in readers
    for name in readers:
        assert domain.does_custom_action_explicitly_need_domain(name), name
    for name in WITHOUT_DOMAIN:
        assert not domain.does_custom_action_explicitly_need_domain(name), name
    # The rest are plain actions, which get none.
    others = set(domain.user_actions) - readers - WITHOUT_DOMAIN
    assert "action_bill_amount" in others
    assert not any(domain.does_custom_action_explicitly_need_domain(n) for n in others)


def test_the_action_endpoint_sends_the_domain_only_to_those(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # rasa_env supplies every ${VARIABLE} endpoints.yml names; nothing is connected to.
    env = {"ACTION_ENDPOINT_URL": "http://127.0.0.1:1/webhook", "REDIS_URL": "redis://127.0.0.1:1"}
    for name, value in rasa_env(load(env)).items():
        monkeypatch.setenv(name, value)
    endpoint = read_endpoint_config(str(ROOT / "endpoints.yml"), "action_endpoint")
    domain = project_domain()
    tracker = DialogueStateTracker.from_events(
        "test",
        [ActionExecuted("action_listen"), UserUttered("bill", {"name": "ask_bill_amount"})],
        domain.slots,
    )
    sent = {
        name: "domain" in RemoteAction(name, endpoint)._action_call_format(tracker, domain)
        for name in ("action_bill_amount", "validate_account_form", "action_validate_slot_mappings")
    }
    assert sent == {
        "action_bill_amount": False,
        "validate_account_form": False,
        "action_validate_slot_mappings": True,
    }


def test_a_form_sent_no_domain_knows_the_slots_the_domain_gives_it() -> None:
    """What rasa_sdk reads from the domain for a form's validation action (``domain_slots``:
    the form's ``required_slots``) is what those actions give without one."""
    data = project_domain().as_dict()
    actions = {cls().name(): cls() for cls in _validation_classes()}
    for name in WITHOUT_DOMAIN:
        action = actions[name]
        form = name.removeprefix("validate_")
        assert action.domain_slots({}) == data["forms"][form]["required_slots"]
        assert action.domain_slots(data) == action.domain_slots({})
