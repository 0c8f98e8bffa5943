"""Texts the inbox sends consumers, from ``bot/inbox/messages.yml`` (hi, hinglish, en)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

#: The file holding every text the inbox sends by itself.
MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
#: Registers, in the order tried when a text lacks the consumer's.
FALLBACK = ("hi", "hinglish", "en")


class UnknownText(KeyError):
    """A text key that messages.yml does not define."""


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, Any]:
    with open(MESSAGES_FILE, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{MESSAGES_FILE} must be a mapping")
    return data


def text(key: str, language: str | None, **values: object) -> str:
    """The text ``key`` in the consumer's register, its ``{placeholders}`` filled."""
    entry = _catalogue().get(key)
    if not isinstance(entry, dict):
        raise UnknownText(key)
    for register in (language, *FALLBACK):
        if register and entry.get(register):
            return str(entry[register]).format(**values)
    raise UnknownText(key)


def keys() -> list[str]:
    """Every text key in the file."""
    return sorted(_catalogue())


__all__ = ["FALLBACK", "MESSAGES_FILE", "UnknownText", "keys", "text"]
