"""Pay links: the stored intent, its signed token, its URL, and the UPI string its QR holds.

The action server makes links (``pay_bill``) and checks them (``verify_payment_link``); the web
process serves them (:mod:`bot.payments.pages`). Both come here, so the rules live once.

A link's token is signed with itsdangerous and carries the intent id, the amount and the account,
so that changing any of them breaks the signature; the amount and payee a page shows always come
from the stored intent and the configuration, never from the request.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from bot import store
from bot.accounts import ascii_digits
from bot.clock import utcnow
from bot.settings import Settings

#: itsdangerous salt: a token made for anything else never loads as a pay link.
TOKEN_SALT = "bijli.pay-link.v1"
#: The intent id is the UPI ``tr``: letters and digits only (NPCI allows up to 35).
INTENT_PREFIX = "BSP"
_INTENT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_INTENT_ID = re.compile(r"^[A-Za-z0-9]{1,35}$")
#: Smallest and largest amount a link asks for, in paise (UPI's usual per-payment cap: ₹1 lakh).
MIN_PAISE = 100
MAX_PAISE = 1_00_000_00

DUES = "dues"
ADVANCE = "advance"


class InvalidLink(ValueError):
    """The token is not one of ours, was changed, or names an intent we do not have."""


class ExpiredLink(InvalidLink):
    """The token was ours but its time is up: ask the bot for a new link."""


class AmountOutOfRange(ValueError):
    """An amount below ₹1 or above what one UPI payment may carry."""


@dataclass(frozen=True)
class Payee:
    """Who a discom's UPI payments go to: only ever from configuration."""

    discom: str
    vpa: str
    name: str


def payee(cfg: Settings, discom: str) -> Payee:
    """The configured merchant VPA and legal name of ``discom``."""
    vpa, name = cfg.upi_payee(discom)
    return Payee(discom, vpa, name)


# --------------------------------------------------------------------------- amounts in messages

_NUMBER = r"(\d{1,3}(?:,\d{2,3})+|\d{1,7})(?:\.(\d{1,2}))?"
_BEFORE = r"(?:₹|rs\.?|inr|rupees?|रु\.?|रू\.?)\s*"
_AFTER = (
    r"\s*(?:/-|₹|rs\b\.?|inr\b|rupees?\b|rupaye\b|rupaiye\b|rupay\b|rupye\b|rupe\b|"
    r"रुपये|रुपए|रुपया|रुपैया|रु\b)"
)
_CONTEXT = (
    r"\s+(?:ka|ki|ke|का|की|के)\s+(?:recharge|payment|bhugtan|रिचार्ज|भुगतान|पेमेंट)"
    r"|\s+(?:jama|bharna|bharne|pay|जमा|भरना|भरने)"
)
_AMOUNT_PATTERNS = (
    re.compile(rf"(?<![\w.]){_BEFORE}{_NUMBER}(?![\d,])", re.IGNORECASE),
    re.compile(rf"(?<![\w.,]){_NUMBER}(?:{_AFTER})", re.IGNORECASE),
    # Unmarked, at most five digits: six or more are account numbers far more often than rupees.
    re.compile(rf"(?<![\w.,])(\d{{1,3}}(?:,\d{{2,3}})+|\d{{1,5}})()(?=(?:{_CONTEXT}))", re.I),
)


def amount_in_text(text: str | None) -> int | None:
    """Paise of the amount a message names ("500 ka recharge", "₹2,000", "1500/-"), else None.

    Only numbers marked as money (a rupee sign or word, ``/-``) or followed by what is paid
    ("ka recharge", "jama") count, so account numbers, dates and times never become amounts.
    """
    if not text:
        return None
    plain = ascii_digits(text)
    for pattern in _AMOUNT_PATTERNS:
        match = pattern.search(plain)
        if match:
            rupees = int(match.group(1).replace(",", ""))
            paise = int((match.group(2) or "0").ljust(2, "0"))
            return rupees * 100 + paise
    return None


def check_amount(paise: int) -> int:
    """``paise`` when a single UPI payment may carry it, else :class:`AmountOutOfRange`."""
    if not MIN_PAISE <= paise <= MAX_PAISE:
        raise AmountOutOfRange(f"{paise} paise is outside {MIN_PAISE}..{MAX_PAISE}")
    return paise


# --------------------------------------------------------------------------- the UPI string


def rupees_text(paise: int) -> str:
    """Paise as the UPI ``am`` field writes them: ``500.00``."""
    rupees, rest = divmod(int(paise), 100)
    return f"{rupees}.{rest:02d}"


def upi_uri(payee_: Payee, amount_paise: int, intent_id: str, note: str) -> str:
    """``upi://pay?…`` per NPCI's linking spec, each value percent-encoded (spaces as %20)."""
    if not _INTENT_ID.match(intent_id):
        raise ValueError("a UPI tr holds letters and digits only")
    fields = (
        ("pa", payee_.vpa),
        ("pn", payee_.name),
        ("am", rupees_text(amount_paise)),
        ("tr", intent_id),
        ("tn", note),
        ("cu", "INR"),
    )
    # "@" stays as it is in a VPA (apps read pa=name@bank); everything else reserved is escaped.
    return "upi://pay?" + "&".join(f"{k}={quote(v, safe='@')}" for k, v in fields)


