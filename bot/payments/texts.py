"""Texts of the payments package, from ``bot/payments/messages.yml`` (Hindi and English)."""

from __future__ import annotations

from pathlib import Path

from bot import catalogue
from bot.catalogue import UnknownText

MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
DEFAULT_LANGUAGE = "hi"


def text(key: str, language: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The text ``key`` in ``language`` (else Hindi), its ``{placeholders}`` filled."""
    found = catalogue.pick(MESSAGES_FILE, key, (language, DEFAULT_LANGUAGE, "en"))
    return found.format(**values) if values else found


def both(key: str) -> dict[str, str]:
    """``{"hi": …, "en": …}`` for a page that shows both languages."""
    return {"hi": text(key, "hi"), "en": text(key, "en")}


__all__ = ["UnknownText", "both", "text"]
