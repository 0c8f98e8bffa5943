"""What an account number is (bot/accounts.py), and finding one in a message."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.accounts import (
    Context,
    Kind,
    Reading,
    account_number_in,
    account_numbers_in,
    ascii_digits,
    is_account_number,
    is_new_account_number,
    is_old_account_number,
    normalise_account_number,
    read_numbers,
)
from bot.importers.values import BadValue, parse_account

#: Contexts the actions pass (bot/actions/turn.py reading_context).
NONE = Context()
ASKED = Context(asked=True)  # the account form's question, or "not found, send it again"
ABOUT = Context(about_account=True)  # the NLU's intent asks about an account (bill, receipt...)
OWN = Context(mobile="+919876543210")  # the sender's own mobile

#: Messages as consumers write them, and how each must be read: the account number it gives, or
#: (giving none) what its account-length number is. Hindi, Hinglish and English.
MESSAGES: list[tuple[str, Context, str | Kind]] = [
    # The three readings issue 9 reported.
    ("maine 20-11-2026 ko 1500 rs bhara", ABOUT, Kind.DATE),
    ("mobile 9876543210", NONE, Kind.MOBILE),
    ("paid 150000", ABOUT, Kind.AMOUNT),
    # Account words make a number an account number, even one shaped like a mobile.
    ("mera purana number 456789 hai naya kya hai", NONE, "456789"),
    ("old acc no 5566778", NONE, "5566778"),
    ("a/c no. 10293847 hai ji", NONE, "10293847"),
    ("my old account number is 456789, what is the new one", NONE, "456789"),
    ("Account No.1234567890", NONE, "1234567890"),
    ("consumer no 6123457890", NONE, "6123457890"),
    ("mera naya number 3344556677 hai", NONE, "3344556677"),
    ("1234567890hai mera khata", NONE, "1234567890"),
    ("purana 456789 1234567890", NONE, "456789"),
    ("खाता ४५६७८९", NONE, "456789"),
    ("मेरा पुराना खाता नंबर ९८७१२३ था", NONE, "987123"),
    ("खाता 6543210987 वाले घर में बिजली नहीं", NONE, "6543210987"),
    ("१२३४५६७८९० ka naya number kya hai", NONE, "1234567890"),
    ("उपभोक्ता संख्या 2580147369", NONE, "2580147369"),
    # Alone, or as the answer to the bot's question.
    ("3456 7890 12", NONE, "3456789012"),
    ("ji 765432", NONE, "765432"),
    ("9123456789", NONE, "9123456789"),
    ("४५६७८९", NONE, "456789"),
    ("sorry galat tha sahi number 6070809010 hai", ASKED, "6070809010"),
    ("mera number 9876543210 hai", ASKED, "9876543210"),
    ("12345", ASKED, Kind.OTHER),
    # "number" before a number that cannot be a mobile; a question about an account.
    ("the number is 6677889", NONE, "6677889"),
    ("मेरा नंबर 45678901 है", NONE, "45678901"),
    ("45678901 यह है मेरा नंबर", ASKED, "45678901"),
    ("बिल पर छपा नंबर १२३४५६७८९०", NONE, "1234567890"),
    ("7654321 ka bill kitna hai", ABOUT, "7654321"),
    ("7654321 ka bill kitna hai", NONE, Kind.UNCLEAR),
    ("45120398 pe kitna bakaya h", ABOUT, "45120398"),
    ("maine 7788123 ka bill bhara dikha nahi raha", ABOUT, "7788123"),
    ("no supply at 3219876 since 10:30 am", ABOUT, "3219876"),
    ("Rs.1500/- jama kiya 456789 me, dikh nahi raha", ABOUT, "456789"),
    # A mobile's shape without an account word: only alone or when asked.
    ("mera number 9876543210 hai", NONE, Kind.UNCLEAR),
    ("how much is pending for 7204519836", ABOUT, Kind.UNCLEAR),
    ("9876543210", OWN, Kind.MOBILE),
    ("mera account number 9876543210 hai", OWN, Kind.MOBILE),
    # Mobiles.
    ("mera mobile no 98765-43210 hai", ABOUT, Kind.MOBILE),
    ("call me on +91 98765 43210", ASKED, Kind.MOBILE),
    ("09876543210 pe call karo", ASKED, Kind.MOBILE),
    ("919876543210", NONE, Kind.MOBILE),
    ("new connection ke liye 9876543210 pe call karo", NONE, Kind.MOBILE),
    ("मेरा मोबाइल नंबर ९८७६५४३२१० है", ABOUT, Kind.MOBILE),
    ("फ़ोन 98765 43210 पर कॉल करें", NONE, Kind.MOBILE),
    ("call me on 98765 43210 1", NONE, Kind.MOBILE),
    # Dates and times.
    ("My bill was due on 2026-11-20", ABOUT, Kind.DATE),
    ("20 11 2026 ko bhara tha", ASKED, Kind.DATE),
    ("20/11/26 ko jama kiya", ABOUT, Kind.DATE),
    ("मैंने 20/11/2026 को 1500 रुपये भरे", ABOUT, Kind.DATE),
    ("२० नवंबर को १५०० रुपये जमा किए", ABOUT, Kind.AMOUNT),
    ("subah 10:30 baje se light nahi hai", ABOUT, Kind.TIME),
    # Amounts.
    ("bill 150000 aaya hai galat hai", ABOUT, Kind.AMOUNT),
    ("1,50,000 ka bill aaya 2 kamre ke ghar ka", ABOUT, Kind.AMOUNT),
    ("maine 150000 bhare the", ASKED, Kind.AMOUNT),
    ("₹ 125000 kat gaye", ABOUT, Kind.AMOUNT),
    ("मैंने ₹1,200 दिए", ABOUT, Kind.AMOUNT),
    ("250000 rupaye ka bill?", ABOUT, Kind.AMOUNT),
    ("bill 1234567.00 dikha raha hai", ABOUT, Kind.AMOUNT),
    # OTPs, UTRs and other references, pin codes.
    ("Your OTP is 482913. Do not share it with anyone.", ASKED, Kind.OTP),
    ("482913 is your OTP", NONE, Kind.OTP),
    ("OTP 123456 aaya hai", ASKED, Kind.OTP),
    ("code 5521 90 kisi ko mat batana", ASKED, Kind.OTP),
    ("ओटीपी ४८२९१३ है", ASKED, Kind.OTP),
    ("UTR 305512349876 amount not reflected", ABOUT, Kind.REFERENCE),
    ("UPI ref no 41234567 failed", ABOUT, Kind.REFERENCE),
    ("txn id 123456789012", NONE, Kind.REFERENCE),
    ("UTR ३०५५१२३४९८७६ का पैसा नहीं आया", ABOUT, Kind.REFERENCE),
    ("pin code 208015, Kanpur", ABOUT, Kind.PINCODE),
    ("पिन 208001 किदवई नगर", ABOUT, Kind.PINCODE),
    # Nothing like an account number.
    ("2", ASKED, Kind.OTHER),
    ("12345", NONE, Kind.OTHER),
]


@pytest.mark.parametrize(("text", "context", "reading"), MESSAGES)
def test_messages_are_read_as_a_person_would(
    text: str, context: Context, reading: str | Kind
) -> None:
    readings = read_numbers(text, context)
    if isinstance(reading, Kind):
        assert account_number_in(text, context) is None
        assert reading in [r.kind for r in readings], readings
    else:
        assert account_number_in(text, context) == reading
        assert Reading(reading, Kind.ACCOUNT) in readings


def test_the_table_covers_the_three_registers_and_both_outcomes() -> None:
    devanagari = [text for text, _, _ in MESSAGES if re.search("[\u0900-\u097f]", text)]
    assert len(MESSAGES) >= 40 and len(devanagari) >= 10
    # Kind is a str enum: tell the two outcomes apart by Kind.
    assert sum(not isinstance(r, Kind) for _, _, r in MESSAGES) >= 20
    assert sum(isinstance(r, Kind) for _, _, r in MESSAGES) >= 20


def test_every_number_in_a_message_gets_a_reading() -> None:
    assert read_numbers("maine 20-11-2026 ko 1500 rs bhara, khata 456789, OTP 1234") == [
        Reading("20112026", Kind.DATE),
        Reading("1500", Kind.AMOUNT),
        Reading("456789", Kind.ACCOUNT),
        Reading("1234", Kind.OTP),
    ]
    assert account_numbers_in("purana 456789 naya 1234567890") == ["456789", "1234567890"]
    assert read_numbers("") == read_numbers(None) == []


#: Pieces messages are made of: cue words of every kind, separators, currency, scripts.
_PIECES = st.sampled_from(
    "account khata खाता purana naya mobile फ़ोन otp utr pin paid bhara rs ₹ /- number no ji hai "
    "nov नवंबर baje : - / . , + 0 91 ka bill § ٤٥٦ ３ \u093c".split(" ")
)
_MESSAGES = st.lists(
    st.one_of(_PIECES, st.from_regex(r"[0-9०-९]{1,12}", fullmatch=True), st.text(max_size=4)),
    max_size=12,
).map(" ".join)
_CONTEXTS = st.builds(
    Context,
    asked=st.booleans(),
    about_account=st.booleans(),
    mobile=st.sampled_from([None, "+919876543210"]),
)


@given(_MESSAGES, _CONTEXTS)
def test_any_message_reads_without_error_and_accounts_are_its_own_digits(
    text: str, context: Context
) -> None:
    digits = re.sub(r"\D", "", ascii_digits(text))
    for number in account_numbers_in(text, context):
        assert is_account_number(number) and number in digits
        assert context.mobile != f"+91{number}"


@given(_MESSAGES, _CONTEXTS)
def test_what_the_conversation_knows_only_widens_the_reading(text: str, context: Context) -> None:
    """Being asked, or a question about an account, never hides an account number."""
    plain = Context(mobile=context.mobile)
    assert set(account_numbers_in(text, plain)) <= set(account_numbers_in(text, context))


@given(st.sampled_from(["mobile", "OTP", "UTR", "pin", "paid", "₹", "फ़ोन"]), _MESSAGES)
def test_a_number_named_as_something_else_is_never_an_account(word: str, rest: str) -> None:
    assert "9123456789" not in account_numbers_in(f"{rest} {word} 9123456789", Context(asked=True))


@pytest.mark.parametrize(
    ("value", "normalised"),
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
def test_normalise_account_number(value: object, normalised: str | None) -> None:
    assert normalise_account_number(value) == normalised


@pytest.mark.parametrize(
    ("value", "old", "new"),
    [
        ("123456", True, False),
        ("12345678", True, False),
        ("1234567890", False, True),
        ("123456789", False, False),
        ("12345", False, False),
        ("१२३४५६७", False, False),  # the rule is on stored digits: ASCII only
        ("12345678901", False, False),
    ],
)
def test_the_importer_and_the_bot_share_one_rule(value: str, old: bool, new: bool) -> None:
    """Before the move, importers.parse_account and actions.register had a copy each."""
    assert is_old_account_number(value) is old
    assert is_new_account_number(value) is new
    assert is_account_number(value) is (old or new)
    for kind, expected in ((True, old), (False, new)):
        if expected:
            assert parse_account(value, old=kind) == value
        else:
            with pytest.raises(BadValue):
                parse_account(value, old=kind)
