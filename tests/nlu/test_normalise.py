"""Regional, shorthand and Devanagari-spelled words fold onto the word the training data uses."""

from __future__ import annotations

import pytest

from bot.nlu.normalise import _fold, normalise_roman, normalise_word


@pytest.mark.parametrize(
    ("variants", "word"),
    [
        # Awadhi / Bhojpuri, both scripts
        (("हमार", "hamar", "मेरा"), "mera"),
        (("केतना", "ketna", "कितना", "kitna"), "kitna"),
        (("बा", "ba", "hai", "है"), normalise_word("hai")),
        (("हमका", "humka", "मुझे"), "mujhe"),
        (("नाहीं", "nahin", "nhi", "नहीं"), "nahi"),
        (("बिजुरी", "bijuri", "बिजली", "bijlee"), "bijli"),
        # SMS shorthand and misspellings
        (("pymnt", "paymnt", "payment", "पेमेंट"), "payment"),
        (("rcpt", "reciept", "रिसीप्ट"), normalise_word("receipt")),
        (("PLZ", "pls"), "please"),
        # English written in Devanagari
        (("अकाउंट", "account", "acnt"), "akount"),
        (("बैलेंस", "balance", "bal"), normalise_word("balance")),
        (("लाइट", "light", "lyt"), "light"),
    ],
)
def test_spellings_of_one_word_fold_together(variants: tuple[str, ...], word: str) -> None:
    assert {normalise_word(v) for v in variants} == {word}


def test_roman_words_are_not_folded_by_the_devanagari_table() -> None:
    # लाइट romanises to "let"; the English "let" must stay itself.
    assert normalise_word("let") == "let"
    assert normalise_word("लाइट") == "light"


def test_a_variant_claimed_by_two_words_is_refused() -> None:
    with pytest.raises(ValueError, match="folds onto both"):
        _fold({"hai": "ba bate", "batao": "batai"}, normalise_roman)


@pytest.mark.parametrize(
    "word",
    "है सी से में का की के को नहीं हाँ और भी तो ही था थी पर जो कि यह वह मैं हम आप क्या कब कैसे "
    "बिल बिजली पैसा नोट पे".split(),
)
def test_common_hindi_words_keep_their_own_spelling(word: str) -> None:
    # A Devanagari-English entry must never capture a Hindi word that spells the same
    # (हाई, "high", romanises like है).
    from bot.nlu.normalise import _spell_devanagari

    assert normalise_word(word) == _spell_devanagari(word)
