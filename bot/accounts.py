"""What an account number is, and finding one in what a person wrote.

KESCO's move to UPPCL's central billing gave every connection a 10-digit *new* account number;
the *old* 6–8 digit numbers stayed valid for payment for six months. The importer, the actions
and the gateway all ask this module, so the rule lives in one place.
"""

from __future__ import annotations

import re

#: Digits of an old (pre-2023) account number.
OLD_LENGTHS = range(6, 9)
#: Digits of a new account number.
NEW_LENGTH = 10

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


def account_number_in(text: str | None) -> str | None:
    """The first account number written in the text, if any.

    Digits split by spaces or hyphens count as one number ("3456 7890 12") unless only the
    parts have the shape of one ("456789 1234567890").
    """
    if not text:
        return None
    for run in _DIGIT_RUN.findall(ascii_digits(text)):
        joined = re.sub(r"[ -]", "", run)
        if is_account_number(joined):
            return joined
        for part in re.split(r"[ -]", run):
            if is_account_number(part):
                return part
    return None


__all__ = [
    "NEW_LENGTH",
    "OLD_LENGTHS",
    "account_number_in",
    "ascii_digits",
    "digit_runs",
    "is_account_number",
    "is_new_account_number",
    "is_old_account_number",
    "normalise_account_number",
]
