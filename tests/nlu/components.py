"""Build the project's NLU components on the real training data, without training DIET."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.settings import ROOT


def training_data() -> TrainingData:
    """The project's NLU training data (data/nlu), as Rasa reads it."""
    return load_data(str(ROOT / "data" / "nlu"))


def trained(component_class: type, tmp_path: Path, config: dict[str, Any] | None = None) -> Any:
    """A component trained on the project's data, then loaded back as a Rasa server would."""
    storage = LocalModelStorage(tmp_path)
    resource = Resource(component_class.__name__)
    context = ExecutionContext(GraphSchema({}), "test")
    component = component_class.create(
        {**component_class.get_default_config(), **(config or {})}, storage, resource, context
    )
    component.train(training_data())
    return component_class.load(
        {**component_class.get_default_config(), **(config or {})}, storage, resource, context
    )


def message(text: str, entities: list[dict[str, Any]] | None = None) -> Message:
    """A tokenised user message, with entities an earlier extractor found."""
    msg = Message(data={"text": text, "entities": entities or []})
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process([msg])
    return msg
