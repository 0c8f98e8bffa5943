"""A stand-in action server for tests of Rasa's side of action calls: a local HTTP server in a
thread, whose handler answers each POST with JSON."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class JSONHandler(BaseHTTPRequestHandler):
    """Reads each POST's body and answers with ``answer``'s status and bytes (JSON)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status, payload = self.answer(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def answer(self, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[JSONHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free local port until the block ends; yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


__all__ = ["JSONHandler", "serving"]
