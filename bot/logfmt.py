"""One-line ``key=value`` log events (values quoted when they hold spaces)."""

from __future__ import annotations

import logging
from typing import Any

#: Third-party loggers held at WARNING: they log each request at INFO.
QUIET_LOGGERS = ("twilio.http_client",)


def kv(event: str, **fields: Any) -> str:
    """``event=NAME k=v …`` for a logger; mask phone numbers before passing them in."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = "-" if value is None else str(value)
        if not text or any(ch.isspace() or ch in '"=' for ch in text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def configure(level: int = logging.INFO) -> None:
    """Send this process's log lines to stderr, unless logging is configured already.

    The web and worker processes log ``event=…`` lines at INFO (answers sent, opt-outs, retries);
    without a handler Python drops everything below WARNING.
    """
    # The twilio package logs every request at INFO, eleven lines with each header (about a
    # millisecond of a worker's CPU per message sent): only its warnings.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
