"""bot/signing.py: what the gateway signs for Rasa, and the sender Rasa vouches for to actions."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import signing

SECRET = "s3cret-for-tests"
MOBILE = "+919876543210"


def message(**changes: object) -> signing.GatewayMessage:
    base = signing.new_message("whatsapp", MOBILE, "consumer", "bill kitna hai", "Ramesh")
    return signing.GatewayMessage(**{**json.loads(base.body()), **changes})


def test_a_signed_body_reads_back_as_the_same_message() -> None:
    sent = message(text="मेरा बिल कितना है")
    body, headers = signing.signed_request(SECRET, sent)
    assert body.isascii()  # any text survives the trip
    assert signing.signature_matches(SECRET, body, headers[signing.SIGNATURE_HEADER])
    assert signing.GatewayMessage.from_body(body) == sent
    assert sent.sender_id == f"whatsapp:{MOBILE}"


def test_every_message_gets_its_own_nonce_and_the_current_time() -> None:
    first, second = message(), message()
    assert first.nonce != second.nonce and len(first.nonce) == 32
    assert abs(first.sent_at - time.time()) <= 2


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha256=" + "0" * 64, "not even hex ✓", "SHA256=abc"],
)
def test_a_missing_or_wrong_signature_does_not_match(signature: str | None) -> None:
    body, _ = signing.signed_request(SECRET, message())
    assert not signing.signature_matches(SECRET, body, signature)


def test_a_signature_binds_the_key_and_every_byte() -> None:
    body, headers = signing.signed_request(SECRET, message())
    signature = headers[signing.SIGNATURE_HEADER]
    assert not signing.signature_matches("another-key", body, signature)
    assert not signing.signature_matches(SECRET, body.replace(b"3210", b"3211"), signature)
    assert not signing.signature_matches(SECRET, body + b" ", signature)


def test_freshness_is_a_window_either_side_of_the_timestamp() -> None:
    now = float(int(time.time()))
    assert message(sent_at=int(now)).is_fresh(now)
    assert message(sent_at=int(now) - signing.MAX_AGE_SECONDS).is_fresh(now)
    assert not message(sent_at=int(now) - signing.MAX_AGE_SECONDS - 2).is_fresh(now)
    assert not message(sent_at=int(now) + signing.MAX_AGE_SECONDS + 2).is_fresh(now)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "telegram"}, "channel"),
        ({"mobile": "+12025550123"}, "mobile"),  # not an Indian mobile
        ({"mobile": "9876543210"}, "mobile"),  # not E.164
        ({"mobile": None}, "mobile"),
        ({"role": "admin"}, "role"),
        ({"text": "   "}, "text"),
        ({"text": "x" * (signing.MAX_TEXT_CHARS + 1)}, "text"),
        ({"profile_name": ["a"]}, "profile_name"),
        ({"sent_at": "1700000000"}, "sent_at"),
        ({"sent_at": True}, "sent_at"),
        ({"nonce": "short"}, "nonce"),
        ({"nonce": "Z" * 32}, "nonce"),
    ],
)
def test_a_body_with_a_bad_field_is_not_a_message(changes: dict[str, object], field: str) -> None:
    data = {**json.loads(message().body()), **changes}
    with pytest.raises(signing.BadMessage, match=field):
        signing.GatewayMessage.from_body(json.dumps(data).encode())


def test_extra_fields_do_not_change_who_wrote() -> None:
    data = {
        **json.loads(message().body()),
        "sender": "whatsapp:+919000000101",
        "metadata": {"mobile": "+919000000101", "role": "staff"},
    }
    read = signing.GatewayMessage.from_body(json.dumps(data).encode())
    assert (read.sender_id, read.role) == (f"whatsapp:{MOBILE}", "consumer")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_body_is_a_message_or_bad_never_a_crash(body: bytes) -> None:
    try:
        signing.GatewayMessage.from_body(body)
    except signing.BadMessage:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["channel", "mobile", "role", "text", "profile_name", "sent_at", "nonce", "x"]
        ),
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.text(max_size=40), st.lists(st.text())
        ),
    )
)
def test_any_json_object_is_a_message_or_bad_never_a_crash(data: dict[str, object]) -> None:
    try:
        signing.GatewayMessage.from_body(json.dumps(data).encode())
    except signing.BadMessage:
        pass


# --------------------------------------------------------------------------- the vouch

SENDER = signing.VouchedSender("sms", MOBILE, "staff")
SENDER_ID = f"sms:{MOBILE}"
MESSAGE_ID = "ab" * 16


def metadata() -> dict[str, object]:
    return {signing.VOUCH_KEY: signing.vouch(SECRET, SENDER_ID, MESSAGE_ID, SENDER)}


def test_a_vouch_names_its_sender_on_its_message() -> None:
    assert signing.vouched_sender(SECRET, SENDER_ID, MESSAGE_ID, metadata()) == SENDER


@pytest.mark.parametrize(
    ("secret", "sender_id", "message_id", "meta"),
    [
        ("another-key", SENDER_ID, MESSAGE_ID, metadata()),
        (SECRET, f"whatsapp:{MOBILE}", MESSAGE_ID, metadata()),  # another conversation
        (SECRET, SENDER_ID, "cd" * 16, metadata()),  # another message
        (SECRET, SENDER_ID, None, metadata()),
        (SECRET, SENDER_ID, MESSAGE_ID, {}),
        (SECRET, SENDER_ID, MESSAGE_ID, None),
        (SECRET, SENDER_ID, MESSAGE_ID, {"mobile": MOBILE, "role": "staff"}),
        (SECRET, SENDER_ID, MESSAGE_ID, {signing.VOUCH_KEY: "yes"}),
    ],
)
def test_a_vouch_out_of_place_or_absent_names_nobody(
    secret: str, sender_id: str, message_id: object, meta: object
) -> None:
    assert signing.vouched_sender(secret, sender_id, message_id, meta) is None


@pytest.mark.parametrize(
    "changes",
    [{"mobile": "+919000000101"}, {"role": "consumer"}, {"channel": "whatsapp"}, {"signature": 1}],
)
def test_a_vouch_with_a_field_changed_names_nobody(changes: dict[str, object]) -> None:
    meta = metadata()
    meta[signing.VOUCH_KEY] = {**meta[signing.VOUCH_KEY], **changes}  # type: ignore[dict-item]
    assert signing.vouched_sender(SECRET, SENDER_ID, MESSAGE_ID, meta) is None


def test_a_location_pin_travels_in_the_signed_body() -> None:
    message = signing.new_message("whatsapp", "+919812345678", "consumer", "hi", "", (26.4, 80.3))
    assert signing.GatewayMessage.from_body(message.body()) == message
    plain = signing.new_message("whatsapp", "+919812345678", "consumer", "hi")
    assert b"latitude" not in plain.body()
    assert signing.GatewayMessage.from_body(plain.body()).latitude is None


@pytest.mark.parametrize(
    "location",
    [
        {"latitude": 26.4},
        {"latitude": 91.0, "longitude": 80.0},
        {"latitude": "26.4", "longitude": 80.0},
        {"latitude": True, "longitude": 80.0},
    ],
)
def test_a_body_with_a_bad_location_is_not_a_message(location: dict[str, object]) -> None:
    data = json.loads(signing.new_message("sms", "+919812345678", "consumer", "hi").body())
    with pytest.raises(signing.BadMessage, match="location"):
        signing.GatewayMessage.from_body(json.dumps({**data, **location}).encode())


def test_a_location_vouch_holds_only_for_its_conversation_message_and_place() -> None:
    entry = signing.vouch_location(SECRET, "whatsapp:+919812345678", "n1", 26.4268, 80.3325)
    metadata = {signing.LOCATION_KEY: entry}
    assert signing.vouched_location(SECRET, "whatsapp:+919812345678", "n1", metadata) == (
        26.4268,
        80.3325,
    )
    assert signing.vouched_location(SECRET, "whatsapp:+919800000000", "n1", metadata) is None
    assert signing.vouched_location(SECRET, "whatsapp:+919812345678", "n2", metadata) is None
    moved = {signing.LOCATION_KEY: {**entry, "latitude": 26.5}}
    assert signing.vouched_location(SECRET, "whatsapp:+919812345678", "n1", moved) is None
    assert signing.vouched_location("other", "whatsapp:+919812345678", "n1", metadata) is None
