"""The gateway's word to Rasa, signed: who wrote what, and the sender Rasa vouches for to actions.

The worker hands each message to Rasa's ``bijli`` input channel (bot/rasa_runtime/channel.py) as
a JSON body with an HMAC-SHA256 of the raw bytes, keyed by BIJLI_GATEWAY_SECRET, in
:data:`SIGNATURE_HEADER`. The body names the sender (channel, E.164 mobile, role), the text, when
it was signed (a captured request goes stale after :data:`MAX_AGE_SECONDS`) and a nonce (the
channel accepts each one once). Nothing else in a request says who wrote.

The channel passes the sender on to the actions in the message's metadata under
:data:`VOUCH_KEY`, with an HMAC bound to the conversation and to the message, so an action
believes a mobile only when the channel put it there: not a ``mobile`` some other caller wrote
into metadata, not a slot, not a sender id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from bot.areas import valid_coordinates
from bot.phone import normalise_indian_mobile

#: Name of the input channel; Rasa serves it under /webhooks/<name>/.
CHANNEL_NAME = "bijli"
#: Where the gateway posts a message on the Rasa server.
WEBHOOK_PATH = f"/webhooks/{CHANNEL_NAME}/webhook"
#: Header carrying ``sha256=<hex HMAC of the raw body>``.
SIGNATURE_HEADER = "X-Bijli-Signature"
#: Seconds a signed request stays acceptable either side of its timestamp (covers the clock skew
#: between the worker's and Rasa's machines; the worker signs just before it posts).
MAX_AGE_SECONDS = 60
#: Message metadata key under which the channel vouches for the sender.
VOUCH_KEY = "bijli_sender"
#: Message metadata key under which the channel vouches for a WhatsApp location pin.
LOCATION_KEY = "bijli_location"

CHANNELS = ("sms", "whatsapp")
ROLES = ("consumer", "staff")
#: Longest text a signed message may carry (the gateway cuts at 500 characters).
MAX_TEXT_CHARS = 2000
MAX_PROFILE_NAME_CHARS = 200
_NONCE_CHARS = set("0123456789abcdef")
_VOUCH_DOMAIN = "bijli-vouch-v1"
_LOCATION_DOMAIN = "bijli-location-v1"


class BadMessage(ValueError):
    """A correctly signed body that does not hold a message (the text says which field)."""


@dataclass(frozen=True)
class GatewayMessage:
    """One inbound message as the gateway hands it to Rasa."""

    channel: str
    mobile: str
    role: str
    text: str
    profile_name: str
    sent_at: int
    nonce: str
    #: A WhatsApp location pin sent with (or as) the message, in degrees.
    latitude: float | None = None
    longitude: float | None = None

    @property
    def sender_id(self) -> str:
        """Rasa's conversation id for this sender: ``<channel>:<E.164>``."""
        return f"{self.channel}:{self.mobile}"

    def body(self) -> bytes:
        """The exact bytes that are signed and posted (ASCII: any text survives the trip)."""
        data = asdict(self)
        if self.latitude is None or self.longitude is None:
            # Most messages carry no pin: their body stays as it was before pins were passed.
            del data["latitude"], data["longitude"]
        return json.dumps(data, separators=(",", ":")).encode()

    def is_fresh(self, now: float | None = None) -> bool:
        """True while the signature's timestamp is within :data:`MAX_AGE_SECONDS` of ``now``."""
        moment = time.time() if now is None else now
        return abs(moment - self.sent_at) <= MAX_AGE_SECONDS

    @classmethod
    def from_body(cls, body: bytes) -> GatewayMessage:
        """Read a signed body; :class:`BadMessage` when a field is missing or invalid."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadMessage("body is not JSON") from exc
        if not isinstance(data, dict):
            raise BadMessage("body is not a JSON object")
        channel, mobile, role = data.get("channel"), data.get("mobile"), data.get("role")
        text, profile_name = data.get("text"), data.get("profile_name", "")
        sent_at, nonce = data.get("sent_at"), data.get("nonce")
        if channel not in CHANNELS:
            raise BadMessage("channel")
        if not isinstance(mobile, str) or normalise_indian_mobile(mobile) != mobile:
            raise BadMessage("mobile")
        if role not in ROLES:
            raise BadMessage("role")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise BadMessage("text")
        if not isinstance(profile_name, str) or len(profile_name) > MAX_PROFILE_NAME_CHARS:
            raise BadMessage("profile_name")
        if not isinstance(sent_at, int) or isinstance(sent_at, bool):
            raise BadMessage("sent_at")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64 or set(nonce) - _NONCE_CHARS:
            raise BadMessage("nonce")
        latitude, longitude = data.get("latitude"), data.get("longitude")
        if (latitude, longitude) != (None, None) and not _is_place(latitude, longitude):
            raise BadMessage("location")
        return cls(channel, mobile, role, text, profile_name, sent_at, nonce, latitude, longitude)


def _is_place(latitude: object, longitude: object) -> bool:
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in (latitude, longitude)
    )
    return numbers and valid_coordinates(float(latitude), float(longitude))  # type: ignore[arg-type]


def new_message(
    channel: str,
    mobile: str,
    role: str,
    text: str,
    profile_name: str = "",
    location: tuple[float, float] | None = None,
) -> GatewayMessage:
    """A message stamped now, with a fresh nonce (and the location pin it carries, if any)."""
    return GatewayMessage(
        channel=channel,
        mobile=mobile,
        role=role,
        text=text,
        profile_name=profile_name[:MAX_PROFILE_NAME_CHARS],
        sent_at=int(time.time()),
        nonce=secrets.token_hex(16),
        latitude=location[0] if location else None,
        longitude=location[1] if location else None,
    )


def sign(secret: str, data: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``data`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def signature_matches(secret: str, data: bytes, signature: str | None) -> bool:
    """True when ``signature`` is :func:`sign`'s for ``data``, compared in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, data).encode(), signature.encode("utf-8", "replace"))


