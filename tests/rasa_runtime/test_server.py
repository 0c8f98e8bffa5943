"""``bijli rasa-server``/``actions-server``: loopback, an API only behind a token, secrets set."""

from __future__ import annotations

import os
import subprocess

import pytest

from bot import settings as settings_mod
from bot.rasa_runtime.environment import rasa_env
from bot.rasa_runtime.server import api_args
from tests.processes import bijli

#: Real-looking Twilio credentials (not the development ones), with nothing else set.
REAL = {
    "TWILIO_ACCOUNT_SID": "AC" + "1f" * 16,
    "TWILIO_AUTH_TOKEN": "a-real-looking-auth-token",
    "PUBLIC_BASE_URL": "https://bijli.example.org",
}
SECRETS = ("BIJLI_GATEWAY_SECRET", "ACTIONS_TOKEN", "RASA_AUTH_TOKEN")


def test_both_servers_listen_on_loopback_unless_told() -> None:
    cfg = settings_mod.load({})
    assert (cfg.rasa_host, cfg.actions_host) == ("127.0.0.1", "127.0.0.1")
    told = settings_mod.load({"RASA_HOST": "10.0.0.5", "ACTIONS_HOST": "0.0.0.0"})
    assert (told.rasa_host, told.actions_host) == ("10.0.0.5", "0.0.0.0")


def test_rasas_api_is_off_without_a_token_and_behind_it_with_one() -> None:
    assert api_args(settings_mod.load({})) == []
    assert api_args(settings_mod.load({"RASA_AUTH_TOKEN": "t0ken"})) == [
        "--enable-api",
        "--auth-token",
        "t0ken",
    ]


def test_development_secrets_stand_in_only_for_development_credentials() -> None:
    dev = settings_mod.load({})
    assert dev.gateway_signing_secret == settings_mod.DEV_GATEWAY_SECRET
    assert rasa_env(dev)["ACTIONS_TOKEN"] == settings_mod.DEV_ACTIONS_TOKEN
    real = settings_mod.load(REAL)
    with pytest.raises(settings_mod.SecretMissing, match="BIJLI_GATEWAY_SECRET"):
        real.check_secrets()
    with pytest.raises(settings_mod.SecretMissing, match="ACTIONS_TOKEN"):
        rasa_env(real)
    given = settings_mod.load({**REAL, "BIJLI_GATEWAY_SECRET": "g", "ACTIONS_TOKEN": "a"})
    given.check_secrets()
    assert (given.gateway_signing_secret, given.actions_server_token) == ("g", "a")


def _start(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith("TWILIO")}
    return subprocess.run(
        bijli(*args),
        env={**base, **REAL, "REDIS_URL": "redis://127.0.0.1:1/0", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (("rasa-server",), "BIJLI_GATEWAY_SECRET"),
        (("actions-server",), "BIJLI_GATEWAY_SECRET"),
        (("worker", "--burst"), "BIJLI_GATEWAY_SECRET"),
    ],
)
def test_real_credentials_without_the_secret_refuse_to_start(
    command: tuple[str, ...], missing: str
) -> None:
    result = _start(*command)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_action_server_refuses_to_start_without_its_token() -> None:
    result = _start("actions-server", BIJLI_GATEWAY_SECRET="g")
    assert result.returncode != 0
    assert "ACTIONS_TOKEN is not set" in result.stderr
