"""What an account number is, and reading one in what a person wrote.

KESCO's move to UPPCL's central billing gave every connection a 10-digit *new* account number;
the *old* 6–8 digit numbers stayed valid for payment for six months. The importer, the actions
and the gateway all ask this module, so the rule lives in one place.

People write many numbers that have an account number's length: dates ("20-11-2026" is eight
digits once the hyphens go), mobiles (ten digits), amounts ("paid 150000"), OTPs, UTRs. Reading
one as an account sends a registered consumer to "account not found" and spends a stranger's
daily lookups, so ``read_numbers`` reads a message as a person would:

1. Spans that are plainly something else are set aside, whatever words surround them: dates
   (20-11-2026, 20/11/26, 2026-11-20, 20 nov), amounts (₹1500, rs. 1500, 1500 rupaye, 1500/-,
   1,50,000, 1500.00), mobiles written with +91, 91 or a leading 0, and times (10:30, 5 baje).
2. What digits remain form runs (digits split by spaces or hyphens joined, as "3456 7890 12").
   A run is a candidate when it has an account number's shape, 6–8 or 10 digits; when only its
   parts have that shape ("456789 1234567890"), each part is.
3. The nearest cue word within three words either side says what a candidate is. Account words
   (account, a/c, khata, खाता, consumer, connection, upbhokta, purana, naya, old, new, ...) make it
   an account number; mobile, OTP, UTR/transaction and pin-code words make it that; a payment verb
   right next to it ("paid 150000", "1500 bhare", "150000 aaya") makes it an amount. The scan
   stops at another number.
4. Without a cue, a candidate counts only where it stands as an account number: it is the whole
   message, give or take a word such as "ji", "ye lo" or "hai"; or the bot has just asked for an
   account number (``Context.asked``); or, for a number that cannot be a mobile, "number"/"no"
   stands next to it or the message asks something about an account (``Context.about_account``,
   from the NLU's intent).
5. A 10-digit number starting 6–9 has a mobile's shape. New account numbers may start with any
   digit, so without a cue it is an account number only as the whole message or as the answer to
   the bot's question, and the sender's own mobile (``Context.mobile``) never is one.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

#: Digits of an old (pre-2023) account number.
OLD_LENGTHS = range(6, 9)
#: Digits of a new account number.
NEW_LENGTH = 10
#: How many words either side of a number a cue word may stand.
CUE_WINDOW = 3

_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")
_DIGIT_RUN = re.compile(r"\d+(?:[ -]\d+)*")


def ascii_digits(text: str) -> str:
    """The text with Devanagari digits (०–९) replaced by ASCII ones."""
    return text.translate(_DEVANAGARI_DIGITS)


def is_new_account_number(value: str) -> bool:
    """True for exactly 10 ASCII digits."""
    return value.isascii() and value.isdigit() and len(value) == NEW_LENGTH


def is_old_account_number(value: str) -> bool:
    """True for 6 to 8 ASCII digits."""
    return value.isascii() and value.isdigit() and len(value) in OLD_LENGTHS


def is_account_number(value: str) -> bool:
    """True for an old (6–8 digit) or new (10 digit) account number."""
    return is_new_account_number(value) or is_old_account_number(value)


def has_mobile_shape(value: str) -> bool:
    """True for 10 digits starting 6–9, which an Indian mobile number also is."""
    return is_new_account_number(value) and value[0] in "6789"


def normalise_account_number(value: object) -> str | None:
    """An account number as digits only, or None when it has not the shape of one."""
    if value is None:
        return None
    digits = re.sub(r"[\s-]", "", ascii_digits(str(value)))
    return digits if is_account_number(digits) else None


def digit_runs(text: str | None) -> list[str]:
    """Runs of digits in the text (spaces and hyphens inside a run joined), ASCII."""
    if not text:
        return []
    return [re.sub(r"[ -]", "", run) for run in _DIGIT_RUN.findall(ascii_digits(text))]


# --------------------------------------------------------------------------- reading a message


class Kind(str, Enum):
    """What a number in a message is."""

    ACCOUNT = "account"
    DATE = "date"
    TIME = "time"
    AMOUNT = "amount"
    MOBILE = "mobile"
    OTP = "otp"
    REFERENCE = "reference"  # UTR, transaction, order or ticket number
    PINCODE = "pincode"
    UNCLEAR = "unclear"  # an account number's shape, but nothing says it is one
    OTHER = "other"  # not an account number's shape, and no cue says what it is


@dataclass(frozen=True)
class Context:
    """What the conversation, not the message, says about the numbers in it."""

    #: The bot's last question was for an account number (the account form, a corrected number).
    asked: bool = False
    #: The message asks something about an account (the NLU's intent says so).
    about_account: bool = False
    #: The sender's mobile (E.164); it is never read as an account number.
    mobile: str | None = None


@dataclass(frozen=True)
class Reading:
    """One number in a message and what it was read as."""

    digits: str
    kind: Kind


_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)\d\d"
_MONTH_NAME = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|जनवरी|फरवरी|मार्च|अप्रैल|मई"
    r"|जून|जुलाई|अगस्त|सितंबर|सितम्बर|अक्टूबर|अक्तूबर|नवंबर|नवम्बर|दिसंबर|दिसम्बर)(?![a-z])"
)
_CURRENCY = (
    r"(?:₹|(?<![a-z])(?:rs\.?|inr|rupees?|rupaye|rupaiye|rupay|rupye|rupiya)(?![a-z])"
    r"|रु\.?|रुपये|रुपए|रुपया|रूपये|रूपए)"
)
_AMOUNT = r"\d[\d,]*(?:\.\d{1,2})?"
_HOUR = r"(?:[01]?\d|2[0-3])"
_O_CLOCK = r"(?:am|pm|baje|बजे)(?![a-z])"

#: Spans that are something else whatever surrounds them, in the order they are looked for.
_SET_ASIDE: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    # 20-11-2026, 20/11/26, 20.11.2026, 20 11 2026 (a space only with a four-digit year)
    (Kind.DATE, re.compile(rf"(?<!\d){_DAY}([-/.]){_MONTH}\1(?:{_YEAR}|\d\d)(?!\d)")),
    (Kind.DATE, re.compile(rf"(?<!\d){_DAY} {_MONTH} {_YEAR}(?!\d)")),
    # 2026-11-20
    (Kind.DATE, re.compile(rf"(?<!\d){_YEAR}([-/.]){_MONTH}\1{_DAY}(?!\d)")),
    # 20 nov, 20th November 2026, नवंबर 20
    (
        Kind.DATE,
        re.compile(rf"(?<!\d){_DAY}(?:st|nd|rd|th)?\s*{_MONTH_NAME}(?:,?\s*{_YEAR}(?!\d))?"),
    ),
    (
        Kind.DATE,
        re.compile(rf"(?<![a-z]){_MONTH_NAME}\s*{_DAY}(?:st|nd|rd|th)?(?!\d)(?:,?\s*{_YEAR})?"),
    ),
    # +91 98765 43210, 0091…, 919876543210, 09876543210
    (
        Kind.MOBILE,
        re.compile(r"(?:\+\s?91|(?<!\d)0091|(?<!\d)91|(?<!\d)0)[\s-]?[6-9]\d{4}[\s-]?\d{5}(?!\d)"),
    ),
    # 10:30, 10.30 baje, 5 baje, 6 pm
    (Kind.TIME, re.compile(rf"(?<!\d){_HOUR}:[0-5]\d(?!\d)(?:\s*{_O_CLOCK})?")),
    (Kind.TIME, re.compile(rf"(?<!\d){_HOUR}(?:\.[0-5]\d)?\s*{_O_CLOCK}")),
    # ₹1500, rs. 1,500, 1500 rupaye, 1500/-, 1,50,000, 1500.00
    (Kind.AMOUNT, re.compile(rf"{_CURRENCY}\s*{_AMOUNT}")),
    # (Starting only where a figure starts, or "1,1,1,…" would cost time squared in its length.)
    (Kind.AMOUNT, re.compile(rf"(?<![\d,.]){_AMOUNT}\s*(?:/-|{_CURRENCY})")),
    (Kind.AMOUNT, re.compile(r"(?<!\d)\d{1,3}(?:,\d\d)*,\d{3}(?:\.\d{1,2})?(?!\d)")),
    (Kind.AMOUNT, re.compile(r"(?<!\d)\d+\.\d\d(?!\d)")),
)


def _words(*groups: str) -> frozenset[str]:
    return frozenset(word for group in groups for word in group.split())


#: Cue words, as the text is compared: lower case, Devanagari without the nukta.
_CUES: dict[str, Kind] = {
    **dict.fromkeys(
        _words(
            "account acount accnt acct acc a/c ac khata khaata khate khaate connection conn",
            "consumer upbhokta upbhogta purana puraana purane purani naya naye nayi new old",
            "खाता खाते अकाउंट एकाउंट कनेक्शन उपभोक्ता पुराना पुराने पुरानी नया नए नये नई",
        ),
        Kind.ACCOUNT,
    ),
    **dict.fromkeys(
        _words(
            "mobile mobail mob phone fone ph cell whatsapp watsapp contact call sim",
            "मोबाइल मोबाईल फोन व्हाट्सएप",
        ),
        Kind.MOBILE,
    ),
    **dict.fromkeys(_words("otp code password passcode pass ओटीपी कोड"), Kind.OTP),
    **dict.fromkeys(
        _words("utr txn transaction trans ref reference rrn upi order ticket यूटीआर"),
        Kind.REFERENCE,
    ),
    **dict.fromkeys(_words("pin pincode पिन पिनकोड"), Kind.PINCODE),
}
#: Payment verbs: a cue for the number right next to them only ("maine 7788123 ka bill bhara").
_PAID = _words("paid deposited bhara bhare bhari jama aaya aya भरा भरे भरी जमा आया")
#: "number", "no": an account number's cue when the number cannot be a mobile ("mera number").
_NUMBER_WORDS = _words("number no nmbr numbr num nambar nbr id sankhya नंबर नम्बर संख्या क्रमांक")
#: Words that leave a number standing alone: "ji 765432", "ye lo 5601234", "it's 3456789012".
_FILLER = _words(
    "ji jee ye yeh yah lo lijiye lijie raha rahi hai h he hain is it its s here this ok okay",
    "sir please pls plz thik theek hello bhai bhaiya है जी ये यह लो लीजिए लीजिये रहा सर",
)
_PIN_CODE = re.compile(r"(?<![a-z])pin[\s-]*code(?![a-z])")
_TOKEN = re.compile(r"§+|\d+|[a-z]+(?:/[a-z]+)?|[\u0900-\u0963\u0971-\u097f]+")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str


def _plain(text: str) -> str:
    """Lower case, ASCII digits, Devanagari without the nukta (फ़ोन and फोन alike)."""
    plain = unicodedata.normalize("NFC", ascii_digits(text)).replace("\u093c", "").lower()
    return _PIN_CODE.sub("pincode", plain)  # "pin code" is one cue, not "pin" and an OTP's "code"


def _set_aside(text: str) -> tuple[str, list[tuple[int, Reading]]]:
    """The text with set-aside spans blanked to "§", and those spans' readings by position."""
    found: list[tuple[int, Reading]] = []
    for kind, pattern in _SET_ASIDE:
        for match in pattern.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            found.append((match.start(), Reading(digits, kind)))
        # Blank the span but keep the text's length, so later positions stay valid.
        text = pattern.sub(lambda m: "§" * len(m.group()), text)
    return text, found


