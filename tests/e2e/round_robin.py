"""A round-robin load balancer in front of several Rasa servers, for the scale-out test.

It does what nginx's ``proxy_pass`` to an ``upstream`` of plain servers does by default: each
request goes to the next server in turn; a server that refuses the connection is skipped for the
next one (``proxy_next_upstream error``); a request that breaks after it was sent is answered 502
and not sent again, since nginx never resends a POST. The worker retries that 502 like any other
failure to reach Rasa. Every forwarded request is recorded with the server that took it.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

#: Request headers that belong to one connection, not to the request (RFC 9110, 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host"}
#: Seconds to wait for a server's answer (the worker gives up after 30).
TIMEOUT = 60.0


@dataclass(frozen=True)
class Forwarded:
    """One request a server took: which server, whose message, and how it ended."""

    backend: int
    sender: str
    text: str
    #: The server's HTTP status, or 0 when the connection broke before an answer.
    status: int


class RoundRobin:
    """A WSGI app that forwards every request to the next of ``backends`` (base URLs)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = [urlsplit(url) for url in backends]
        self._turns = itertools.count()
        self.lock = threading.Lock()
        self.forwarded: list[Forwarded] = []
        #: Connections each server refused (it was skipped for the next).
        self.refused = [0] * len(backends)
        #: Requests each server holds right now.
        self.in_flight = [0] * len(backends)

    def served(self, sender: str) -> list[Forwarded]:
        """The requests forwarded for ``sender`` (``<channel>:<E.164>``), oldest first."""
        with self.lock:
            return [f for f in self.forwarded if f.sender == sender]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        target = request.full_path if request.query_string else request.path
        sender, text = _who(body)
        with self.lock:
            first = next(self._turns)
        for attempt in range(len(self.backends)):
            index = (first + attempt) % len(self.backends)
            url = self.backends[index]
            conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=TIMEOUT)
            try:
                conn.connect()
            except OSError:
                conn.close()
                with self.lock:
                    self.refused[index] += 1
                continue
            with self.lock:
                self.in_flight[index] += 1
            status, answer, content_type = 0, b"", "text/plain"
            try:
                conn.request(request.method, target, body=body, headers=headers)
                reply = conn.getresponse()
                status, answer = reply.status, reply.read()
                content_type = reply.getheader("Content-Type") or content_type
            except (OSError, http.client.HTTPException):
                answer = b"bad gateway: the server broke the connection"
            finally:
                conn.close()
                with self.lock:
                    self.in_flight[index] -= 1
                    self.forwarded.append(Forwarded(index, sender, text, status))
            response = Response(answer, status or 502, content_type=content_type)
            return response(environ, start_response)
        return Response("bad gateway: no server answers", 502)(environ, start_response)


def _who(body: bytes) -> tuple[str, str]:
    """The sender id and text of a gateway message's body (empty for anything else)."""
    try:
        data = json.loads(body)
        return f"{data['channel']}:{data['mobile']}", str(data["text"])
    except (ValueError, TypeError, KeyError):
        return "", ""
