"""What an account number is (bot/accounts.py), and finding one in a message."""

from __future__ import annotations

import pytest

from bot.accounts import (
    account_number_in,
    is_account_number,
    is_new_account_number,
    is_old_account_number,
    normalise_account_number,
)
from bot.importers.values import BadValue, parse_account


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
