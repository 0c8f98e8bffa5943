"""Dates, amounts, UTRs, mobiles, times and areas in a message, read as what they are.

"maine 20-11-2026 ko 1500 rs bhara tha" holds a date and an amount; "Call officer 9876500000"
holds a phone number. None of them is an account number, yet their digits have the shape of one.
``FactExtractor`` finds these facts with the regexes and lookup tables of the training data
(data/nlu/regex.yml, data/nlu/areas.yml), gives each a normalised value (ISO date, paise, E.164
mobile, 24-hour time, the digits of a UTR), and drops every ``account_number`` tag, from DIET or
from the account regex, that overlaps one of them.
Area values are canonicalised afterwards by Rasa's EntitySynonymMapper (synonyms in areas.yml).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Any

import rasa.nlu.utils.pattern_utils as pattern_utils
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.extractors.regex_entity_extractor import RegexEntityExtractor
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    ENTITY_ATTRIBUTE_VALUE,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.accounts import ascii_digits
from bot.clock import IST

ACCOUNT_NUMBER = "account_number"
DATE = "date"
AMOUNT = "amount"
UTR = "utr"
MOBILE = "mobile"
TIME = "time"
AREA = "area"
#: The facts this component extracts, in the order that breaks a tie between equal spans.
FACTS = (UTR, MOBILE, DATE, AMOUNT, TIME, AREA)

#: A letter, digit or Devanagari sign: what may not touch a lookup-table match on either side.
#: (``\b`` fails after a Devanagari vowel sign, which ``re`` does not count as a word character.)
_WORD_CHAR = r"[\w\u0900-\u097F]"

# English names spelled out rather than taken from ``calendar``, whose names follow the locale.
_ENGLISH_MONTHS = (
    "january february march april may june july august september october november december"
).split()
_MONTHS = {
    **{name: i for i, name in enumerate(_ENGLISH_MONTHS, start=1)},
    **{name[:3]: i for i, name in enumerate(_ENGLISH_MONTHS, start=1)},
    "sept": 9,
    "जनवरी": 1,
    "फरवरी": 2,
    "फ़रवरी": 2,
    "मार्च": 3,
    "अप्रैल": 4,
    "मई": 5,
    "जून": 6,
    "जुलाई": 7,
    "अगस्त": 8,
    "सितंबर": 9,
    "सितम्बर": 9,
    "अक्टूबर": 10,
    "अक्तूबर": 10,
    "नवंबर": 11,
    "नवम्बर": 11,
    "दिसंबर": 12,
    "दिसम्बर": 12,
}

# Words around a 10-digit number that say it is a phone (or an account). A bare 10-digit number
# is ambiguous: new account numbers and mobiles have the same length, so only a prefix (+91, 0),
# phone-style grouping (98390 12345) or a nearby cue word makes it a mobile.
_MOBILE_CUES = frozenset(
    """
    mobile mob mobil mbl phone ph fone fon call calls caller contact whatsapp wa sms helpline
    officer adhikari upi paytm gpay phonepe googlepay
    मोबाइल मोबाईल फोन फ़ोन कॉल काल संपर्क व्हाट्सएप व्हाट्सऐप एसएमएस अधिकारी ऑफिसर
    """.split()
)
_ACCOUNT_CUES = frozenset(
    """
    account acount a/c ac acc acct acnt khata consumer connection kanekshan
    खाता अकाउंट कंज्यूमर कनेक्शन उपभोक्ता
    """.split()
)
#: Words that make a phone number the writer's own ("mera mobile 98...", "my number is 98...").
_OWN_CUES = frozenset(
    "mera meri mere my mine apna apni hamar hamara hamra मेरा मेरी मेरे हमार हमारा अपना".split()
)
_CUE_WINDOW = 3

_MORNING = frozenset("subah subha savere sabere savera morning am सुबह सवेरे सबेरे".split())
_NOON = frozenset("dopahar dopehar dophar afternoon दोपहर".split())
_EVENING = frozenset("shaam sham evening pm शाम".split())
_NIGHT = frozenset("raat rat night tonight रात".split())

_TOKEN = re.compile(r"[^\s,.;:!?()\[\]\"'*]+")


def words_around(
    text: str, start: int, end: int, window: int = _CUE_WINDOW
) -> tuple[list[str], list[str]]:
    """The ``window`` words before a span (nearest first) and after it, lower-cased."""
    before = [w.lower() for w in _TOKEN.findall(text[:start])][::-1][:window]
    after = [w.lower() for w in _TOKEN.findall(text[end:])][:window]
    return before, after


def _nearest(words: list[str], cues: frozenset[str]) -> int | None:
    return next((i for i, word in enumerate(words) if word in cues), None)


def is_mobile(text: str, start: int, end: int) -> bool:
    """True when the 10-digit number at ``text[start:end]`` is written as a phone number."""
    written = text[start:end]
    if written.startswith(("+", "0")) or re.search(r"\d[\s-]\d", written):
        return True
    # The nearest cue word on either side decides (before wins a tie): "call officer 98...",
    # but "account 2300918273 hai aur mobile ..." is an account.
    nearest: tuple[int, bool] | None = None
    for words in words_around(text, start, end):
        for distance, word in enumerate(words):
            if word in _MOBILE_CUES or word in _ACCOUNT_CUES:
                if nearest is None or distance < nearest[0]:
                    nearest = (distance, word in _MOBILE_CUES)
                break
    return nearest is not None and nearest[1]


def is_own_number(text: str, start: int, end: int) -> bool:
    """True when the words just before a phone number make it the writer's own."""
    before, _ = words_around(text, start, end)
    return _nearest(before, _OWN_CUES) is not None


