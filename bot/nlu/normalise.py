"""Devanagari and Roman Hinglish spelling normalisation for the NLU pipeline.

People write the same Hindi word as बिजली, bijli or bijlee, and नहीं, nahi, nhi or
nahin. ``HinglishNormaliser`` rewrites each token's lemma (which the
CountVectorsFeaturizers read) to one rough Roman spelling, so that training
examples in one script also teach the other. Token text and offsets are kept,
so entity extraction is untouched.
"""

from __future__ import annotations

import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_CONSONANTS = {
    "क": "k",
    "ख": "kh",
    "ग": "g",
    "घ": "gh",
    "ङ": "n",
    "च": "ch",
    "छ": "chh",
    "ज": "j",
    "झ": "jh",
    "ञ": "n",
    "ट": "t",
    "ठ": "th",
    "ड": "d",
    "ढ": "dh",
    "ण": "n",
    "त": "t",
    "थ": "th",
    "द": "d",
    "ध": "dh",
    "न": "n",
    "प": "p",
    "फ": "f",
    "ब": "b",
    "भ": "bh",
    "म": "m",
    "य": "y",
    "र": "r",
    "ल": "l",
    "व": "v",
    "श": "sh",
    "ष": "sh",
    "स": "s",
    "ह": "h",
    "क़": "k",
    "ख़": "kh",
    "ग़": "g",
    "ज़": "j",
    "ड़": "r",
    "ढ़": "rh",
    "फ़": "f",
}
_NUKTA_FORMS = {"क": "क़", "ख": "ख़", "ग": "ग़", "ज": "ज़", "ड": "ड़", "ढ": "ढ़", "फ": "फ़"}
_VOWELS = {
    "अ": "a",
    "आ": "a",
    "इ": "i",
    "ई": "i",
    "उ": "u",
    "ऊ": "u",
    "ऋ": "ri",
    "ए": "e",
    "ऐ": "ai",
    "ओ": "o",
    "औ": "au",
    "ऍ": "e",
    "ऑ": "o",
}
_SIGNS = {
    "ा": "a",
    "ि": "i",
    "ी": "i",
    "ु": "u",
    "ू": "u",
    "ृ": "ri",
    "े": "e",
    "ै": "ai",
    "ो": "o",
    "ौ": "au",
    "ॅ": "e",
    "ॉ": "o",
}
_NASALS = {"ं", "ँ"}
_VIRAMA = "्"
_NUKTA = "़"
_VISARGA = "ः"
_SCHWA = "ə"
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")


def romanise(word: str) -> str:
    """Transliterate one Devanagari word to a rough Hinglish spelling (बिजली -> bijli)."""
    # Each unit is [consonant, vowel, nasal]; the vowel is _SCHWA for the inherent a.
    units: list[list[str]] = []
    chars = list(word.translate(_DEVANAGARI_DIGITS))
    for i, char in enumerate(chars):
        if char == _NUKTA and units and chars[i - 1] in _NUKTA_FORMS:
            units[-1][0] = _CONSONANTS[_NUKTA_FORMS[chars[i - 1]]]
        elif char in _CONSONANTS:
            units.append([_CONSONANTS[char], _SCHWA, ""])
        elif char in _VOWELS:
            units.append(["", _VOWELS[char], ""])
        elif char in _SIGNS and units:
            units[-1][1] = _SIGNS[char]
        elif char == _VIRAMA and units:
            units[-1][1] = ""
        elif char in _NASALS and units:
            units[-1][2] = "n"
        elif char == _VISARGA and units:
            units[-1][2] = "h"
        elif not _DEVANAGARI.match(char):
            units.append([char, "", ""])
    # Hindi drops the inherent a at the end of a word and in V C a C V (kamara -> kamra).
    if units and units[-1][1] == _SCHWA and units[-1][0]:
        units[-1][1] = ""
    for i in range(len(units) - 2, 0, -1):
        before, this, after = units[i - 1], units[i], units[i + 1]
        if this[1] == _SCHWA and not this[2] and (before[1] or before[2]) and after[0] and after[1]:
            this[1] = ""
    # A nasal at the very end is rarely typed in Roman (नहीं -> nahi, में -> me).
    if units and units[-1][2] == "n":
        units[-1][2] = ""
    return "".join(c + ("a" if v == _SCHWA else v) + n for c, v, n in units)


def normalise_roman(word: str) -> str:
    """Fold common Roman Hinglish spelling variants (bijlee -> bijli, paisa -> pesa)."""
    word = word.lower()
    word = word.replace("ee", "i").replace("oo", "u").replace("ph", "f")
    word = re.sub(r"c(?!h)", "k", word)
    word = word.replace("w", "v").replace("z", "j").replace("q", "k")
    # hai/he, paisa/pesa, kaise/kese, aur/or are typed both ways.
    word = word.replace("ai", "e").replace("au", "o")
    return re.sub(r"(\D)\1+", r"\1", word)


def normalise_word(word: str) -> str:
    """One comparable spelling for a Devanagari or Roman word."""
    if _DEVANAGARI.search(word):
        word = romanise(word)
    return normalise_roman(word)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class HinglishNormaliser(GraphComponent):
    """Sets each text token's lemma to its normalised spelling; place after the tokenizer."""

    @classmethod
    def required_components(cls) -> list[type]:
        """Needs tokens."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """No options."""
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> HinglishNormaliser:
        """Creates the component (nothing to train or store)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises the training examples' tokens."""
        for message in training_data.training_examples:
            self._normalise(message)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalises incoming messages' tokens."""
        for message in messages:
            self._normalise(message)
        return messages

    @staticmethod
    def _normalise(message: Message) -> None:
        for token in message.get(TOKENS_NAMES[TEXT]) or []:
            token.lemma = normalise_word(token.text)
