"""Settings read from the environment: the one place that knows the variable names.

Every other module asks for a :class:`Settings` (usually via :func:`load`) and never reads
``os.environ`` itself, so tests can build one with overrides and nothing connects at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

#: Twilio's development placeholders; when these are in use the local fake Twilio is the target.
DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"

#: Project root (the directory holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parent.parent


#: Sanic workers per ``bijli rasa-server`` (bench/RASA_RESULTS.md).
DEFAULT_SANIC_WORKERS = 2

#: Twilio's connection overrides for the incoming-message webhook (README, "Connecting a real
#: Twilio number"): retry a refused or timed-out connection, a read timeout and a 5xx, up to 5
#: times within Twilio's 15-second limit.
DEFAULT_WEBHOOK_OVERRIDES = "ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx"


@dataclass(frozen=True)
class Settings:
    """Runtime configuration; see ``.env.example`` for each variable."""

    database_url: str
    redis_url: str | None
    rasa_url: str
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_api_base_url: str | None
    twilio_sms_from: str
    twilio_whatsapp_from: str
    var_dir: Path
    #: Accounts a sender may look up per day that are not registered to their mobile.
    lookup_limit_per_day: int = 5
    #: Discom served when a message does not say which.
    default_discom: str = "KESCO"
    #: Port ``bijli rasa-server`` listens on (default: the port of RASA_URL).
    rasa_port: int = 5005
    #: Port ``bijli actions-server`` listens on.
    actions_port: int = 5055
    #: Where Rasa calls the action server.
    action_endpoint_url: str = "http://127.0.0.1:5055/webhook"
    #: Sanic workers per ``bijli rasa-server``; each holds the model (about 0.6 GB).
    sanic_workers: int = DEFAULT_SANIC_WORKERS
    #: Port of the local fake Twilio that ``bijli run`` starts in development.
    fake_twilio_port: int = 8025
    #: Virtualenvs and trained models, shared by clones.
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "bijli")
    #: The connection overrides after ``#`` in the webhook URL given to Twilio.
    twilio_webhook_overrides: str = DEFAULT_WEBHOOK_OVERRIDES

    @property
    def twilio_is_dev(self) -> bool:
        """True when no real Twilio credentials are configured."""
        return self.twilio_account_sid == DEV_ACCOUNT_SID

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced (used by tests and the launcher)."""
        return replace(self, **changes)  # type: ignore[arg-type]


def load(environ: dict[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    var_dir = Path(env.get("BIJLI_VAR_DIR") or ROOT / "var")
    rasa_url = (env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/")
    actions_port = int(env.get("ACTIONS_PORT") or 5055)
    return Settings(
        database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'bijli.sqlite3'}",
        redis_url=env.get("REDIS_URL") or None,
        rasa_url=rasa_url,
        public_base_url=(env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or DEV_ACCOUNT_SID,
        twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or DEV_AUTH_TOKEN,
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or None),
        twilio_sms_from=env.get("TWILIO_SMS_FROM") or "+15005550006",
        twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM") or "whatsapp:+14155238886",
        var_dir=var_dir,
        lookup_limit_per_day=int(env.get("BIJLI_LOOKUP_LIMIT_PER_DAY") or 5),
        default_discom=env.get("BIJLI_DEFAULT_DISCOM") or "KESCO",
        rasa_port=int(env.get("RASA_PORT") or urlsplit(rasa_url).port or 5005),
        actions_port=actions_port,
        action_endpoint_url=env.get("ACTION_ENDPOINT_URL")
        or f"http://127.0.0.1:{actions_port}/webhook",
        sanic_workers=int(env.get("SANIC_WORKERS") or DEFAULT_SANIC_WORKERS),
        fake_twilio_port=int(env.get("FAKE_TWILIO_PORT") or 8025),
        cache_dir=Path(env.get("BIJLI_CACHE_DIR") or Path.home() / ".cache" / "bijli"),
        twilio_webhook_overrides=(
            env.get("TWILIO_WEBHOOK_OVERRIDES") or DEFAULT_WEBHOOK_OVERRIDES
        ).lstrip("#"),
    )
