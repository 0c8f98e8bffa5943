"""Is this payment link genuine? The checks behind ``verify_payment_link``.

Genuine is narrow: a pay link on our own host whose token is valid and unexpired, or a UPI id
configured as a discom's merchant VPA. Everything else is not vouched for, and the known fraud
patterns get their own warning: a personal or look-alike UPI id, a look-alike domain, "your
connection will be cut tonight, call this number", and requests for an OTP, a PIN or a
screen-sharing app. The verdict names response keys; the words live in the domain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy.orm import Session

from bot import paylinks, store
from bot.money import format_rupees
from bot.settings import UPI_DISCOMS, PaymentsNotConfigured, Settings

GENUINE_LINK = "genuine_link"
GENUINE_VPA = "genuine_vpa"
OFFICIAL_SITE = "official_site"
EXPIRED_LINK = "expired_link"
TAMPERED_LINK = "tampered_link"
PERSONAL_VPA = "personal_vpa"
LOOKALIKE_VPA = "lookalike_vpa"
LOOKALIKE_DOMAIN = "lookalike_domain"
UNKNOWN_LINK = "unknown_link"
DISCONNECTION_CALL = "disconnection_call"
OTP_PIN = "otp_pin"
SCREEN_SHARE = "screen_share"
NOTHING_TO_CHECK = "nothing_to_check"

#: Verdicts that vouch for what was sent; every other one is a warning.
GENUINE = (GENUINE_LINK, GENUINE_VPA, OFFICIAL_SITE)

#: UPPCL's own website (the bot's answers send people there too).
OFFICIAL_DOMAINS = ("uppcl.org",)
#: Words a fraudster borrows to look official, in a domain or a UPI id.
BRAND_WORDS = (
    "uppcl",
    "kesco",
    "pvvnl",
    "mvvnl",
    "dvvnl",
    "puvvnl",
    "bijli",
    "vidyut",
    "electricity",
    "discom",
)

#: Top-level domains a bare (scheme-less) link is recognised by; "bill.pay" is not a link.
_TLDS = (
    "com|in|org|net|co|info|xyz|online|site|top|link|app|me|io|ly|gov|biz|live|shop|club|store|"
    "tk|ml|ga|cf|gq|cc|ws|icu|buzz|click|page|website|today|support|services"
)
_URL = re.compile(
    rf"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s<>\"']*)?",
    re.I,
)
_UPI_URI = re.compile(r"upi://pay\?[^\s<>\"']+", re.I)
_VPA = re.compile(
    r"(?<![\w.@-])([a-z0-9][a-z0-9._-]{1,255}@[a-z][a-z0-9]{1,63})(?![\w@.-]*\.[a-z])", re.I
)
_PHONE = re.compile(r"(?<!\d)(?:\+?91[\s-]?|0)?[6-9]\d{4}[\s-]?\d{5}(?!\d)")
_DISCONNECT = re.compile(
    r"disconnect|cut\s*off|will\s+be\s+cut|be\s+cut|tonight|today\s+night|9[.:]30|"
    r"kaat|kat\s*(?:di|jayeg|jaega|jayega|dega)|katega|aaj\s*raat|"
    r"काट|कट\s*जाएग|आज\s*रात|बिजली\s*बंद\s*(?:हो|कर)",
    re.I,
)
_CALL = re.compile(r"\bcall\b|contact|phone|call\s*kar|sampark|संपर्क|कॉल|फोन", re.I)
_OTP = re.compile(r"\botp\b|\bpin\b|\bcvv\b|\bmpin\b|ओटीपी|पिन|one[\s-]time\s+password", re.I)
_SCREEN = re.compile(
    r"anydesk|any\s+desk|teamviewer|team\s+viewer|quick\s*support|rustdesk|airdroid|"
    r"screen\s*shar|ultraviewer|एनीडेस्क|स्क्रीन\s*शेयर",
    re.I,
)


@dataclass
class Verdict:
    """What the checks found: the main finding, the others, and what the bot may show."""

    kind: str
    findings: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def genuine(self) -> bool:
        return self.kind in GENUINE and not set(self.findings) - set(GENUINE)


def _host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        return (parts.hostname or "").lower().rstrip(".") or None
    except ValueError:
        return None


def _is_within(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def _looks_like(host: str, domains: list[str]) -> bool:
    """True when ``host`` borrows a brand word or is a near-miss of one of ``domains``."""
    bare = host.removeprefix("www.")
    label = bare.split(".")[0]
    for domain in domains:
        if SequenceMatcher(None, bare, domain).ratio() >= 0.75:
            return True
        if SequenceMatcher(None, label, domain.split(".")[0]).ratio() >= 0.8:
            return True
    return any(word in bare.replace("-", "") for word in BRAND_WORDS)


def configured_payees(cfg: Settings) -> list[paylinks.Payee]:
    """Every discom payee that may take payments (unconfigured ones are skipped)."""
    found = []
    for discom in UPI_DISCOMS:
        try:
            found.append(paylinks.payee(cfg, discom))
        except PaymentsNotConfigured:
            continue
    return found


def _vpa_verdict(cfg: Settings, vpa: str) -> tuple[str, dict[str, str]]:
    vpa = vpa.lower()
    for payee_ in configured_payees(cfg):
        if vpa == payee_.vpa.lower():
            return GENUINE_VPA, {"vpa": vpa, "payee": payee_.name}
    name = vpa.split("@", 1)[0]
    if any(word in name.replace(".", "").replace("-", "") for word in BRAND_WORDS):
        return LOOKALIKE_VPA, {"vpa": vpa}
    return PERSONAL_VPA, {"vpa": vpa}


def _link_verdict(session: Session, cfg: Settings, url: str) -> tuple[str, dict[str, str]] | None:
    host = _host_of(url)
    if host is None:
        return None
    ours = _host_of(cfg.public_base_url) or ""
    if host == ours:
        token = paylinks.token_in_url(cfg, url)
        if token is None:
            return OFFICIAL_SITE, {"link": url}
        try:
            intent = paylinks.intent_for_token(session, cfg, token)
        except paylinks.ExpiredLink:
            return EXPIRED_LINK, {"link": url}
        except (paylinks.InvalidLink, PaymentsNotConfigured):
            # Without a signing key no link of ours can exist: this one was made elsewhere.
            return TAMPERED_LINK, {"link": url}
        month = intent.bill_month
        return GENUINE_LINK, {
            "account": intent.new_account_no,
            "amount": format_rupees(intent.amount_paise),
            "period": f"{month[5:]}/{month[:4]}" if month else "—",
            "payee": paylinks.payee(cfg, intent.discom).name,
        }
    if any(_is_within(host, d) for d in OFFICIAL_DOMAINS):
        return OFFICIAL_SITE, {"link": host}
    # "https://uppcl.org@evil.in/": the part before "@" is only a user name, shown to deceive.
    deceptive = "@" in urlsplit(url if "://" in url else f"https://{url}").netloc
    if deceptive or _looks_like(host, [ours, *OFFICIAL_DOMAINS]):
        return LOOKALIKE_DOMAIN, {"domain": host}
    return UNKNOWN_LINK, {"domain": host}


def check(session: Session, cfg: Settings, text: str) -> Verdict:
    """Judge a pasted link, UPI id, QR text or forwarded message."""
    found: list[tuple[str, dict[str, str]]] = []
    rest = text
    for match in _UPI_URI.finditer(text):
        fields = dict(parse_qsl(urlsplit(match.group(0)).query))
        kind, values = _vpa_verdict(cfg, unquote(fields.get("pa", "")))
        if kind == GENUINE_VPA and fields.get("tr"):
            intent = session.get(store.PaymentIntent, fields["tr"])
            if intent is not None:
                values["account"] = intent.new_account_no
                values["amount"] = format_rupees(intent.amount_paise)
        found.append((kind, values))
        rest = rest.replace(match.group(0), " ")
    # UPI ids before links, so that "name.surname@bank" is not read as a domain.
    for match in _VPA.finditer(rest):
        found.append(_vpa_verdict(cfg, match.group(1)))
        rest = rest.replace(match.group(0), " ")
    for match in _URL.finditer(rest):
        verdict = _link_verdict(session, cfg, match.group(0).rstrip(".,;:!?)"))
        if verdict is not None:
            found.append(verdict)

    # Tricks that need no link: they come first, since they are the most dangerous.
    tricks: list[tuple[str, dict[str, str]]] = []
    if _SCREEN.search(text):
        tricks.append((SCREEN_SHARE, {}))
    if _OTP.search(text):
        tricks.append((OTP_PIN, {}))
    phone = _PHONE.search(text)
    if _DISCONNECT.search(text) and (phone or _CALL.search(text)):
        tricks.append((DISCONNECTION_CALL, {"phone": phone.group(0) if phone else ""}))

    ordered = tricks + sorted(found, key=lambda kv: kv[0] in GENUINE)
    if not ordered:
        return Verdict(NOTHING_TO_CHECK)
    kind, values = ordered[0]
    return Verdict(kind, [k for k, _ in ordered[1:]], values)


__all__ = ["GENUINE", "Verdict", "check"]
