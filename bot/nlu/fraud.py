"""Forwarded messages and payment scams go to verify_payment_link before anything else.

The scam that cost KESCO's consumers over ₹1 crore arrives as an SMS or a forward: "your
electricity will be disconnected tonight, call officer 98765...". It mentions disconnection and
bills, so a classifier trained on examples may well read it as ask_disconnection or
ask_bill_amount, or read the phone number as an account number. DIET learns these messages from
the training data and the regex features; this component makes the safety-critical part
deterministic: a message that forwards or quotes text, or that pairs a contact (a link, a UPI id,
someone else's phone number) with a scam word (officer, disconnect, tonight, OTP, KYC, ...), is
classified verify_payment_link with confidence 1, whatever DIET said. The markers are the
forwarded, link, upi_id and scam_word regexes of data/nlu/regex.yml (one place for the
features and for this rule); the phone numbers are the mobile entities of FactExtractor.

It runs after FallbackClassifier, so that an unsure prediction about a scam is overridden too.
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
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.facts import MOBILE, is_own_number

FORWARDED = "forwarded"
LINK = "link"
UPI_ID = "upi_id"
SCAM_WORD = "scam_word"
MARKERS = (FORWARDED, LINK, UPI_ID, SCAM_WORD)


def _host(link: str) -> str:
    return re.sub(r"^[a-z]+://", "", link.lower()).split("/", 1)[0].removeprefix("www.")


def scam_markers(
    text: str,
    patterns: dict[str, list[re.Pattern[str]]],
    mobiles: list[tuple[int, int]],
    official_domains: list[str],
) -> set[str]:
    """The markers in a message: forwarded, link, upi_id, mobile (someone else's), scam_word."""
    found = {
        name
        for name in (FORWARDED, UPI_ID, SCAM_WORD)
        if any(p.search(text) for p in patterns.get(name, []))
    }
    for pattern in patterns.get(LINK, []):
        for match in pattern.finditer(text):
            host = _host(match.group())
            # A link to the discom's own site is what the bot itself recommends.
            if not any(host == d or host.endswith("." + d) for d in official_domains):
                found.add(LINK)
    if any(not is_own_number(text, start, end) for start, end in mobiles):
        found.add(MOBILE)
    return found


def is_scam(markers: set[str]) -> bool:
    """A forward, or a contact to pay or call together with a scam word."""
    return FORWARDED in markers or (SCAM_WORD in markers and bool(markers & {LINK, UPI_ID, MOBILE}))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class FraudFirst(GraphComponent):
    """Classifies forwarded and scam-looking messages as verify_payment_link; place it last."""

    PATTERNS_FILE = "fraud_patterns.json"

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The intent to raise, and the domains whose links are the discom's own."""
        return {
            "intent": "verify_payment_link",
            "official_domains": ["uppcl.org", "kesco.co.in", "upenergy.in"],
        }

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
        self._sources = patterns or {}
        self._patterns = {
            name: [re.compile(p, re.IGNORECASE) for p in sources]
            for name, sources in self._sources.items()
        }

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FraudFirst:
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Collects the marker regexes from the training data and stores them with the model."""
        patterns: dict[str, list[str]] = {}
        for regex in training_data.regex_features:
            if regex["name"] in MARKERS:
                patterns.setdefault(regex["name"], []).append(regex["pattern"])
        missing = [name for name in (FORWARDED, SCAM_WORD) if name not in patterns]
        if missing:
            raise ValueError(f"FraudFirst needs regexes named {missing} in the NLU data")
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
    ) -> FraudFirst:
        """Loads the marker regexes stored at training."""
        with model_storage.read_from(resource) as path:
            patterns = rasa.shared.utils.io.read_json_file(path / cls.PATTERNS_FILE)
        return cls(config, model_storage, resource, patterns)

    def process(self, messages: list[Message]) -> list[Message]:
        """Raises the configured intent on messages that carry scam markers."""
        for message in messages:
            text = message.get(TEXT) or ""
            mobiles = [
                (e[ENTITY_ATTRIBUTE_START], e[ENTITY_ATTRIBUTE_END])
                for e in message.get(ENTITIES) or []
                if e.get(ENTITY_ATTRIBUTE_TYPE) == MOBILE
            ]
            markers = scam_markers(text, self._patterns, mobiles, self._config["official_domains"])
            if is_scam(markers):
                self._raise(message)
        return messages

    def _raise(self, message: Message) -> None:
        intent = self._config["intent"]
        top = {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}
        # Keep the rest of the ranking (without the fallback) for whoever reads it later.
        ranking = [
            r
            for r in message.get(INTENT_RANKING_KEY) or []
            if r.get(INTENT_NAME_KEY) not in {intent, "nlu_fallback"}
        ]
        message.set(INTENT, top, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [top, *ranking], add_to_output=True)


__all__ = ["MARKERS", "FraudFirst", "is_scam", "scam_markers"]
