"""Start the project's real processes (action server, Rasa, worker, gunicorn) for tests.

Each process is a child with its own log file; ``running`` waits until its readiness URL answers
and stops it on exit, printing the log tail when it failed to come up.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from bot.dev.embedded_redis import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


class ProcessDidNotStart(RuntimeError):
    """A child process exited, or its readiness URL did not answer in time."""


def stack_env(
    root: Path, database_url: str, redis_url: str
) -> tuple[dict[str, int], dict[str, str]]:
    """Free ports and the environment for a whole local stack under ``root``.

    Web, fake Twilio, fake Razorpay, Rasa and the action server each get a free port; every
    process of the stack reads the same variables (the e2e tests and bench/inbound_bench.py
    share this). The
    secrets between the processes are fresh ones, not the development defaults, and Rasa's
    HTTP API is on behind its token (the attacker tests show what it refuses without).
    """
    ports = {name: free_port() for name in ("web", "fake", "rasa", "actions", "razorpay")}
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RASA_URL": f"http://127.0.0.1:{ports['rasa']}",
        "RASA_HOST": "127.0.0.1",
        "RASA_PORT": str(ports["rasa"]),
        "RASA_AUTH_TOKEN": secrets.token_hex(16),
        "ACTIONS_HOST": "127.0.0.1",
        "ACTIONS_PORT": str(ports["actions"]),
        "ACTIONS_TOKEN": secrets.token_hex(16),
        "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{ports['actions']}/webhook",
        "BIJLI_GATEWAY_SECRET": secrets.token_hex(32),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['web']}",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports['fake']}",
        "RAZORPAY_API_BASE_URL": f"http://127.0.0.1:{ports['razorpay']}",
        "BIJLI_VAR_DIR": str(root / "var"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    return ports, env


def bijli(*args: str) -> list[str]:
    """argv for the project's ``bijli`` console script in this virtualenv."""
    return [str(BIN / "bijli"), *args]


@contextmanager
def running(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_dir: Path,
    ready_url: str | None = None,
    ready_text: str | None = None,
    timeout: float = 120.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; wait for ``ready_url`` (or ``ready_text`` in its log)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_ready(name, proc, log_path, ready_url, ready_text, timeout)
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a child and everything it started."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(
    name: str,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    ready_url: str | None = None,
    ready_text: str | None = None,
    timeout: float = 120.0,
) -> None:
    """Wait until ``ready_url`` answers (or ``ready_text`` is in the log); raise if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ProcessDidNotStart(f"{name} exited with {proc.returncode}:\n{_tail(log_path)}")
        if ready_url:
            try:
                if requests.get(ready_url, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
        elif ready_text:
            if ready_text in log_path.read_text(errors="replace"):
                return
        else:
            return
        time.sleep(0.3)
    raise ProcessDidNotStart(f"{name} not ready after {timeout}s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


__all__ = ["BIN", "ProcessDidNotStart", "bijli", "free_port", "running", "stop", "wait_ready"]
