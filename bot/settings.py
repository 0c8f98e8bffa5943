"""Settings read from the environment: the one place that knows the variable names.

Every other module asks for a :class:`Settings` (usually via :func:`load`) and never reads
``os.environ`` itself, so tests can build one with overrides and nothing connects at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

#: Twilio's development placeholders; when these are in use the local fake Twilio is the target.
DEV_ACCOUNT_SID = "AC00000000000000000000000000000000"
DEV_AUTH_TOKEN = "dev-auth-token-not-secret"
#: Development secrets between the gateway, Rasa and the action server: used only while Twilio's
#: development credentials are (a real deployment must set its own, or nothing starts).
DEV_GATEWAY_SECRET = "dev-gateway-secret-not-secret"
DEV_ACTIONS_TOKEN = "dev-actions-token-not-secret"
#: Signs the operator pages' sessions and CSRF tokens while Twilio's dev credentials are in use;
#: with real credentials ``create_app()`` refuses it (bot/admin/shell.py).
DEV_SECRET_KEY = "dev-secret-key-not-secret"
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

#: RQ workers per ``bijli worker`` (its worker pool restarts any that dies).
DEFAULT_WORKERS = 2

#: Port of the Redis that ``bijli run`` starts when REDIS_URL is unset (stable across restarts,
#: so the URL every process was given stays right).
DEFAULT_EMBEDDED_REDIS_PORT = 6380


class ConfigurationError(ValueError):
    """The configuration is unsafe or incomplete; the message names the variable to fix."""


class TwilioAuthTokenMissing(ConfigurationError):
    """A real TWILIO_ACCOUNT_SID without TWILIO_AUTH_TOKEN (the public dev token would sign)."""


class TwilioAccountSidMissing(ConfigurationError):
    """A real TWILIO_AUTH_TOKEN without TWILIO_ACCOUNT_SID (the dev console would stay on)."""


class PublicBaseUrlNotHttps(ConfigurationError):
    """Real Twilio credentials with a PUBLIC_BASE_URL that is not an https URL."""


class InvalidSetting(ConfigurationError):
    """A variable holds a value its setting cannot take."""


class SecretMissing(ConfigurationError):
    """A secret that real Twilio credentials require is unset; the message names the variable."""


#: Twilio's connection overrides for the incoming-message webhook (README, "Connecting a real
#: Twilio number"): retry a refused or timed-out connection, a read timeout and a 5xx, up to 5
#: times within Twilio's 15-second limit.
DEFAULT_WEBHOOK_OVERRIDES = "ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx"


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
    #: Account lookups a meter reader or officer may make per IST day; the next alerts the officer.
    staff_lookup_limit_per_day: int = 300
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
    #: Interface ``bijli rasa-server`` listens on.
    rasa_host: str = "127.0.0.1"
    #: Token of Rasa's HTTP API (``--auth-token``); unset, the API is off.
    rasa_auth_token: str | None = None
    #: Interface ``bijli actions-server`` listens on.
    actions_host: str = "127.0.0.1"
    #: BIJLI_GATEWAY_SECRET as set (see :attr:`gateway_signing_secret`).
    gateway_secret: str | None = None
    #: ACTIONS_TOKEN as set (see :attr:`actions_server_token`).
    actions_token: str | None = None
    #: RQ workers that ``bijli worker`` runs under RQ's worker pool.
    workers: int = DEFAULT_WORKERS
    #: Port of the embedded Redis that ``bijli run`` starts when REDIS_URL is unset.
    embedded_redis_port: int = DEFAULT_EMBEDDED_REDIS_PORT
    #: The connection overrides after ``#`` in the webhook URL given to Twilio.
    twilio_webhook_overrides: str = DEFAULT_WEBHOOK_OVERRIDES
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
    #: Campaigns (notifier/): no pushes in these IST hours, e.g. ``21:00-09:00``.
    quiet_hours: str = "21:00-09:00"
    #: Until when old account numbers are still accepted (new-account-number campaign), ISO date.
    old_account_valid_until: str | None = None
    #: Hours between a disconnection warning and the earliest cut it announces.
    disconnection_notice_hours: int = 24
    #: Cost estimate of a campaign: paise per SMS segment and per WhatsApp template message.
    sms_segment_cost_paise: int = 25
    whatsapp_message_cost_paise: int = 80
    #: Messages per second the WhatsApp sender is given (bot/ratelimit.py); 0: no limit.
    whatsapp_mps: float = 10.0
    #: Messages per second the SMS sender is given; 0: no limit.
    sms_mps: float = 100.0
    #: Requests to Twilio a campaign batch keeps in flight at once (each takes its own token).
    campaign_send_threads: int = 8
    #: The CA bundle ``requests`` would verify HTTPS against (REQUESTS_CA_BUNDLE, else
    #: CURL_CA_BUNDLE); None: certifi's. The urllib3 clients for Twilio and Rasa use it too.
    requests_ca_bundle: str | None = None
    #: NETRC, the netrc file ``requests`` reads credentials from (default ~/.netrc).
    netrc: str | None = None

    def mps_for(self, channel: str) -> float:
        """Messages per second of a channel's sender (0: unlimited)."""
        return self.whatsapp_mps if channel == "whatsapp" else self.sms_mps

    @property
    def twilio_is_dev(self) -> bool:
        """True when both Twilio credentials are the development ones (never half of them)."""
        return (
            self.twilio_account_sid == DEV_ACCOUNT_SID and self.twilio_auth_token == DEV_AUTH_TOKEN
        )

    def check(self) -> Settings:
        """Return these settings, or raise the ConfigurationError a process must not start with."""
        real_sid = self.twilio_account_sid != DEV_ACCOUNT_SID
        real_token = self.twilio_auth_token != DEV_AUTH_TOKEN
        if real_sid and not real_token:
            raise TwilioAuthTokenMissing(
                "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not: set TWILIO_AUTH_TOKEN "
                "(without it anyone could sign webhooks with the public development token)"
            )
        if real_token and not real_sid:
            raise TwilioAccountSidMissing(
                "TWILIO_AUTH_TOKEN is set but TWILIO_ACCOUNT_SID is not: set TWILIO_ACCOUNT_SID, "
                "or unset both to run on the development fake"
            )
        if real_sid:
            url = urlsplit(self.public_base_url)
            if url.scheme != "https" or not url.hostname:
                raise PublicBaseUrlNotHttps(
                    f"PUBLIC_BASE_URL must be an https URL when real Twilio credentials are set, "
                    f"not {self.public_base_url!r}"
                )
        return self

    @property
    def gateway_signing_secret(self) -> str:
        """The key of the gateway's HMAC on what it tells Rasa; :class:`SecretMissing` if unset.

        The development secret stands in only while Twilio's development credentials are in use.
        """
        return self._secret(self.gateway_secret, DEV_GATEWAY_SECRET, "BIJLI_GATEWAY_SECRET")

    @property
    def actions_server_token(self) -> str:
        """The token Rasa shows the action server; :class:`SecretMissing` if unset."""
        return self._secret(self.actions_token, DEV_ACTIONS_TOKEN, "ACTIONS_TOKEN")

    def check_secrets(self) -> None:
        """Raise :class:`SecretMissing` for a secret between the processes that is not set."""
        # Reading each property is the check.
        _ = (self.gateway_signing_secret, self.actions_server_token)

    def _secret(self, value: str | None, dev_value: str, variable: str) -> str:
        if value:
            return value
        if self.twilio_is_dev:
            return dev_value
        raise SecretMissing(f"{variable} is not set: it is required with real Twilio credentials")

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


