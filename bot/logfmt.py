"""One-line ``key=value`` log events (values quoted when they hold spaces)."""

from __future__ import annotations

from typing import Any


def kv(event: str, **fields: Any) -> str:
    """``event=NAME k=v …`` for a logger; mask phone numbers before passing them in."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = "-" if value is None else str(value)
        if not text or any(ch.isspace() or ch in '"=' for ch in text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)
