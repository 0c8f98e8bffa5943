"""Texts the staff features send, from ``bot/staff/messages.yml`` (hi, hinglish, en)."""

from __future__ import annotations

from pathlib import Path

from bot import catalogue
from bot.catalogue import UnknownText

#: The file holding every text the staff features send by themselves.
MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
#: Registers, in the order tried when a text lacks the one asked for.
FALLBACK = ("hi", "hinglish", "en")


def text(key: str, language: str | None, **values: object) -> str:
    """The text ``key`` in ``language``, its ``{placeholders}`` filled."""
    return catalogue.pick(MESSAGES_FILE, key, (language, *FALLBACK)).format(**values)


def keys() -> list[str]:
    """Every text key in the file."""
    return sorted(catalogue.load(MESSAGES_FILE))


__all__ = ["MESSAGES_FILE", "UnknownText", "keys", "text"]
