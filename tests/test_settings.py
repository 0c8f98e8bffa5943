"""Configuration checked at start: half-set Twilio credentials and plain-http URLs are refused.

A real account SID with no auth token used to fall back to the public development token (anyone
could then sign webhooks in a consumer's name); a real token with no SID left the dev console on.
Every process the Procfile runs, and the CLI commands that lead to sends, now refuse to start
and name the variable to set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot import create_app
from bot import settings as settings_mod
from bot.settings import (
    DEV_ACCOUNT_SID,
    DEV_AUTH_TOKEN,
    InvalidSetting,
    PublicBaseUrlNotHttps,
    TwilioAccountSidMissing,
    TwilioAuthTokenMissing,
)
from tests.processes import BIN, ROOT, bijli, free_port

REAL_SID = "AC" + "5" * 32
REAL_TOKEN = "0123456789abcdef0123456789abcdef"


def checked(**env: str) -> settings_mod.Settings:
    return settings_mod.load_checked(env)


def test_development_values_when_nothing_is_set():
    cfg = checked()
    assert cfg.twilio_is_dev
    assert (cfg.twilio_account_sid, cfg.twilio_auth_token) == (DEV_ACCOUNT_SID, DEV_AUTH_TOKEN)


def test_real_credentials_with_an_https_base_url_start():
    cfg = checked(
        TWILIO_ACCOUNT_SID=REAL_SID,
        TWILIO_AUTH_TOKEN=REAL_TOKEN,
        PUBLIC_BASE_URL="https://bijli.example.in",
    )
    assert not cfg.twilio_is_dev
    assert cfg.twilio_auth_token == REAL_TOKEN


@pytest.mark.parametrize(
    ("env", "error", "names"),
    [
        ({"TWILIO_ACCOUNT_SID": REAL_SID}, TwilioAuthTokenMissing, "TWILIO_AUTH_TOKEN"),
        # The public development token is no token at all.
        (
            {"TWILIO_ACCOUNT_SID": REAL_SID, "TWILIO_AUTH_TOKEN": DEV_AUTH_TOKEN},
            TwilioAuthTokenMissing,
            "TWILIO_AUTH_TOKEN",
        ),
        ({"TWILIO_ACCOUNT_SID": REAL_SID, "TWILIO_AUTH_TOKEN": "  "}, TwilioAuthTokenMissing, ""),
        ({"TWILIO_AUTH_TOKEN": REAL_TOKEN}, TwilioAccountSidMissing, "TWILIO_ACCOUNT_SID"),
        (
            {"TWILIO_AUTH_TOKEN": REAL_TOKEN, "TWILIO_ACCOUNT_SID": DEV_ACCOUNT_SID},
            TwilioAccountSidMissing,
            "TWILIO_ACCOUNT_SID",
        ),
    ],
)
def test_half_set_twilio_credentials_are_refused(env, error, names):
    with pytest.raises(error) as raised:
        checked(PUBLIC_BASE_URL="https://bijli.example.in", **env)
    message = str(raised.value)
    assert names in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url", ["", "http://bijli.example.in", "http://127.0.0.1:8000", "https://", "ftp://x.in"]
)
def test_real_credentials_need_an_https_public_base_url(url):
    env = {"TWILIO_ACCOUNT_SID": REAL_SID, "TWILIO_AUTH_TOKEN": REAL_TOKEN}
    if url:
        env["PUBLIC_BASE_URL"] = url
    with pytest.raises(PublicBaseUrlNotHttps, match="PUBLIC_BASE_URL must be an https URL"):
        checked(**env)


def test_the_console_needs_both_development_credentials():
    """Settings built without the check (tests, overrides) never count half as development."""
    dev = settings_mod.load({})
    assert dev.twilio_is_dev
    assert not dev.with_overrides(twilio_auth_token=REAL_TOKEN).twilio_is_dev
    assert not dev.with_overrides(twilio_account_sid=REAL_SID).twilio_is_dev


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BIJLI_WORKERS", "0"),
        ("BIJLI_WORKERS", "two"),
        ("BIJLI_WORKERS", "-1"),
        ("EMBEDDED_REDIS_PORT", "70000"),
        ("EMBEDDED_REDIS_PORT", "0"),
    ],
)
def test_bad_numbers_name_their_variable(name, value):
    with pytest.raises(InvalidSetting, match=name):
        settings_mod.load({name: value})


def test_worker_count_and_embedded_redis_port_from_the_environment():
    cfg = settings_mod.load({"BIJLI_WORKERS": "3", "EMBEDDED_REDIS_PORT": "6411"})
    assert (cfg.workers, cfg.embedded_redis_port) == (3, 6411)
    assert (settings_mod.load({}).workers, settings_mod.load({}).embedded_redis_port) == (2, 6380)


def test_the_process_environment_is_followed_and_read_again_only_when_it_changes(monkeypatch):
    monkeypatch.setenv("BIJLI_WORKERS", "3")
    first = settings_mod.load()
    assert first.workers == 3
    assert settings_mod.load() is first, "the same environment gives the settings built last"
    monkeypatch.setenv("BIJLI_WORKERS", "5")
    assert settings_mod.load().workers == 5
    monkeypatch.setenv("BIJLI_WHATSAPP_MPS", "off")
    assert (settings_mod.load().workers, settings_mod.load().whatsapp_mps) == (5, 0.0)
    monkeypatch.delenv("BIJLI_WORKERS")
    assert settings_mod.load().workers == settings_mod.DEFAULT_WORKERS
    monkeypatch.setenv("BIJLI_WORKERS", "zero")
    for _ in range(2):  # a bad value is refused every time, not remembered
        with pytest.raises(InvalidSetting, match="BIJLI_WORKERS"):
            settings_mod.load()
    # An explicit mapping is always read as given.
    assert settings_mod.load({"BIJLI_WORKERS": "4"}).workers == 4


def test_create_app_refuses_a_half_set_configuration(settings):
    with pytest.raises(TwilioAuthTokenMissing):
        create_app(settings.with_overrides(twilio_account_sid=REAL_SID))
    with pytest.raises(TwilioAccountSidMissing):
        create_app({"twilio_auth_token": REAL_TOKEN})


# --------------------------------------------------------------------------- real processes


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TWILIO_") and key not in ("PUBLIC_BASE_URL", "REDIS_URL")
    }
    env.update(BIJLI_VAR_DIR=str(tmp_path / "var"), **overrides)
    return env


HALF_SET = {"TWILIO_ACCOUNT_SID": REAL_SID}
PLAIN_HTTP = {
    "TWILIO_ACCOUNT_SID": REAL_SID,
    "TWILIO_AUTH_TOKEN": REAL_TOKEN,
    "PUBLIC_BASE_URL": "http://bijli.example.in",
}

#: Each Procfile process and each CLI command that leads to a send.
COMMANDS = {
    "worker": bijli("worker"),
    "rasa-server": bijli("rasa-server"),
    "actions-server": bijli("actions-server"),
    "run": bijli("run", "--no-demo"),
    "replay-failed": bijli("replay-failed"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("env", "message"),
    [
        (HALF_SET, "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not"),
        (
            {"TWILIO_AUTH_TOKEN": REAL_TOKEN},
            "TWILIO_AUTH_TOKEN is set but TWILIO_ACCOUNT_SID is not",
        ),
        (PLAIN_HTTP, "PUBLIC_BASE_URL must be an https URL"),
    ],
    ids=["sid-only", "token-only", "plain-http"],
)
def test_every_command_refuses_to_start_and_says_why(tmp_path, command, env, message):
    result = subprocess.run(
        COMMANDS[command],
        env=_env(tmp_path, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # One line, click's "Error: …", naming the variable.
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and message in line
    assert "Traceback" not in result.stderr + result.stdout
    # Nothing was started: no embedded Redis, no database file.
    assert not (tmp_path / "var").exists()


def test_the_web_process_refuses_to_boot(tmp_path):
    """gunicorn, as the Procfile runs it, cannot load the app and exits."""
    result = subprocess.run(
        [
            str(BIN / "gunicorn"),
            "--bind",
            f"127.0.0.1:{free_port()}",
            "--workers",
            "1",
            "bot:create_app()",
        ],
        env=_env(tmp_path, **HALF_SET),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "TwilioAuthTokenMissing" in result.stderr
    assert "set TWILIO_AUTH_TOKEN" in result.stderr
