"""The trained model loads whole, and DIET predicts as Rasa's own loading makes it.

Rasa's policies and classifiers may turn an error while loading into a component without a
model, which then predicts nothing, silently: that is how the served bot ran with no TED at all
until 2026-12-04 (the fast load restored the optimizer's slots into variables of other shapes).
These tests load the cached model as the Rasa server does (the ``predict_graph`` fixture), load
DIET again through Rasa's own ``RasaModel.load``, and compare their predictions.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from rasa.core.channels.channel import UserMessage
from rasa.engine.runner.interface import GraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.nlu.classifiers.diet_classifier import DIETClassifier

from bot.nlu.fast_load import FastLoadDIETClassifier
from tests.rasa_runtime.model import MODEL_MARKS, nodes_of

pytestmark = MODEL_MARKS

TEXTS = [
    "hi",
    "mera naya account number kya hai",
    "bill kitna baki hai",
    "मेरा बिल कितना है",
    "light nahi hai kab aayegi",
    "prepaid balance kitna hai",
    "kya mera connection katega",
    "my account is 1234567",
]


@pytest.fixture()
def loaded(predict_graph: Any) -> tuple[GraphRunner, Any]:
    """The predict graph of the cached model, loaded as the Rasa server loads it."""
    metadata, runner, storage = predict_graph
    return runner, (metadata, storage)


def _components(runner: GraphRunner, kind: type) -> dict[str, Any]:
    return {name: node._component for name, node in nodes_of(runner, kind).items()}


def _rasa_loaded(runner: GraphRunner, storage: LocalModelStorage, name: str, base: type) -> Any:
    """The component of node ``name`` loaded again by Rasa's own class ``base``."""
    schema = runner._graph_schema.nodes[name]  # type: ignore[attr-defined]
    context = runner._execution_context  # type: ignore[attr-defined]
    config = {**base.get_default_config(), **schema.config}
    return base.load(config, storage, schema.resource, context)


def test_diet_loads_its_trained_model(loaded: tuple[GraphRunner, Any]) -> None:
    runner, _ = loaded
    (diet,) = _components(runner, FastLoadDIETClassifier).values()
    assert diet.model is not None, "DIET loaded no model"


def test_diet_predicts_as_rasa_loads_it(loaded: tuple[GraphRunner, Any]) -> None:
    runner, (_, storage) = loaded
    ((name, ours),) = _components(runner, FastLoadDIETClassifier).items()
    # DIET names its files after its class: Rasa's class under our class's name.
    rasa_diet = type(type(ours).__name__, (DIETClassifier,), {})
    theirs = _rasa_loaded(runner, storage, name, rasa_diet)
    assert type(theirs.model).__name__ == "DIET"
    schema = runner._graph_schema  # type: ignore[attr-defined]
    (featurised,) = schema.nodes[name].needs.values()
    for text in TEXTS:
        messages = runner.run(inputs={"__message__": [_user_message(text)]}, targets=[featurised])[
            featurised
        ]
        a = ours.process(copy.deepcopy(messages))[0]
        b = theirs.process(copy.deepcopy(messages))[0]
        assert a.get("intent")["name"] == b.get("intent")["name"], text
        np.testing.assert_allclose(
            [r["confidence"] for r in a.get("intent_ranking")],
            [r["confidence"] for r in b.get("intent_ranking")],
            atol=1e-5,
        )
        assert a.get("entities") == b.get("entities"), text


def _user_message(text: str) -> UserMessage:
    return UserMessage(text, sender_id="fast-load-test")
