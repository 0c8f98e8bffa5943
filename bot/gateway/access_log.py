"""gunicorn's access log, without a line for each status callback parked before Flask.

Three such callbacks come for every reply; writing their lines cost the web process about a
third of a millisecond each (bench/RESULTS.md). Their statuses reach the database with the next
flush, which logs how many it wrote; refused and unparked callbacks keep their lines, and so
does every other request.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from bot.gateway.webhooks import PARKED_ENVIRON


class Logger(GunicornLogger):
    """gunicorn's logger (``--logger-class``), silent for parked status callbacks."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log the request as gunicorn does, unless the status-parking middleware answered it."""
        if environ.get(PARKED_ENVIRON):
            return
        super().access(resp, req, environ, request_time)