#: The settings last built from the process environment, with a copy of the environment they
#: were built from (CPython's own bytes mapping behind ``os.environ``, which every change to
#: ``os.environ`` writes through).
_from_process_environ: tuple[dict[bytes, bytes], Settings] | None = None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment).

    Jobs load their settings per job, so that they follow the environment they run in. Building
    them reads about ninety variables (60-80 µs of CPU); while the process environment is what
    it was, the settings built from it last are returned instead (comparing the two takes
    about a microsecond).
    """
    global _from_process_environ
    if environ is not None:
        return _build(environ)
    raw: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
    last = _from_process_environ
    if raw is not None and last is not None and last[0] == raw:
        return last[1]
    settings = _build(os.environ)
    if raw is not None:
        _from_process_environ = (dict(raw), settings)
    return settings


def _build(env: Mapping[str, str]) -> Settings:
    """Settings from the variables in ``env``."""
    var_dir = Path(env.get("BIJLI_VAR_DIR") or ROOT / "var")
    rasa_url = (env.get("RASA_URL") or "http://127.0.0.1:5005").rstrip("/")
    actions_port = int(env.get("ACTIONS_PORT") or 5055)
    return Settings(
        database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'bijli.sqlite3'}",
        redis_url=env.get("REDIS_URL") or None,
        rasa_url=rasa_url,
        public_base_url=(env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        # Stripped: a stray space would make a real credential of an unset one, or spoil a token.
        twilio_account_sid=(env.get("TWILIO_ACCOUNT_SID") or "").strip() or DEV_ACCOUNT_SID,
        twilio_auth_token=(env.get("TWILIO_AUTH_TOKEN") or "").strip() or DEV_AUTH_TOKEN,
        twilio_api_base_url=(env.get("TWILIO_API_BASE_URL") or None),
        twilio_sms_from=env.get("TWILIO_SMS_FROM") or "+15005550006",
        twilio_whatsapp_from=env.get("TWILIO_WHATSAPP_FROM") or "whatsapp:+14155238886",
        var_dir=var_dir,
        lookup_limit_per_day=int(env.get("BIJLI_LOOKUP_LIMIT_PER_DAY") or 5),
        staff_lookup_limit_per_day=int(env.get("BIJLI_STAFF_LOOKUP_LIMIT_PER_DAY") or 300),
        default_discom=env.get("BIJLI_DEFAULT_DISCOM") or "KESCO",
        rasa_port=int(env.get("RASA_PORT") or urlsplit(rasa_url).port or 5005),
        actions_port=actions_port,
        action_endpoint_url=env.get("ACTION_ENDPOINT_URL")
        or f"http://127.0.0.1:{actions_port}/webhook",
        sanic_workers=int(env.get("SANIC_WORKERS") or DEFAULT_SANIC_WORKERS),
        fake_twilio_port=int(env.get("FAKE_TWILIO_PORT") or 8025),
        cache_dir=Path(env.get("BIJLI_CACHE_DIR") or Path.home() / ".cache" / "bijli"),
        rasa_host=env.get("RASA_HOST") or "127.0.0.1",
        rasa_auth_token=env.get("RASA_AUTH_TOKEN") or None,
        actions_host=env.get("ACTIONS_HOST") or "127.0.0.1",
        gateway_secret=env.get("BIJLI_GATEWAY_SECRET") or None,
        actions_token=env.get("ACTIONS_TOKEN") or None,
        workers=_whole_number("BIJLI_WORKERS", env.get("BIJLI_WORKERS"), DEFAULT_WORKERS),
        embedded_redis_port=_whole_number(
            "EMBEDDED_REDIS_PORT",
            env.get("EMBEDDED_REDIS_PORT"),
            DEFAULT_EMBEDDED_REDIS_PORT,
            maximum=65535,
        ),
        twilio_webhook_overrides=(
            env.get("TWILIO_WEBHOOK_OVERRIDES") or DEFAULT_WEBHOOK_OVERRIDES
        ).lstrip("#"),
        secret_key=env.get("BIJLI_SECRET_KEY") or DEV_SECRET_KEY,
        admin_idle_seconds=_minutes(env.get("BIJLI_ADMIN_IDLE_MINUTES"), 30),
        office_hours=env.get("BIJLI_OFFICE_HOURS") or "Mon-Sat 10:00-17:00",
        handoff_reply_seconds=_minutes(env.get("BIJLI_HANDOFF_REPLY_MINUTES"), 30),
        handoff_idle_seconds=_minutes(env.get("BIJLI_HANDOFF_IDLE_MINUTES"), 30),
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
        quiet_hours=env.get("BIJLI_QUIET_HOURS") or "21:00-09:00",
        old_account_valid_until=env.get("BIJLI_OLD_ACCOUNT_VALID_UNTIL") or None,
        disconnection_notice_hours=_whole_number(
            "BIJLI_DISCONNECTION_NOTICE_HOURS", env.get("BIJLI_DISCONNECTION_NOTICE_HOURS"), 24, 0
        ),
        sms_segment_cost_paise=_whole_number(
            "BIJLI_SMS_SEGMENT_COST_PAISE", env.get("BIJLI_SMS_SEGMENT_COST_PAISE"), 25, 0
        ),
        whatsapp_message_cost_paise=_whole_number(
            "BIJLI_WHATSAPP_MESSAGE_COST_PAISE", env.get("BIJLI_WHATSAPP_MESSAGE_COST_PAISE"), 80, 0
        ),
        whatsapp_mps=_rate("BIJLI_WHATSAPP_MPS", env.get("BIJLI_WHATSAPP_MPS"), 10.0),
        sms_mps=_rate("BIJLI_SMS_MPS", env.get("BIJLI_SMS_MPS"), 100.0),
        campaign_send_threads=_whole_number(
            "BIJLI_CAMPAIGN_SEND_THREADS", env.get("BIJLI_CAMPAIGN_SEND_THREADS"), 8, 1, 64
        ),
        requests_ca_bundle=env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None,
        netrc=env.get("NETRC") or None,
    )


def load_checked(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings a process may start with: :func:`load`, then :meth:`Settings.check`."""
    return load(environ).check()


def _whole_number(
    name: str, raw: str | None, default: int, minimum: int = 1, maximum: int | None = None
) -> int:
    """Variable ``name``'s value ``raw`` as an integer in range (``default`` when unset)."""
    text = (raw or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
        raise InvalidSetting(f"{name} must be a whole number {bounds}, not {text!r}")
    return value


def _rate(name: str, raw: str | None, default: float) -> float:
    """Variable ``name``'s messages per second: a positive number, or ``0``/``off`` for none."""
    text = (raw or "").strip().lower()
    if not text:
        return default
    if text in ("off", "none", "unlimited"):
        return 0.0
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < float("inf")):
        raise InvalidSetting(f"{name} must be messages per second (e.g. 10) or 0/off, not {raw!r}")
    return value


def _minutes(value: str | None, default: float) -> int:
    """Whole seconds in ``value`` minutes (decimals allowed, so tests can use seconds)."""
    return max(int(float(value or default) * 60), 1)
