"""A consumer's name as shown to someone who may not see it whole: each word's initial.

The chat, the pay page, the agent inbox and campaign messages all mask names the same way, so
the rule lives here: ``Ramesh Kumar`` → ``R*** K***``, and a Devanagari initial keeps its vowel
signs and nukta (``कुमार`` → ``कु***``), which are part of the letter as a reader sees it.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories of combining marks (Devanagari matras, nukta) that stay with their letter.
_MARKS = frozenset({"Mn", "Mc"})


def _initial(word: str) -> str:
    """The first letter of ``word`` with its combining marks."""
    out = word[0]
    for char in word[1:]:
        if unicodedata.category(char) not in _MARKS:
            break
        out += char
    return out


def mask_name(name: str) -> str:
    """Each word's initial and stars: ``Ramesh Kumar`` → ``R*** K***`` (``***`` when empty)."""
    return " ".join(f"{_initial(word)}***" for word in name.split()) or "***"


__all__ = ["mask_name"]
