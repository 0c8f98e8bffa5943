"""Choosing one of the accounts on a mobile: the numbered list, and reading the answer to it.

People answer a list with "1", "pehla", "दूसरा वाला", "dukaan wala" or "Kidwai Nagar wala", not
with a 10-digit number. These words mean a choice only while the account form shows the list
(bot/actions/accounts.py): elsewhere "1" is the help menu and "pehle" means "earlier".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from bot import store
from bot.accounts import ascii_digits
from bot.actions.formatting import mask_name

#: Up to this many own accounts, a dues or balance question answers for all of them at once.
ANSWER_ALL_UP_TO = 3

# Option words by position (1-based); "last" is filled in per list.
_ORDINALS: dict[int, tuple[str, ...]] = {
    1: ("pehla", "pehle", "pehli", "pahla", "pahle", "pahli", "pehala", "phla", "phle", "first",
        "1st", "pratham", "पहला", "पहले", "पहली", "प्रथम", "pahila", "pahilka", "पहिला"),
    2: ("dusra", "dusre", "dusri", "doosra", "doosre", "doosri", "dusara", "second", "2nd",
        "duja", "दूसरा", "दूसरे", "दूसरी", "दुसरा", "दुसरे", "दूसर", "dusar"),
    3: ("tisra", "tisre", "tisri", "teesra", "teesre", "teesri", "third", "3rd", "तीसरा",
        "तीसरे", "तीसरी", "तिसरा"),
}  # fmt: skip
_LAST = ("last", "aakhri", "akhri", "aakhiri", "antim", "आखिरी", "आख़िरी", "अंतिम")
_ORDINAL_INDEX = {word: n for n, words in _ORDINALS.items() for word in words}

# Words for each category, as people name their connections (ghar ka, dukaan wala, factory).
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "domestic": ("ghar", "ghr", "gharelu", "home", "house", "makan", "makaan", "residence",
                 "domestic", "घर", "घरेलू", "मकान", "निवास"),
    "commercial": ("dukan", "dukaan", "dukkan", "dookan", "shop", "store", "commercial",
                   "vyapar", "vyaparik", "business", "दुकान", "दूकान", "स्टोर", "व्यापारिक",
                   "कमर्शियल"),
    "industrial": ("factory", "faktri", "karkhana", "karkhane", "industry", "industrial",
                   "udyog", "mill", "फैक्ट्री", "कारखाना", "उद्योग", "मिल"),
    "public_institution": ("school", "sansthan", "institution", "hospital", "office",
                           "skool", "स्कूल", "संस्थान", "अस्पताल", "दफ्तर"),
}  # fmt: skip
_CATEGORY_INDEX = {word: cat for cat, words in CATEGORY_WORDS.items() for word in words}

# How the list names a category, in each register (the `language` slot's values).
CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "domestic": {"hi": "घर", "hinglish": "ghar", "en": "home"},
    "commercial": {"hi": "दुकान", "hinglish": "dukaan", "en": "shop"},
    "industrial": {"hi": "उद्योग", "hinglish": "udyog", "en": "industry"},
    "public_institution": {"hi": "संस्थान", "hinglish": "sansthan", "en": "institution"},
}

# "1", "no. 2", "option 1", "2 wala", "२." — the whole message is an option number.
_OPTION = re.compile(
    r"^\s*(?:option|opt|no\.?|number|num|नंबर|विकल्प|#)?\s*(\d{1,2})\s*(?:st|nd|rd|th)?\s*"
    r"(?:wala|wale|vala|vale|waala|waale|वाला|वाले|number|नंबर)?\s*[.)।!]?\s*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+|\d+(?:st|nd|rd|th)?|[\u0900-\u0963\u0971-\u097f]+")
#: A longer message is something else that happens to hold "pehle" ("pehle bhi bataya tha").
MAX_ORDINAL_WORDS = 6


class Kind(str, Enum):
    CHOSEN = "chosen"
    OUT_OF_RANGE = "out_of_range"  # "3" or "teesra" with two accounts
    AMBIGUOUS = "ambiguous"  # words that fit several accounts
    NONE = "none"  # nothing that answers the list


@dataclass(frozen=True)
class Choice:
    kind: Kind
    consumer: store.Consumer | None = None


def _fold(word: str) -> str:
    """One spelling for Roman variants (dukaan/dukan, doosra/dusra); Devanagari as it is."""
    word = word.casefold()
    if word.isascii():
        word = word.replace("ee", "i").replace("oo", "u").replace("aa", "a")
    return word


def _words(text: str) -> list[str]:
    return _WORD.findall(ascii_digits(text).casefold())


_FOLDED_ORDINALS = {_fold(w): n for w, n in _ORDINAL_INDEX.items()}
_FOLDED_LAST = {_fold(w) for w in _LAST}
_FOLDED_CATEGORIES = {_fold(w): cat for w, cat in _CATEGORY_INDEX.items()}


def _distinct_name_words(consumers: list[store.Consumer]) -> list[set[str]]:
    """Words of each account's name and area that no other account on the list shares."""
    own = [{_fold(w) for w in _words(f"{c.name} {c.area or ''}") if len(w) > 2} for c in consumers]
    return [
        words - set().union(*(other for j, other in enumerate(own) if j != i))
        for i, words in enumerate(own)
    ]


