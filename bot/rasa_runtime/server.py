"""``bijli rasa-server`` and ``bijli actions-server``: Rasa's own CLI, run in this process.

In this process rather than exec'd, so that :mod:`bot.rasa_runtime.speedups` is in place (Sanic's
extra workers, SANIC_WORKERS > 1, are forked from this process and keep it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.rasa_runtime import speedups, training
from bot.rasa_runtime.environment import rasa_env
from bot.settings import ROOT, Settings


class ModelMissing(RuntimeError):
    """No trained model for the current training data (``bijli train`` makes it)."""


def _rasa_main(argv: list[str]) -> int:
    from rasa.__main__ import main as rasa_main

    sys.argv = argv
    rasa_main()
    return 0


def _rasa_bin() -> str:
    return str(Path(sys.executable).with_name("rasa"))


def run_rasa_server(cfg: Settings, extra_args: Sequence[str] = ()) -> int:
    """Run the Rasa server on the cached model, with Redis tracker and lock stores."""
    path = training.model_path(cfg)
    if not path.exists():
        raise ModelMissing(f"no trained model at {path}: run `bijli train` first")
    argv = [
        _rasa_bin(),
        "run",
        "--enable-api",
        "--model",
        str(path),
        "--endpoints",
        str(ROOT / "endpoints.yml"),
        "--credentials",
        str(ROOT / "credentials.yml"),
        "--port",
        str(cfg.rasa_port),
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
    """Run the rasa_sdk action server with the project's custom actions."""
    argv = [
        _rasa_bin(),
        "run",
        "actions",
        "--actions",
        "bot.actions",
        "--port",
        str(cfg.actions_port),
    ]
    speedups.fast_action_server_requests()
    return _rasa_main(argv)
