"""User-visible texts of the gateway, from ``bot/gateway/messages.yml`` (Hindi and English)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

from bot import catalogue
from bot.catalogue import UnknownText

#: The file holding every text the gateway sends by itself.
MESSAGES_FILE = Path(__file__).resolve().parent / "messages.yml"
#: Language used when nothing tells us the sender's.
DEFAULT_LANGUAGE = "hi"


def preload() -> None:
    """Read messages.yml now (a worker does it once, before its first job)."""
    catalogue.load(MESSAGES_FILE)


def text(key: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The text ``key`` in ``language`` (falling back to Hindi, then English)."""
    if key == "keywords":
        raise UnknownText(key)
    return catalogue.pick(MESSAGES_FILE, key, (language, DEFAULT_LANGUAGE, "en"))


def bilingual(key: str) -> str:
    """Hindi and English versions of ``key`` on two lines (for senders of unknown language)."""
    return f"{text(key, 'hi')}\n{text(key, 'en')}"


def normalise_keyword(body: str) -> str:
    """Lower-case ``body``, drop punctuation and emoji, collapse spaces (for keyword matching)."""
    folded = unicodedata.normalize("NFC", body).casefold()
    # Keep letters, digits and the Devanagari combining marks; everything else separates words.
    kept = "".join(
        ch if (ch.isalnum() or unicodedata.category(ch) in ("Mn", "Mc")) else " " for ch in folded
    )
    return re.sub(r"\s+", " ", kept).strip()


@cache
def _keywords() -> dict[str, tuple[str, str]]:
    """Each keyword, normalised, to its ``(kind, language)``; the file's first entry wins."""
    index: dict[str, tuple[str, str]] = {}
    for kind, words in catalogue.load(MESSAGES_FILE).get("keywords", {}).items():
        for word, language in words.items():
            index.setdefault(normalise_keyword(str(word)), (str(kind), str(language)))
    return index


def keyword(body: str) -> tuple[str, str] | None:
    """``(kind, language)`` when the whole message is an opt-out, opt-in or help keyword."""
    wanted = normalise_keyword(body)
    return _keywords().get(wanted) if wanted else None
