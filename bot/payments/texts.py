"""Texts of the payments package, from ``bot/payments/messages.yml`` (Hindi and English)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
DEFAULT_LANGUAGE = "hi"


class UnknownText(KeyError):
    """A key messages.yml does not define."""


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, Any]:
    with open(MESSAGES_FILE, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{MESSAGES_FILE} must be a mapping")
    return data


def text(key: str, language: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text ``key`` in ``language`` (else Hindi), its ``{placeholders}`` filled."""
    entry = _catalogue().get(key)
    if not isinstance(entry, dict):
        raise UnknownText(key)
    found = entry.get(language) or entry.get(DEFAULT_LANGUAGE) or entry.get("en")
    if not found:
        raise UnknownText(key)
    return str(found).format(**values) if values else str(found)


def both(key: str) -> dict[str, str]:
    """``{"hi": …, "en": …}`` for a page that shows both languages."""
    return {"hi": text(key, "hi"), "en": text(key, "en")}


__all__ = ["UnknownText", "both", "text"]
