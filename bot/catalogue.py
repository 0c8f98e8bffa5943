"""Text catalogues: the ``messages.yml`` files from which each concern sends its own texts.

Each file maps a text key to its versions by register (``hi``, ``hinglish``, ``en``). The
gateway, the inbox, payments and staff each keep their own file and their own fallback order;
reading a file and picking the first register that has the text is the same for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml


class UnknownText(KeyError):
    """A text key that a messages.yml does not define."""


@cache
def load(path: Path) -> dict[str, Any]:
    """The catalogue at ``path``, read once per process."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must be a mapping")
    return data


def pick(path: Path, key: str, registers: Iterable[str | None]) -> str:
    """The text ``key`` in the first of ``registers`` that has it, else :class:`UnknownText`."""
    entry = load(path).get(key)
    if isinstance(entry, dict):
        for register in registers:
            if register and entry.get(register):
                return str(entry[register])
    raise UnknownText(key)


__all__ = ["UnknownText", "load", "pick"]
