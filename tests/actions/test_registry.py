"""The action server serves exactly the domain's custom actions; importing them connects nothing."""

from __future__ import annotations

import subprocess
import sys

from bot.settings import ROOT
from tests.actions.helpers import domain

# Run in a fresh interpreter, with a database and a Redis that do not exist: the action server
# imports every module of bot.actions at start, and none may connect then.
_REGISTER = """
from rasa_sdk.executor import ActionExecutor
executor = ActionExecutor()
executor.register_package("bot.actions")
print(" ".join(sorted(executor.actions)))
"""


def test_registered_actions_match_the_domain() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _REGISTER],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    registered = set(result.stdout.split())
    # An action with settings (send_domain) is listed as {name: settings}.
    listed = [next(iter(a)) if isinstance(a, dict) else a for a in domain()["actions"]]
    custom = {name for name in listed if not name.startswith("utter_")}
    assert registered == custom
