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
#: Razorpay's development placeholders; when these are in use the local fake gateway is the target.
DEV_RAZORPAY_KEY_ID = "rzp_test_devkey00000000"
DEV_RAZORPAY_KEY_SECRET = "dev-razorpay-key-secret-not-secret"
DEV_RAZORPAY_WEBHOOK_SECRET = "dev-razorpay-webhook-secret-not-secret"
#: Signs pay-link tokens on a development stack only; real ones set BIJLI_PAYMENT_LINK_SECRET.
DEV_PAYMENT_LINK_SECRET = "dev-payment-link-secret-not-secret"
#: The discoms whose UPI payee may be configured (UPI_VPA_<DISCOM>, UPI_PAYEE_NAME_<DISCOM>).
UPI_DISCOMS = ("KESCO", "PVVNL", "MVVNL", "DVVNL", "PUVVNL")
#: Development payees: plainly not real merchant VPAs, so that nothing is paid to them by accident.
DEV_UPI_VPAS = {d: f"{d.lower()}.dev@razorpay" for d in UPI_DISCOMS}
DEV_UPI_PAYEE_NAMES = {
    "KESCO": "Kanpur Electricity Supply Company Ltd",
    "PVVNL": "Paschimanchal Vidyut Vitran Nigam Ltd",
    "MVVNL": "Madhyanchal Vidyut Vitran Nigam Ltd",
    "DVVNL": "Dakshinanchal Vidyut Vitran Nigam Ltd",
    "PUVVNL": "Purvanchal Vidyut Vitran Nigam Ltd",
}

#: Project root (the directory holding ``pyproject.toml``).
ROOT = Path(__file__).resolve().parent.parent


#: Sanic workers per ``bijli rasa-server`` (bench/RASA_RESULTS.md).
DEFAULT_SANIC_WORKERS = 2


class PaymentsNotConfigured(ValueError):
    """A payment secret or payee is unset outside development; the message names the variable."""


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
    #: Razorpay API key id and secret (the gateway client's basic auth).
    razorpay_key_id: str = DEV_RAZORPAY_KEY_ID
    razorpay_key_secret: str = DEV_RAZORPAY_KEY_SECRET
    #: RAZORPAY_WEBHOOK_SECRET as set (see :attr:`razorpay_webhook_key`).
    razorpay_webhook_secret: str | None = None
    #: Where the Razorpay client sends requests; None: Razorpay's own.
    razorpay_api_base_url: str | None = None
    #: Port of the local fake Razorpay that ``bijli run`` starts in development.
    fake_razorpay_port: int = 8026
    #: BIJLI_PAYMENT_LINK_SECRET as set (see :attr:`payment_link_key`).
    payment_link_secret: str | None = None
    #: Hours a pay link stays valid.
    payment_link_ttl_hours: int = 48
    #: UPI_VPA_<DISCOM> and UPI_PAYEE_NAME_<DISCOM> as set (see :meth:`upi_payee`).
    upi_vpas: dict[str, str] = field(default_factory=dict)
    upi_payee_names: dict[str, str] = field(default_factory=dict)

    @property
    def twilio_is_dev(self) -> bool:
        """True when no real Twilio credentials are configured."""
        return self.twilio_account_sid == DEV_ACCOUNT_SID

    @property
    def razorpay_is_dev(self) -> bool:
        """True when both Razorpay keys are the development ones (the fake gateway serves)."""
        return (
            self.razorpay_key_id == DEV_RAZORPAY_KEY_ID
            and self.razorpay_key_secret == DEV_RAZORPAY_KEY_SECRET
        )

    @property
    def payment_link_key(self) -> str:
        """The key that signs pay links; :class:`PaymentsNotConfigured` if unset in production."""
        return self._payment_secret(
            self.payment_link_secret, DEV_PAYMENT_LINK_SECRET, "BIJLI_PAYMENT_LINK_SECRET"
        )

    @property
    def razorpay_webhook_key(self) -> str:
        """X-Razorpay-Signature's key; :class:`PaymentsNotConfigured` if unset in production."""
        return self._payment_secret(
            self.razorpay_webhook_secret, DEV_RAZORPAY_WEBHOOK_SECRET, "RAZORPAY_WEBHOOK_SECRET"
        )

    def upi_payee(self, discom: str) -> tuple[str, str]:
        """A discom's merchant VPA and legal name: configured, or in development the dev ones.

        With real Twilio credentials a missing one raises :class:`PaymentsNotConfigured`: a pay
        link must never name a payee nobody configured.
        """
        vpa, name = self.upi_vpas.get(discom), self.upi_payee_names.get(discom)
        if vpa and name:
            return vpa, name
        if self.twilio_is_dev and discom in DEV_UPI_VPAS:
            return vpa or DEV_UPI_VPAS[discom], name or DEV_UPI_PAYEE_NAMES[discom]
        raise PaymentsNotConfigured(
            f"UPI_VPA_{discom} and UPI_PAYEE_NAME_{discom} must both be set to take payments"
        )

    def _payment_secret(self, value: str | None, dev_value: str, variable: str) -> str:
        if value:
            return value
        # The public development value stands in only on a development stack.
        if self.twilio_is_dev:
            return dev_value
        raise PaymentsNotConfigured(f"{variable} is not set: it is required to take payments")

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
        razorpay_key_id=env.get("RAZORPAY_KEY_ID") or DEV_RAZORPAY_KEY_ID,
        razorpay_key_secret=env.get("RAZORPAY_KEY_SECRET") or DEV_RAZORPAY_KEY_SECRET,
        razorpay_webhook_secret=env.get("RAZORPAY_WEBHOOK_SECRET") or None,
        razorpay_api_base_url=(env.get("RAZORPAY_API_BASE_URL") or None),
        fake_razorpay_port=int(env.get("FAKE_RAZORPAY_PORT") or 8026),
        payment_link_secret=env.get("BIJLI_PAYMENT_LINK_SECRET") or None,
        payment_link_ttl_hours=int(env.get("BIJLI_PAYMENT_LINK_TTL_HOURS") or 48),
        upi_vpas={d: v for d in UPI_DISCOMS if (v := (env.get(f"UPI_VPA_{d}") or "").strip())},
        upi_payee_names={
            d: v for d in UPI_DISCOMS if (v := (env.get(f"UPI_PAYEE_NAME_{d}") or "").strip())
        },
    )
