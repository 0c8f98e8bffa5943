"""The whole stack as real processes: Redis, Rasa, actions, two workers, gunicorn, fake Twilio
and fake Razorpay.

Started once per session with ``tests/processes.py``, on a private Redis and SQLite database so
that the per-test flushing of the other suites cannot pull the floor from under the workers.
:func:`launch` starts other shapes of it (several Rasa servers and worker processes, another
database) for a test of their own: tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine
from twilio.request_validator import RequestValidator

from bot import migrations
from bot import settings as settings_mod
from bot.dev.embedded_redis import EmbeddedRedis
from bot.store import make_engine
from tests.processes import bijli, free_port, running, stack_env, stop, wait_ready


@dataclass
class ActionServer:
    """The stack's action server, which a test may kill (SIGKILL) and start again."""

    url: str
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes]

    def kill(self) -> None:
        stop(self.proc, signal.SIGKILL)

    def restart(self) -> None:
        """Start it again (after killing it, if it is still running)."""
        if self.proc.poll() is None:
            self.kill()
        self.proc = self.start()


@dataclass
class Stack:
    """URLs of the running processes and helpers to talk to them."""

    web: str
    fake: str
    rasa: str
    redis_url: str
    engine: Engine
    cfg: settings_mod.Settings
    actions: ActionServer
    env: dict[str, str]
    #: Every Rasa server (``rasa`` is the first): a test may kill one.
    rasa_procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    rasa_urls: list[str] = field(default_factory=list)

    def post_message(
        self,
        body: str,
        sender: str,
        *,
        channel: str = "whatsapp",
        sid: str | None = None,
        signature: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> requests.Response:
        """Post an incoming message the way Twilio does (signed unless ``signature`` is given);
        ``extra`` fields join the form (``ButtonPayload`` for a tapped button)."""
        form = {
            "MessageSid": sid or new_sid(),
            "AccountSid": self.cfg.twilio_account_sid,
            "From": f"whatsapp:{sender}" if channel == "whatsapp" else sender,
            "To": self.cfg.twilio_whatsapp_from
            if channel == "whatsapp"
            else self.cfg.twilio_sms_from,
            "Body": body,
            "NumMedia": "0",
            "ProfileName": "E2E",
            **(extra or {}),
        }
        url = f"{self.cfg.public_base_url}/twilio/messages"
        sig = (
            signature
            if signature is not None
            else RequestValidator(self.cfg.twilio_auth_token).compute_signature(url, form)
        )
        return requests.post(
            f"{self.web}/twilio/messages",
            data=form,
            headers={"X-Twilio-Signature": sig},
            timeout=10,
        )

    def sent(self, to: str | None = None) -> list[dict[str, Any]]:
        params = {"to": to} if to else {}
        return requests.get(f"{self.fake}/sent", params=params, timeout=5).json()["messages"]  # type: ignore[no-any-return]

    def fake_config(self, **settings: Any) -> dict[str, Any]:
        return requests.post(f"{self.fake}/_fake/errors", json=settings, timeout=5).json()  # type: ignore[no-any-return]


_sids = iter(range(1, 10**9))


def new_sid() -> str:
    return f"SM{int(time.time()):08x}{next(_sids):024x}"


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@contextmanager
def launch(
    root: Path,
    database_url: str,
    *,
    rasa_servers: int = 1,
    rasa_front: Callable[[list[str]], AbstractContextManager[str]] | None = None,
    worker_processes: int = 1,
    workers_each: int = 2,
    sanic_workers: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start the stack under ``root`` on ``database_url`` (already migrated) and a private Redis.

    ``rasa_servers`` Rasa servers each get a port of their own; with more than one,
    ``rasa_front(urls)`` must give the one URL that web and the workers use (a load balancer).
    ``worker_processes`` ``bijli worker`` processes each run a pool of ``workers_each``.
    """
    logs = root / "logs"
    with ExitStack() as stack_:
        redis = stack_.enter_context(EmbeddedRedis())
        ports, env = stack_env(root, database_url, redis.url)
        env.update(extra_env or {})
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            env[key] = getattr(settings_mod, f"DEV_{key.removeprefix('TWILIO_')}")
        if sanic_workers is not None:
            env["SANIC_WORKERS"] = str(sanic_workers)
        stack_.enter_context(
            running(
                "fake-twilio",
                bijli("fake-twilio", "--port", str(ports["fake"]), "--callback-delay", "0.05"),
                env=env,
                log_dir=logs,
                ready_url=f"{env['TWILIO_API_BASE_URL']}/_fake/health",
            )
        )
        stack_.enter_context(
            running(
                "fake-razorpay",
                bijli("fake-razorpay", "--port", str(ports["razorpay"])),
                env=env,
                log_dir=logs,
                ready_url=f"{env['RAZORPAY_API_BASE_URL']}/_fake/health",
            )
        )
        actions_url = f"http://127.0.0.1:{ports['actions']}"
        starts = iter(range(10**6))

        def start_actions() -> subprocess.Popen[bytes]:
            return stack_.enter_context(
                running(
                    f"actions{next(starts)}",
                    bijli("actions-server", "--port", str(ports["actions"])),
                    env=env,
                    log_dir=logs,
                    ready_url=f"{actions_url}/health",
                    timeout=180,
                )
            )

        actions = ActionServer(actions_url, start_actions, start_actions())
        rasa_ports = [ports["rasa"], *(free_port() for _ in range(rasa_servers - 1))]
        rasa_urls = [f"http://127.0.0.1:{port}" for port in rasa_ports]
        # Started together: each takes a minute or more to load the model.
        names = ["rasa", *(f"rasa{index}" for index in range(1, rasa_servers))]
        rasa_procs = [
            stack_.enter_context(
                running(
                    name,
                    bijli("rasa-server"),
                    env={**env, "RASA_URL": url, "RASA_PORT": str(port)},
                    log_dir=logs,
                )
            )
            for name, port, url in zip(names, rasa_ports, rasa_urls, strict=True)
        ]
        for name, proc, url in zip(names, rasa_procs, rasa_urls, strict=True):
            # Rasa's root route is open; its API (/status, ...) wants RASA_AUTH_TOKEN.
            wait_ready(name, proc, logs / f"{name}.log", f"{url}/", timeout=400)
        if rasa_servers > 1:
            assert rasa_front is not None, "several Rasa servers need a front URL"
            env["RASA_URL"] = stack_.enter_context(rasa_front(rasa_urls))
        # `bijli worker`, as the Procfile runs it: a pool of workers in each process.
        for index in range(worker_processes):
            stack_.enter_context(
                running(
                    f"worker{index}" if index else "worker",
                    bijli("worker"),
                    env={**env, "BIJLI_WORKERS": str(workers_each)},
                    log_dir=logs,
                    ready_text="Listening on",
                )
            )
        gunicorn = str(Path(bijli()[0]).with_name("gunicorn"))
        stack_.enter_context(
            running(
                "web",
                [
                    gunicorn,
                    "--bind",
                    f"127.0.0.1:{ports['web']}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-",
                    # As the Procfile: the access log that leaves out parked status callbacks.
                    "--logger-class",
                    "bot.gateway.access_log.Logger",
                    "bot:create_app()",
                ],
                env=env,
                log_dir=logs,
                ready_url=f"{env['PUBLIC_BASE_URL']}/healthz",
            )
        )
        engine = make_engine(database_url)
        try:
            yield Stack(
                web=env["PUBLIC_BASE_URL"],
                fake=env["TWILIO_API_BASE_URL"],
                rasa=rasa_urls[0],
                redis_url=redis.url,
                engine=engine,
                cfg=settings_mod.load(env),
                actions=actions,
                env=env,
                rasa_procs=rasa_procs,
                rasa_urls=rasa_urls,
            )
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_model()
    root = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{root / 'e2e.sqlite3'}"
    migrations.upgrade(database_url)
    # The agent inbox's tests run at any hour: the office is always open, and a conversation
    # an agent holds goes back to the bot after 30 idle seconds.
    office = {"BIJLI_OFFICE_HOURS": "Mon-Sun 00:00-24:00", "BIJLI_HANDOFF_IDLE_MINUTES": "0.5"}
    with launch(root, database_url, extra_env=office) as running_stack:
        yield running_stack


def require_model() -> None:
    """Skip, saying why, when there is no trained model to run Rasa on."""
    from bot.rasa_runtime import training as model

    if not model.model_path().exists():
        pytest.skip(
            f"no trained Rasa model at {model.model_path()}: run `bijli train` (make test does)"
        )