def intent_note(intent: store.PaymentIntent) -> str:
    """The ``tn`` of an intent: account and bill month (or ADV for an advance)."""
    month = intent.bill_month or ""
    period = f"{month[5:]}/{month[:4]}" if month else "ADV"
    return f"A/c {intent.new_account_no} {period}"


def intent_uri(cfg: Settings, intent: store.PaymentIntent) -> str:
    """The UPI string of a stored intent, payee from configuration."""
    return upi_uri(payee(cfg, intent.discom), intent.amount_paise, intent.id, intent_note(intent))


# --------------------------------------------------------------------------- intents and tokens


def new_intent_id() -> str:
    """A fresh intent id: ``BSP`` and 13 random letters and digits (no 0/O, 1/I)."""
    return INTENT_PREFIX + "".join(secrets.choice(_INTENT_ALPHABET) for _ in range(13))


def create_intent(
    session: Session,
    cfg: Settings,
    consumer: store.Consumer,
    amount_paise: int,
    *,
    kind: str,
    bill_month: str | None,
    mobile: str | None,
    channel: str | None,
    now: dt.datetime | None = None,
) -> store.PaymentIntent:
    """Store an intent to pay ``amount_paise`` to ``consumer``'s discom, valid for the link TTL."""
    moment = now or utcnow()
    intent = store.PaymentIntent(
        id=new_intent_id(),
        discom=consumer.discom,
        new_account_no=consumer.new_account_no,
        bill_month=bill_month,
        amount_paise=check_amount(amount_paise),
        kind=kind,
        mobile=mobile,
        channel=channel,
        created_at=moment,
        expires_at=moment + dt.timedelta(hours=cfg.payment_link_ttl_hours),
    )
    session.add(intent)
    session.flush()
    return intent


def _serializer(cfg: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(cfg.payment_link_key, salt=TOKEN_SALT)


def make_token(cfg: Settings, intent: store.PaymentIntent) -> str:
    """The signed, timestamped token of a pay link: intent id, amount and account."""
    return str(_serializer(cfg).dumps([intent.id, intent.amount_paise, intent.new_account_no]))


def token_payload(cfg: Settings, token: str, now: dt.datetime | None = None) -> list[object]:
    """The signed payload of ``token``; :class:`ExpiredLink` or :class:`InvalidLink` if not ours."""
    serializer = _serializer(cfg)
    max_age = cfg.payment_link_ttl_hours * 3600
    try:
        if now is None:
            payload = serializer.loads(token, max_age=max_age)
        else:
            payload, signed_at = serializer.loads(token, return_timestamp=True)
            age = (now.replace(tzinfo=dt.timezone.utc) - signed_at).total_seconds()
            if age > max_age:
                raise SignatureExpired("pay link expired", payload=payload)
    except SignatureExpired as exc:
        raise ExpiredLink("this pay link has expired") from exc
    except BadSignature as exc:
        raise InvalidLink("not a pay link of ours") from exc
    if not (isinstance(payload, list) and len(payload) == 3):
        raise InvalidLink("not a pay link of ours")
    return payload


def intent_for_token(
    session: Session, cfg: Settings, token: str, now: dt.datetime | None = None
) -> store.PaymentIntent:
    """The stored intent a valid, unexpired token names, agreeing with it in every field."""
    intent_id, amount, account = token_payload(cfg, token, now)
    intent = session.get(store.PaymentIntent, str(intent_id))
    if intent is None or intent.amount_paise != amount or intent.new_account_no != account:
        raise InvalidLink("the pay link does not match a payment we asked for")
    if (now or utcnow()) > intent.expires_at:
        raise ExpiredLink("this pay link has expired")
    return intent


def pay_url(cfg: Settings, token: str) -> str:
    """Where a consumer opens the pay page."""
    return f"{cfg.public_base_url}/pay/{token}"


def qr_url(cfg: Settings, token: str) -> str:
    """The pay link's QR code as a PNG (sent as WhatsApp media)."""
    return f"{cfg.public_base_url}/pay/{token}/qr.png"


def token_in_url(cfg: Settings, url: str) -> str | None:
    """The token of ``url`` when it is a pay link on exactly our host, else None."""
    ours = urlsplit(cfg.public_base_url)
    try:
        theirs = urlsplit(url if "://" in url else f"https://{url}")
        port_matches = theirs.port == ours.port
    except ValueError:
        return None
    if (theirs.hostname or "").lower() != (ours.hostname or "").lower() or not port_matches:
        return None
    prefix = (ours.path or "").rstrip("/") + "/pay/"
    if not theirs.path.startswith(prefix):
        return None
    token = theirs.path[len(prefix) :].split("/", 1)[0]
    return token or None


# --------------------------------------------------------------------------- receipts


def receipt_url(cfg: Settings, receipt_no: str, code: str, *, pdf: bool = False) -> str:
    """Where a receipt is served (HTML, or the PDF itself)."""
    suffix = ".pdf" if pdf else ""
    return f"{cfg.public_base_url}/receipts/{quote(receipt_no)}{suffix}?code={quote(code)}"


__all__ = [
    "ADVANCE",
    "DUES",
    "AmountOutOfRange",
    "ExpiredLink",
    "InvalidLink",
    "Payee",
    "amount_in_text",
    "check_amount",
    "create_intent",
    "intent_for_token",
    "intent_note",
    "intent_uri",
    "make_token",
    "new_intent_id",
    "pay_url",
    "payee",
    "qr_url",
    "receipt_url",
    "token_in_url",
    "upi_uri",
]