def read_choice(
    text: str,
    consumers: list[store.Consumer],
    *,
    words_count: bool = True,
    positions_count: bool = True,
) -> Choice:
    """Which of ``consumers`` (in the order listed) ``text`` picks.

    ``words_count`` is False for messages the NLU read as something else entirely (a fraud
    check, a language change): only an option number or an ordinal counts then.
    ``positions_count`` is False where no list was shown: "1" and "pehla" mean nothing there,
    while "dukaan ka bill" still names the shop.
    """
    plain = ascii_digits(text)
    option = _OPTION.match(plain) if positions_count else None
    if option:
        return _by_position(int(option.group(1)), consumers)
    words = [_fold(w) for w in _words(plain)]
    positions = {_FOLDED_ORDINALS[w] for w in words if w in _FOLDED_ORDINALS}
    if len(words) <= MAX_ORDINAL_WORDS and any(w in _FOLDED_LAST for w in words):
        positions.add(len(consumers))
    if not positions_count:
        positions = set()
    if positions and len(words) <= MAX_ORDINAL_WORDS:
        if len(positions) > 1:
            return Choice(Kind.AMBIGUOUS)
        return _by_position(positions.pop(), consumers)
    if not words_count:
        return Choice(Kind.NONE)
    picked: set[int] = set()
    categories = {_FOLDED_CATEGORIES[w] for w in words if w in _FOLDED_CATEGORIES}
    for i, consumer in enumerate(consumers):
        if consumer.category in categories:
            picked.add(i)
    if categories and not picked:
        return Choice(Kind.OUT_OF_RANGE)  # "factory wala" when none is a factory
    for i, distinct in enumerate(_distinct_name_words(consumers)):
        if distinct & set(words):
            picked.add(i)
    if len(picked) == 1:
        return Choice(Kind.CHOSEN, consumers[picked.pop()])
    return Choice(Kind.AMBIGUOUS if picked else Kind.NONE)


def _by_position(position: int, consumers: list[store.Consumer]) -> Choice:
    if 1 <= position <= len(consumers):
        return Choice(Kind.CHOSEN, consumers[position - 1])
    return Choice(Kind.OUT_OF_RANGE)


def category_label(category: str, language: str | None) -> str:
    """The category as the list names it in ``language`` (Hinglish when unknown)."""
    labels = CATEGORY_LABELS.get(category)
    if labels is None:
        return category
    return labels.get(language or "hinglish", labels["hinglish"])


def option_lines(consumers: list[store.Consumer], language: str | None) -> str:
    """The numbered list: ``1. ghar — 1234567 → 2300000001 (R** K***, Kidwai Nagar)``."""
    return "\n".join(
        f"{n}. {category_label(c.category, language)} — {c.old_account_no or '—'} → "
        f"{c.new_account_no} ({mask_name(c.name)}{', ' + c.area if c.area else ''})"
        for n, c in enumerate(consumers, 1)
    )


__all__ = [
    "ANSWER_ALL_UP_TO",
    "CATEGORY_LABELS",
    "CATEGORY_WORDS",
    "Choice",
    "Kind",
    "category_label",
    "option_lines",
    "read_choice",
]
