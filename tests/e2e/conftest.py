"""The whole stack as real processes: Redis, Rasa, actions, two workers, gunicorn, fake Twilio
and fake Razorpay.

Started once per session with ``tests/processes.py``, on a private Redis and SQLite database so
that the per-test flushing of the other suites cannot pull the floor from under the workers.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
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
from tests.processes import bijli, running, stack_env, stop


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

    def post_message(
        self,
        body: str,
        sender: str,
        *,
        channel: str = "whatsapp",
        sid: str | None = None,
        signature: str | None = None,
    ) -> requests.Response:
        """Post an incoming message the way Twilio does (signed unless ``signature`` is given)."""
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


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from bot.rasa_runtime import training as model

    if not model.model_path().exists():
        pytest.skip(
            f"no trained Rasa model at {model.model_path()}: run `bijli train` (make test does)"
        )
    root = tmp_path_factory.mktemp("e2e")
    logs = root / "logs"
    database_url = f"sqlite:///{root / 'e2e.sqlite3'}"
    migrations.upgrade(database_url)
    with ExitStack() as stack_:
        redis = stack_.enter_context(EmbeddedRedis())
        ports, env = stack_env(root, database_url, redis.url)
        # The agent inbox's tests run at any hour: the office is always open, and a conversation
        # an agent holds goes back to the bot after 30 idle seconds.
        env["BIJLI_OFFICE_HOURS"] = "Mon-Sun 00:00-24:00"
        env["BIJLI_HANDOFF_IDLE_MINUTES"] = "0.5"
        for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            env[key] = getattr(settings_mod, f"DEV_{key.removeprefix('TWILIO_')}")
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
        stack_.enter_context(
            running(
                "rasa",
                bijli("rasa-server"),
                env=env,
                log_dir=logs,
                # Rasa's root route is open; its API (/status, ...) wants RASA_AUTH_TOKEN.
                ready_url=f"{env['RASA_URL']}/",
                timeout=400,
            )
        )
        # One `bijli worker`, as the Procfile runs it: a pool of two workers.
        stack_.enter_context(
            running(
                "worker",
                bijli("worker"),
                env={**env, "BIJLI_WORKERS": "2"},
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
                    "bot:create_app()",
                ],
                env=env,
                log_dir=logs,
                ready_url=f"{env['PUBLIC_BASE_URL']}/healthz",
            )
        )
        engine = make_engine(database_url)
        yield Stack(
            web=env["PUBLIC_BASE_URL"],
            fake=env["TWILIO_API_BASE_URL"],
            rasa=env["RASA_URL"],
            redis_url=redis.url,
            engine=engine,
            cfg=settings_mod.load(env),
            actions=actions,
            env=env,
        )
        engine.dispose()
