"""action_validate_slot_mappings: register, explicit language choice, channel, mobile, role."""

from __future__ import annotations

import pytest
from rasa_sdk import Tracker

from bot import signing
from bot.actions.slots import ActionChangeLanguage, ValidateSlotMappings
from bot.actions.turn import sender_of
from tests.actions.helpers import (
    MOBILE,
    STRANGER,
    responses,
    run,
    slots_set,
    tracker,
    vouched,
    whatsapp,
)


def validate(trk):  # type: ignore[no-untyped-def]
    events, messages = run(ValidateSlotMappings(), trk)
    assert messages == []
    return slots_set(events)


def test_reply_register_follows_the_message() -> None:
    assert validate(tracker("मेरा बिल कितना है", intent="ask_bill_amount"))["language"] == "hi"
    assert validate(tracker("bil kitna h", intent="ask_bill_amount"))["language"] == "hinglish"
    assert (
        validate(
            tracker("how much is my bill", intent="ask_bill_amount", slots={"language": "hi"})
        )["language"]
        == "en"
    )


def test_neutral_message_keeps_the_register_and_sets_nothing_new() -> None:
    assert "language" not in validate(tracker("456789", slots={"language": "hi"}))
    assert validate(tracker("ok", intent="affirm"))["language"] == "hinglish"


def test_a_language_choice_outlasts_later_messages() -> None:
    chosen = validate(tracker("English please", intent="change_language", slots={"language": "hi"}))
    assert chosen == {"language_choice": "en", "language": "en"}
    later = validate(
        tracker(
            "mera bill kitna hai",
            intent="ask_bill_amount",
            slots={"language": "en", "language_choice": "en"},
        )
    )
    assert "language" not in later  # stays English
    again = validate(
        tracker(
            "हिंदी में", intent="change_language", slots={"language": "en", "language_choice": "en"}
        )
    )
    assert again == {"language_choice": "hi", "language": "hi"}


def test_language_words_outside_change_language_are_not_a_choice() -> None:
    slots = validate(tracker("english bill chahiye", intent="ask_bill_amount"))
    assert "language_choice" not in slots
    assert slots["language"] == "hinglish"


def test_channel_mobile_and_claimed_role_come_from_the_channels_vouch() -> None:
    slots = validate(tracker("hi", intent="greet", **whatsapp(MOBILE)))
    assert slots["mobile"] == MOBILE
    assert slots["role"] == "consumer"
    assert "channel" not in slots  # already whatsapp
    sms = validate(tracker("bill", intent="ask_bill_amount", **vouched(MOBILE, channel="sms")))
    assert (sms["channel"], sms["mobile"]) == ("sms", MOBILE)
    staff = validate(tracker("hi", **vouched(MOBILE, role="staff")))
    assert staff["role"] == "staff"


def test_without_a_vouch_the_sender_is_anonymous() -> None:
    slots = validate(tracker("hello", intent="greet", sender_id="default"))
    assert slots == {"language": "hinglish"}
    junk = validate(tracker("hi", metadata={"mobile": "12345", "channel": "fax", "role": "admin"}))
    assert junk == {"language": "hinglish"}


def _forged_trackers() -> dict[str, Tracker]:
    """Ways a caller other than the gateway channel might name a sender, each alone."""
    good = vouched(MOBILE)
    entry = good["metadata"][signing.VOUCH_KEY]
    return {
        "a sender id": tracker("hi", sender_id=f"sms:{MOBILE}"),
        "a mobile in metadata": tracker(
            "hi",
            sender_id=f"whatsapp:{MOBILE}",
            metadata={"channel": "whatsapp", "mobile": MOBILE, "role": "staff"},
        ),
        "slots": tracker("hi", slots={"mobile": MOBILE, "role": "staff", "channel": "sms"}),
        "a vouch signed with another key": tracker(
            "hi",
            sender_id=good["sender_id"],
            metadata={
                signing.VOUCH_KEY: signing.vouch(
                    "guessed-secret",
                    good["sender_id"],
                    good["message_id"],
                    signing.VouchedSender("whatsapp", MOBILE, "consumer"),
                )
            },
            message_id=good["message_id"],
        ),
        "a vouch with its mobile changed": tracker(
            "hi",
            sender_id=good["sender_id"],
            metadata={signing.VOUCH_KEY: {**entry, "mobile": STRANGER}},
            message_id=good["message_id"],
        ),
        "a vouch with its role raised": tracker(
            "hi",
            sender_id=good["sender_id"],
            metadata={signing.VOUCH_KEY: {**entry, "role": "staff"}},
            message_id=good["message_id"],
        ),
        "a vouch copied into another conversation": tracker(
            "hi",
            sender_id=f"whatsapp:{STRANGER}",
            metadata=good["metadata"],
            message_id=good["message_id"],
        ),
        "a vouch copied onto a later message": tracker(
            "hi",
            sender_id=good["sender_id"],
            metadata=good["metadata"],
            message_id="0" * 32,
        ),
    }


@pytest.mark.parametrize("how", list(_forged_trackers()))
def test_a_sender_named_any_other_way_is_anonymous(how: str) -> None:
    trk = _forged_trackers()[how]
    sender = sender_of(trk)
    assert (sender.mobile, sender.channel, sender.claimed_role) == (None, None, None)
    assert sender.key == "anonymous"
    assert {"mobile", "role", "channel"}.isdisjoint(validate(trk))


def test_the_same_vouch_is_believed_where_it_belongs() -> None:
    """Control for the test above: the untouched vouch names the sender."""
    sender = sender_of(tracker("hi", **vouched(MOBILE, role="staff", channel="sms")))
    assert (sender.mobile, sender.channel, sender.claimed_role) == (MOBILE, "sms", "staff")
    assert sender.key == MOBILE


def test_extracted_account_numbers_are_normalised() -> None:
    candidate = [{"event": "slot", "name": "account_number", "value": "४५६७८९"}]
    trk = tracker(
        "४५६७८९",
        intent="inform_account_number",
        slots={"account_number": "४५६७८९", "language": "hi"},
        events=candidate,
    )
    assert validate(trk) == {"account_number": "456789"}
    bad = tracker(
        "12345",
        slots={"account_number": "12345", "language": "hi"},
        events=[{"event": "slot", "name": "account_number", "value": "12345"}],
    )
    assert validate(bad) == {"account_number": None}


def test_a_menu_digit_tagged_as_an_account_number_keeps_the_one_held() -> None:
    # DIET tags "2" as account_number; the number given earlier must survive it.
    events = [
        {"event": "slot", "name": "account_number", "value": "1234567890"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "2"},
        {"event": "slot", "name": "account_number", "value": "2"},
    ]
    trk = tracker(
        "2",
        intent="inform_account_number",
        entities={"account_number": "2"},
        slots={"account_number": "2", "language": "hi"},
        events=events,
    )
    assert validate(trk) == {"account_number": "1234567890"}


def test_change_language_confirms_or_asks() -> None:
    events, messages = run(
        ActionChangeLanguage(), tracker("hindi mein baat karo", intent="change_language")
    )
    assert responses(messages) == ["utter_language_changed"]
    assert slots_set(events) == {"language_choice": "hi", "language": "hi"}
    events, messages = run(
        ActionChangeLanguage(), tracker("language change karo", intent="change_language")
    )
    assert responses(messages) == ["utter_ask_language"]
    assert events == []