def signed_request(secret: str, message: GatewayMessage) -> tuple[bytes, dict[str, str]]:
    """The body to post and the headers that go with it."""
    body = message.body()
    return body, {SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"}


@dataclass(frozen=True)
class VouchedSender:
    """Who wrote, as the channel vouches for them."""

    channel: str
    mobile: str
    role: str


def _vouch_data(sender_id: str, message_id: str, sender: VouchedSender) -> bytes:
    # A JSON array: unambiguous whatever the fields hold, and never a request body (an object).
    parts = [_VOUCH_DOMAIN, sender_id, message_id, sender.channel, sender.mobile, sender.role]
    return json.dumps(parts, separators=(",", ":")).encode()


def vouch(secret: str, sender_id: str, message_id: str, sender: VouchedSender) -> dict[str, str]:
    """The metadata entry by which the channel vouches for ``sender`` on one message."""
    return {**asdict(sender), "signature": sign(secret, _vouch_data(sender_id, message_id, sender))}


def vouched_sender(
    secret: str, sender_id: str, message_id: object, metadata: object
) -> VouchedSender | None:
    """The sender the channel vouched for on this message of this conversation, else None."""
    entry = metadata.get(VOUCH_KEY) if isinstance(metadata, dict) else None
    if not isinstance(entry, dict) or not isinstance(message_id, str):
        return None
    fields: dict[str, Any] = {key: entry.get(key) for key in ("channel", "mobile", "role")}
    if not all(isinstance(value, str) for value in fields.values()):
        return None
    sender = VouchedSender(**fields)
    data = _vouch_data(sender_id, message_id, sender)
    signature = entry.get("signature")
    if not isinstance(signature, str) or not signature_matches(secret, data, signature):
        return None
    return sender


def _location_data(sender_id: str, message_id: str, latitude: float, longitude: float) -> bytes:
    parts = [_LOCATION_DOMAIN, sender_id, message_id, float(latitude), float(longitude)]
    return json.dumps(parts, separators=(",", ":")).encode()


def vouch_location(
    secret: str, sender_id: str, message_id: str, latitude: float, longitude: float
) -> dict[str, Any]:
    """The metadata entry by which the channel vouches for a location pin on one message."""
    data = _location_data(sender_id, message_id, latitude, longitude)
    return {"latitude": latitude, "longitude": longitude, "signature": sign(secret, data)}


def vouched_location(
    secret: str, sender_id: str, message_id: object, metadata: object
) -> tuple[float, float] | None:
    """The location pin the channel vouched for on this message, else None."""
    entry = metadata.get(LOCATION_KEY) if isinstance(metadata, dict) else None
    if not isinstance(entry, dict) or not isinstance(message_id, str):
        return None
    latitude, longitude = entry.get("latitude"), entry.get("longitude")
    if not _is_place(latitude, longitude):
        return None
    lat, lon = float(latitude), float(longitude)  # type: ignore[arg-type]
    signature = entry.get("signature")
    data = _location_data(sender_id, message_id, lat, lon)
    if not isinstance(signature, str) or not signature_matches(secret, data, signature):
        return None
    return lat, lon


__all__ = [
    "BadMessage",
    "LOCATION_KEY",
    "CHANNEL_NAME",
    "GatewayMessage",
    "MAX_AGE_SECONDS",
    "SIGNATURE_HEADER",
    "VOUCH_KEY",
    "VouchedSender",
    "WEBHOOK_PATH",
    "new_message",
    "sign",
    "signature_matches",
    "signed_request",
    "vouch",
    "vouch_location",
    "vouched_location",
    "vouched_sender",
]
