"""Register detection and language choices in message text."""

from __future__ import annotations

import pytest

from bot.actions.language import EN, HI, HINGLISH, detect_register, parse_language_choice


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