def _candidates(text: str) -> Iterator[tuple[_Span, bool]]:
    """Digit runs (joined) or their parts, each flagged True when it has the account shape."""
    for run in _DIGIT_RUN.finditer(text):
        joined = re.sub(r"[ -]", "", run.group())
        parts = list(re.finditer(r"\d+", run.group()))
        if is_account_number(joined) or not any(is_account_number(p.group()) for p in parts):
            yield _Span(run.start(), run.end(), joined), is_account_number(joined)
            continue
        for part in parts:
            start = run.start() + part.start()
            span = _Span(start, start + len(part.group()), part.group())
            yield span, is_account_number(span.text)


def _cue(words: list[str]) -> tuple[int, Kind] | None:
    """The nearest cue among ``words`` (nearest first) and its distance; a number ends the scan."""
    for distance, word in enumerate(words, start=1):
        if word[0].isdigit() or word[0] == "§":
            return None
        if word in _PAID and distance == 1:
            return distance, Kind.AMOUNT
        if word in _CUES:
            return distance, _CUES[word]
    return None


class _Words:
    """The words and numbers of a blanked text, to look around a candidate in constant time."""

    def __init__(self, text: str) -> None:
        self.tokens = [_Span(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
        self.starts = [t.start for t in self.tokens]
        self.ends = [t.end for t in self.tokens]
        self.not_filler = sum(t.text not in _FILLER for t in self.tokens)

    def around(self, span: _Span) -> tuple[list[str], list[str], bool]:
        """Up to CUE_WINDOW words before (nearest first) and after; and whether it stands alone."""
        first_after = bisect.bisect_left(self.starts, span.end)
        last_before = bisect.bisect_right(self.ends, span.start)
        before = self.tokens[max(0, last_before - CUE_WINDOW) : last_before]
        after = self.tokens[first_after : first_after + CUE_WINDOW]
        # The span's own digits are its only tokens that are not filler when it stands alone.
        alone = self.not_filler == first_after - last_before
        return [t.text for t in reversed(before)], [t.text for t in after], alone


def _kind(span: _Span, shaped: bool, words: _Words, context: Context) -> Kind:
    before, after, alone = words.around(span)
    cues = [c for c in (_cue(before), _cue(after)) if c is not None]
    # The nearest cue decides; on a tie, the word before the number.
    cue = min(cues, key=lambda c: c[0])[1] if cues else None
    if not shaped:
        return cue if cue is not None and cue is not Kind.ACCOUNT else Kind.OTHER
    if context.mobile is not None and context.mobile == f"+91{span.text}":
        return Kind.MOBILE
    if cue is not None:
        return cue
    if alone or context.asked:
        return Kind.ACCOUNT
    named = any(word in _NUMBER_WORDS for word in before + after)
    if not has_mobile_shape(span.text) and (named or context.about_account):
        return Kind.ACCOUNT
    return Kind.UNCLEAR


def read_numbers(text: str | None, context: Context | None = None) -> list[Reading]:
    """Every number in the text, in order, with what it reads as (see the module's rule)."""
    if not text:
        return []
    context = context or Context()
    blanked, found = _set_aside(_plain(text))
    words = _Words(blanked)
    for span, shaped in _candidates(blanked):
        found.append((span.start, Reading(span.text, _kind(span, shaped, words, context))))
    return [reading for _, reading in sorted(found, key=lambda item: item[0])]


def account_numbers_in(text: str | None, context: Context | None = None) -> list[str]:
    """The account numbers written in the text, in order."""
    return [r.digits for r in read_numbers(text, context) if r.kind is Kind.ACCOUNT]


def account_number_in(text: str | None, context: Context | None = None) -> str | None:
    """The first account number written in the text, if any."""
    found = account_numbers_in(text, context)
    return found[0] if found else None


__all__ = [
    "CUE_WINDOW",
    "NEW_LENGTH",
    "OLD_LENGTHS",
    "Context",
    "Kind",
    "Reading",
    "account_number_in",
    "account_numbers_in",
    "ascii_digits",
    "digit_runs",
    "has_mobile_shape",
    "is_account_number",
    "is_new_account_number",
    "is_old_account_number",
    "normalise_account_number",
    "read_numbers",
]
