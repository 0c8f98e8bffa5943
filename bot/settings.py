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
#: Signs the operator pages' sessions and CSRF tokens while Twilio's dev credentials are in use;
#: with real credentials ``create_app()`` refuses it (bot/admin/shell.py).
DEV_SECRET_KEY = "dev-secret-key-not-secret"

#: Project root (the directory holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parent.parent


#: Sanic workers per ``bijli rasa-server`` (bench/RASA_RESULTS.md).
DEFAULT_SANIC_WORKERS = 2


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
    #: Key that signs the operator pages' session cookies and CSRF tokens.
    secret_key: str = DEV_SECRET_KEY
    #: Seconds an operator may stay idle on /admin before signing in again.
    admin_idle_seconds: int = 30 * 60
    #: When people answer the agent inbox (IST), e.g. ``Mon-Sat 10:00-17:00``.
    office_hours: str = "Mon-Sat 10:00-17:00"
    #: Office-hours seconds within which a person answers a consumer who asked for one.
    handoff_reply_seconds: int = 30 * 60
    #: Seconds without a message either way after which a held conversation returns to the bot.
    handoff_idle_seconds: int = 30 * 60

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
        secret_key=env.get("BIJLI_SECRET_KEY") or DEV_SECRET_KEY,
        admin_idle_seconds=_minutes(env.get("BIJLI_ADMIN_IDLE_MINUTES"), 30),
        office_hours=env.get("BIJLI_OFFICE_HOURS") or "Mon-Sat 10:00-17:00",
        handoff_reply_seconds=_minutes(env.get("BIJLI_HANDOFF_REPLY_MINUTES"), 30),
        handoff_idle_seconds=_minutes(env.get("BIJLI_HANDOFF_IDLE_MINUTES"), 30),
    )


def _minutes(value: str | None, default: float) -> int:
    """Whole seconds in ``value`` minutes (decimals allowed, so tests can use seconds)."""
    return max(int(float(value or default) * 60), 1)
