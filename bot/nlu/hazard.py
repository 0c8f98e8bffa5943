"""Danger first: sparks, a fallen wire, current in a pole or a wall, fire.

"subah se light nahi hai Kidwai Nagar me, transformer se chingari nikal rahi thi" is a power cut,
and also a danger: the person must hear "stay away, do not touch, call 1912" before anything else,
and the team must get a priority ticket. A classifier trained on examples may read such a message
as anything, and nothing in its intent says "danger". ``SafetyFirst`` makes this deterministic,
the way bot.nlu.fraud.FraudFirst does for scams: the hazard regexes of data/nlu/hazards.yml (one
place for the features DIET learns from and for this rule) become the ``hazard`` entity, valued
``spark``, ``wire``, ``current`` or ``fire``, and the message is classified report_power_cut
with confidence 1.

A match that is negated is no danger: "chingari nahi nikli", "no sparks", "khambe me current
nahi hai". The regexes themselves keep "current nahi hai" (no power) out: current counts only
with where it is felt or with someone being shocked.

Place it after FallbackClassifier (an unsure prediction is overridden too) and before
FraudFirst (a forwarded scam that happens to say "fire" is still a scam).
"""

from __future__ import annotations

import re
from typing import Any

import rasa.shared.utils.io
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.facts import words_around

HAZARD = "hazard"
SPARK = "spark"
WIRE = "wire"
CURRENT = "current"
FIRE = "fire"
#: The kinds of danger, each the suffix of its regexes' name (``hazard_spark``...).
KINDS = (SPARK, WIRE, CURRENT, FIRE)
_PREFIX = "hazard_"

#: Words after a danger word (or inside its match) that deny it: Hindi puts "nahi" after the verb.
_NEGATION_AFTER = frozenset(
    "nahi nahin nahee nahi. nhi nai na mat no not never नहीं नही नहि ना न मत".split()
)
#: Words just before a danger word that deny it: "no sparks", "not a fire", "bina chingari".
_NEGATION_BEFORE = frozenset("no not without never bina बिना बगैर".split())
_WORDS = re.compile(r"[\w\u0900-\u097F]+")


def negated(text: str, start: int, end: int) -> bool:
    """True when the words of a match, the two after it or the one before it deny it."""
    inside = {w.lower() for w in _WORDS.findall(text[start:end])}
    before, after = words_around(text, start, end, window=2)
    return bool(
        inside & _NEGATION_AFTER
        or set(after) & _NEGATION_AFTER
        or set(before[:1]) & _NEGATION_BEFORE
    )


def _overlaps(entity: dict[str, Any], start: int, end: int) -> bool:
    return bool(entity[ENTITY_ATTRIBUTE_START] < end and start < entity[ENTITY_ATTRIBUTE_END])


def find_hazards(text: str, patterns: dict[str, list[re.Pattern[str]]]) -> list[dict[str, Any]]:
    """The dangers a message reports, as entities, in text order; negated ones left out."""
    found: list[dict[str, Any]] = []
    for kind in KINDS:
        for pattern in patterns.get(kind, []):
            for match in pattern.finditer(text):
                if negated(text, match.start(), match.end()):
                    continue
                start, end = match.span()
                if any(_overlaps(e, start, end) for e in found):
                    continue
                found.append(
                    {
                        ENTITY_ATTRIBUTE_TYPE: HAZARD,
                        ENTITY_ATTRIBUTE_VALUE: kind,
                        ENTITY_ATTRIBUTE_START: match.start(),
                        ENTITY_ATTRIBUTE_END: match.end(),
                    }
                )
    return sorted(found, key=lambda e: e[ENTITY_ATTRIBUTE_START])


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SafetyFirst(GraphComponent):
    """Tags dangers as the ``hazard`` entity and classifies such messages report_power_cut."""

    PATTERNS_FILE = "hazard_patterns.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The intent a danger raises."""
        return {"intent": "report_power_cut"}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        patterns: dict[str, list[str]] | None = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._patterns = {
            kind: [re.compile(p, re.IGNORECASE) for p in sources]
            for kind, sources in (patterns or {}).items()
        }

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyFirst:
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Collects the hazard regexes from the training data and stores them with the model."""
        patterns: dict[str, list[str]] = {}
        for regex in training_data.regex_features:
            name = regex["name"]
            if name.startswith(_PREFIX) and name[len(_PREFIX) :] in KINDS:
                patterns.setdefault(name[len(_PREFIX) :], []).append(regex["pattern"])
        missing = [f"{_PREFIX}{kind}" for kind in KINDS if kind not in patterns]
        if missing:
            raise ValueError(f"SafetyFirst needs regexes named {missing} in the NLU data")
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / self.PATTERNS_FILE, patterns)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SafetyFirst:
        """Loads the hazard regexes stored at training."""
        with model_storage.read_from(resource) as path:
            patterns = rasa.shared.utils.io.read_json_file(path / cls.PATTERNS_FILE)
        return cls(config, model_storage, resource, patterns)

    def process(self, messages: list[Message]) -> list[Message]:
        """Adds the hazard entities and raises the configured intent where there are any."""
        for message in messages:
            hazards = find_hazards(message.get(TEXT) or "", self._patterns)
            if not hazards:
                continue
            entities = message.get(ENTITIES) or []
            kept = [e for e in entities if e.get(ENTITY_ATTRIBUTE_TYPE) != HAZARD]
            tagged = [{**e, EXTRACTOR: type(self).__name__} for e in hazards]
            message.set(ENTITIES, kept + tagged, add_to_output=True)
            self._raise(message)
        return messages

    def _raise(self, message: Message) -> None:
        intent = self._config["intent"]
        top = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
        ranking = [
            r
            for r in message.get(INTENT_RANKING_KEY) or []
            if r.get(INTENT_NAME_KEY) not in {intent, "nlu_fallback"}
        ]
        message.set(INTENT, top, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)


__all__ = ["HAZARD", "KINDS", "SafetyFirst", "find_hazards", "negated"]