# ------------------------------------------------------------------ values


def parse_date(written: str, today: dt.date) -> str | None:
    """ISO date for ``20-11-2026``, ``20/11/26``, ``15 nov``, ``12 नवंबर``, ``3 tarikh``; else None.

    Without a year (or a month) the date is the latest such day not after today: the dates
    people give this bot are mostly of payments already made.
    """
    text = ascii_digits(written).lower()
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    month = next((m for name, m in _MONTHS.items() if re.search(rf"(?<![a-z]){name}", text)), None)
    if not numbers:
        return None
    day = numbers[0]
    year: int | None = None
    if month is None and len(numbers) >= 2:
        month = numbers[1]
        year = numbers[2] if len(numbers) >= 3 else None
    elif month is not None and len(numbers) >= 2:
        year = numbers[1]
    if year is not None and year < 100:
        year += 2000
    if month is None:
        # "3 tarikh": this month or the last.
        first = today.replace(day=1)
        last_month = (first - dt.timedelta(days=1)).replace(day=1)
        months = [(first.year, first.month), (last_month.year, last_month.month)]
    elif year is None:
        months = [(today.year, month), (today.year - 1, month)]
    else:
        months = [(year, month)]
    candidates = [d for y, m in months if (d := _date_or_none(y, m, day)) is not None]
    if year is None:
        candidates = [d for d in candidates if d <= today]
    found = max(candidates, default=None)
    return found.isoformat() if found else None


