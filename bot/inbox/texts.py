"""Texts the inbox sends consumers, from ``bot/inbox/messages.yml`` (hi, hinglish, en)."""

from __future__ import annotations

from pathlib import Path

from bot import catalogue
from bot.catalogue import UnknownText

#: The file holding every text the inbox sends by itself.
MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
#: Registers, in the order tried when a text lacks the consumer's.
FALLBACK = ("hi", "hinglish", "en")


def text(key: str, language: str | None, **values: object) -> str:
    """The text ``key`` in the consumer's register, its ``{placeholders}`` filled."""
    return catalogue.pick(MESSAGES_FILE, key, (language, *FALLBACK)).format(**values)


def keys() -> list[str]:
    """Every text key in the file."""
    return sorted(catalogue.load(MESSAGES_FILE))


__all__ = ["FALLBACK", "MESSAGES_FILE", "UnknownText", "keys", "text"]
