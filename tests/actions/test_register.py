"""Register detection, language choices, account numbers and menu digits in message text."""

from __future__ import annotations

import pytest

from bot.actions.register import (
    EN,
    HI,
    HINGLISH,
    account_number_in,
    detect_register,
    menu_choice,
    normalize_account_number,
    parse_language_choice,
)


@pytest.mark.parametrize(
    "text",
    [
        "मेरा नया अकाउंट नंबर क्या है",
        "बिजली नहीं आ रही",
        "मेरा new account number क्या है",
        "new नंबर बताओ",
        "456789 नंबर है",
    ],
)
def test_devanagari_is_hindi(text: str) -> None:
    assert detect_register(text, EN) == HI


@pytest.mark.parametrize(
    "text",
    [
        "mera naya account number kya hai",
        "bil kitna h",
        "bijli nahi aa rahi subah se",
        "purana no 567123 hai naya kya hoga",
        "account number change ho gaya new wala kya hai",
        "KESCO NE NUMBER BADAL DIYA",
        "light kab aayegi",
        "payment kiya tha par dikh nahi raha",
    ],
)
def test_roman_hindi_is_hinglish(text: str) -> None:
    assert detect_register(text, EN) == HINGLISH


@pytest.mark.parametrize(
    "text",
    [
        "what is my new account number",
        "my old account number is 34567812, what's the new one",
        "how much do I owe",
        "there is a power cut since morning",
        "Is this payment link genuine?",
        "main menu",
        "send me my receipt",
    ],
)
def test_english_is_english(text: str) -> None:
    assert detect_register(text, HINGLISH) == EN


@pytest.mark.parametrize(
    "text", ["456789", "2", "ok", "OK!!", "hi", "👍", "", "  ", "thanks", "help"]
)
@pytest.mark.parametrize("previous", [HI, HINGLISH, EN])
def test_neutral_messages_keep_the_previous_register(text: str, previous: str) -> None:
    assert detect_register(text, previous) == previous


def test_without_a_previous_register_neutral_messages_get_the_default() -> None:
    assert detect_register("ok", None) == HINGLISH
    assert detect_register("123456", "klingon") == HINGLISH


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("hindi mein baat karo", HI),
        ("हिंदी में", HI),
        ("हिन्दी में लिखिए", HI),
        ("English please", EN),
        ("reply in english", EN),
        ("angrezi me batao", EN),
        ("इंग्लिश में बोलो", EN),
        ("hinglish me likho", HINGLISH),
        ("english nahi aati hindi me bolo", HI),
        ("मुझे अंग्रेजी नहीं आती", HI),
        ("i dont understand hindi", EN),
        ("change language to hindi", HI),
        ("switch language", None),
        ("bhasha badlo", None),
        ("", None),
    ],
)
def test_language_choice(text: str, choice: str | None) -> None:
    assert parse_language_choice(text) == choice


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("mera purana number 456789 hai naya kya hai", "456789"),
        ("old acc no 5566778", "5566778"),
        ("3456 7890 12", "3456789012"),
        ("खाता ४५६७८९", "456789"),
        ("call me on 98765 43210 1", None),
        ("12345", None),
        ("txn id 123456789012", None),
        ("2", None),
        ("purana 456789 1234567890", "456789"),
    ],
)
def test_account_number_in_text(text: str, number: str | None) -> None:
    assert account_number_in(text) == number


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("456789", "456789"),
        (" 1234-567-890 ", "1234567890"),
        ("१२३४५६७", "1234567"),
        ("12345", None),
        ("123456789", None),
        (None, None),
        ("abcdef", None),
    ],
)
def test_normalize_account_number(value: object, normalized: str | None) -> None:
    assert normalize_account_number(value) == normalized


@pytest.mark.parametrize(
    ("text", "choice"),
    [
        ("1", "new_number"),
        ("2", "bill"),
        ("२", "bill"),
        (" 5. ", "power_cut"),
        ("option 9", "handoff"),
        ("८", "balance"),
        ("0", None),
        ("10", None),
        ("22", None),
        ("2 bill", None),
        ("456789", None),
    ],
)
def test_menu_choice(text: str, choice: str | None) -> None:
    assert menu_choice(text) == choice