def _date_or_none(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_amount(written: str) -> int | None:
    """Paise for ``1500 rs``, ``₹2,150``, ``Rs. 2,340.50``, ``1200/-``, ``850 रुपये``; else None."""
    match = re.search(r"\d[\d,]*(?:\.\d{1,2})?", ascii_digits(written))
    if not match:
        return None
    rupees, _, fraction = match.group().replace(",", "").partition(".")
    paise = int(rupees) * 100 + int((fraction + "00")[:2])
    return paise or None


def parse_time(text: str, start: int, end: int) -> str | None:
    """``HH:MM`` for ``9.30 pm``, ``9:30 PM``, ``raat 9 baje``, ``4 bje``; else None.

    With am/pm or a part of the day (subah, dopahar, shaam, raat) the hour is read on the
    24-hour clock; without one it is kept as written (``4 baje`` → ``04:00``).
    """
    written = ascii_digits(text[start:end]).lower()
    match = re.match(r"(\d{1,2})(?:[:.](\d{2}))?", written)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    before, _ = words_around(text, start, end, window=2)
    marks = set(before) | set(re.findall(r"[a-z\u0900-\u097F]+", written.replace(".", "")))
    if hour <= 12:
        if marks & _MORNING:
            hour = 0 if hour == 12 else hour
        elif marks & (_NOON | _EVENING):
            hour = hour if hour == 12 else hour + 12
        elif marks & _NIGHT:
            hour = 0 if hour == 12 else hour + 12 if hour >= 6 else hour
    return f"{hour:02d}:{minute:02d}"


def parse_mobile(written: str) -> str | None:
    """E.164 for ``9876500000``, ``+91 98390 12345``, ``09876543210``; else None."""
    digits = re.sub(r"\D", "", ascii_digits(written))
    digits = digits[-10:] if len(digits) > 10 else digits
    return f"+91{digits}" if len(digits) == 10 and digits[0] in "6789" else None


def fact_value(kind: str, text: str, start: int, end: int, today: dt.date) -> Any:
    """The normalised value of a fact found at ``text[start:end]``, or None if it is not one."""
    written = text[start:end]
    if kind == DATE:
        return parse_date(written, today)
    if kind == AMOUNT:
        return parse_amount(written)
    if kind == TIME:
        return parse_time(text, start, end)
    if kind == MOBILE:
        return parse_mobile(written) if is_mobile(text, start, end) else None
    if kind == UTR:
        digits = ascii_digits(written)
        return digits if digits.isdigit() and len(digits) == 12 else None
    return written.strip() or None


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (
        a[ENTITY_ATTRIBUTE_START] < b[ENTITY_ATTRIBUTE_END]
        and b[ENTITY_ATTRIBUTE_START] < a[ENTITY_ATTRIBUTE_END]
    )


def without_overlaps(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The longest of overlapping facts (ties: the kind earlier in FACTS), in text order."""
    ranked = sorted(
        found,
        key=lambda e: (
            -(e[ENTITY_ATTRIBUTE_END] - e[ENTITY_ATTRIBUTE_START]),
            FACTS.index(e[ENTITY_ATTRIBUTE_TYPE]) if e[ENTITY_ATTRIBUTE_TYPE] in FACTS else 99,
        ),
    )
    kept: list[dict[str, Any]] = []
    for entity in ranked:
        if not any(_overlaps(entity, other) for other in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e[ENTITY_ATTRIBUTE_START])


def true_account_numbers(
    entities: Iterable[dict[str, Any]], facts: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The entities without the account_number tags that overlap a fact.

    A tag of another shape ("12345", a menu digit "9") stays: the dialogue answers it (an
    invalid number, a menu choice), unless it is part of a fact ("12" of "12 नवंबर").
    """
    return [
        e
        for e in entities
        if e.get(ENTITY_ATTRIBUTE_TYPE) != ACCOUNT_NUMBER
        or not any(_overlaps(e, fact) for fact in facts)
    ]


def today_in_india() -> dt.date:
    """Today's date in IST, the calendar people write dates in."""
    return dt.datetime.now(IST).date()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class FactExtractor(RegexEntityExtractor):
    """Extracts date, amount, utr, mobile, time and area; drops account_number tags on them.

    Place it after every extractor that tags account_number, and before EntitySynonymMapper.
    Unlike RegexEntityExtractor it does not need the entities annotated in the training data
    (they are not, so that DIET does not learn them): the ``entities`` option names them.
    """

    #: Where "today" comes from when a date has no year; tests replace it.
    today: Callable[[], dt.date] = staticmethod(today_in_india)

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """The facts to extract, case-insensitively, from regexes and lookup tables."""
        return {**RegexEntityExtractor.get_default_config(), "entities": list(FACTS)}

    def train(self, training_data: TrainingData) -> Resource:
        """Collects the regexes and lookup tables named after the configured entities."""
        names = set(self._config["entities"])
        patterns = [dict(r) for r in training_data.regex_features if r["name"] in names]
        for table in training_data.lookup_tables:
            if table["name"] not in names:
                continue
            elements = table["elements"]
            if isinstance(elements, str):
                elements = pattern_utils.read_lookup_table_file(elements)
            # Longest first, so that "Kidwai Nagar" wins over a shorter entry at the same place.
            alternatives = "|".join(re.escape(e) for e in sorted(elements, key=len, reverse=True))
            patterns.append(
                {
                    "name": table["name"],
                    "pattern": rf"(?<!{_WORD_CHAR})(?:{alternatives})(?!{_WORD_CHAR})",
                }
            )
        self.patterns = patterns
        self.persist()
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        """Adds the facts found in each message and removes account_number tags on them."""
        today = self.today()
        for message in messages:
            text = message.get(TEXT) or ""
            found = []
            for entity in self._extract_entities(message):
                value = fact_value(
                    entity[ENTITY_ATTRIBUTE_TYPE],
                    text,
                    entity[ENTITY_ATTRIBUTE_START],
                    entity[ENTITY_ATTRIBUTE_END],
                    today,
                )
                if value is not None:
                    found.append({**entity, ENTITY_ATTRIBUTE_VALUE: value})
            facts = self.add_extractor_name(without_overlaps(found))
            kept = true_account_numbers(message.get(ENTITIES) or [], facts)
            message.set(ENTITIES, kept + facts, add_to_output=True)
        return messages


__all__ = [
    "FACTS",
    "FactExtractor",
    "fact_value",
    "is_mobile",
    "is_own_number",
    "parse_amount",
    "parse_date",
    "parse_mobile",
    "parse_time",
    "true_account_numbers",
    "without_overlaps",
]
