"""``bijli rasa-server`` and ``bijli actions-server``: Rasa's own CLI, run in this process.

In this process rather than exec'd, so that :mod:`bot.rasa_runtime.speedups` is in place (Sanic's
extra workers, SANIC_WORKERS > 1, are forked from this process and keep it).

Only the gateway reaches Rasa, and only Rasa the action server: both listen on loopback unless
RASA_HOST / ACTIONS_HOST say otherwise; Rasa takes messages only through the gateway's signed
channel (credentials.yml, bot/rasa_runtime/channel.py), its HTTP API is on only with
RASA_AUTH_TOKEN, and the action server answers only calls carrying ACTIONS_TOKEN.
"""

from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.rasa_runtime import speedups, training
from bot.rasa_runtime.environment import rasa_env
from bot.settings import ROOT, Settings

#: The action server's one route open without the token (readiness checks).
ACTION_SERVER_OPEN_PATHS = ("/health",)


class ModelMissing(RuntimeError):
    """No trained model for the current training data (``bijli train`` makes it)."""


def _rasa_main(argv: list[str]) -> int:
    from rasa.__main__ import main as rasa_main

    sys.argv = argv
    rasa_main()
    return 0


def _rasa_bin() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def api_args(cfg: Settings) -> list[str]:
    """Rasa's HTTP API behind RASA_AUTH_TOKEN, or none at all when no token is set."""
    if not cfg.rasa_auth_token:
        return []
    return ["--enable-api", "--auth-token", cfg.rasa_auth_token]


def run_rasa_server(cfg: Settings, extra_args: Sequence[str] = ()) -> int:
    """Run the Rasa server on the cached model, with Redis tracker and lock stores."""
    path = training.model_path(cfg)
    if not path.exists():
        raise ModelMissing(f"no trained model at {path}: run `bijli train` first")
    cfg.check_secrets()  # before the model loads, which takes a minute
    argv = [
        _rasa_bin(),
        "run",
        "--model",
        str(path),
        "--endpoints",
        str(ROOT / "endpoints.yml"),
        "--credentials",
        str(ROOT / "credentials.yml"),
        "--interface",
        cfg.rasa_host,
        "--port",
        str(cfg.rasa_port),
        *api_args(cfg),
        *extra_args,
    ]
    os.environ.update(rasa_env(cfg))
    # Several Sanic workers: one process's event loop tops out at about one core, and the Redis
    # lock store lets several workers (and several `rasa` processes) share senders. Rasa reads
    # SANIC_WORKERS from its environment.
    os.environ["SANIC_WORKERS"] = str(cfg.sanic_workers)
    # One TensorFlow thread per op: the models are small, and the cores are already shared
    # between the Sanic workers, the action server and Redis (measured: ~5 % less CPU a reply).
    os.environ.setdefault("TF_INTRA_OP_PARALLELISM_THREADS", "1")
    os.environ.setdefault("TF_INTER_OP_PARALLELISM_THREADS", "1")
    speedups.install()
    return _rasa_main(argv)


def run_action_server(cfg: Settings) -> int:
    """Run the rasa_sdk action server with the project's custom actions, behind its token."""
    cfg.check_secrets()  # the actions check the channel's vouch with the gateway secret
    argv = [
        _rasa_bin(),
        "run",
        "actions",
        "--actions",
        "bot.actions",
        "--port",
        str(cfg.actions_port),
    ]
    # rasa_sdk takes its interface from the environment only.
    os.environ["SANIC_HOST"] = cfg.actions_host
    speedups.fast_action_server_requests()
    require_action_token(cfg.actions_server_token)
    return _rasa_main(argv)


def require_action_token(token: str) -> None:
    """Make rasa_sdk's app refuse every call but ``/health`` that lacks ``?token=<token>``.

    Rasa sends the action endpoint's ``token:`` (endpoints.yml) as that query parameter; rasa_sdk
    itself never checks it. A request middleware on the app ``create_app`` builds answers 401
    before the route runs.
    """
    import rasa_sdk.endpoint
    from sanic import Sanic, response
    from sanic.request import Request
    from sanic.response import HTTPResponse

    create_app = rasa_sdk.endpoint.create_app
    expected = token.encode()

    def create_app_with_token(*args: Any, **kwargs: Any) -> Sanic:
        app = create_app(*args, **kwargs)

        @app.middleware("request")
        async def check_token(request: Request) -> HTTPResponse | None:
            if request.path in ACTION_SERVER_OPEN_PATHS:
                return None
            given = (request.args.get("token") or "").encode("utf-8", "replace")
            if hmac.compare_digest(given, expected):
                return None
            return response.json({"error": "unauthorized"}, status=401)

        return app

    rasa_sdk.endpoint.create_app = create_app_with_token
