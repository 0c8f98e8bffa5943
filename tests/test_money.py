"""Rupees and counts with Indian digit grouping (bot/money.py)."""

from __future__ import annotations

import pytest

from bot.money import format_rupees, group_indian


@pytest.mark.parametrize(
    ("paise", "text"),
    [
        (0, "₹0.00"),
        (5, "₹0.05"),
        (123450, "₹1,234.50"),
        (12345678, "₹1,23,456.78"),
        (1234567800, "₹1,23,45,678.00"),
        (-150000, "-₹1,500.00"),
        (100000, "₹1,000.00"),
    ],
)
def test_rupees_use_indian_grouping(paise: int, text: str) -> None:
    assert format_rupees(paise) == text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1,000"),
        (530000, "5,30,000"),
        (12345678, "1,23,45,678"),
        (-43992400, "-4,39,92,400"),
    ],
)
def test_counts_use_indian_grouping(number: int, text: str) -> None:
    assert group_indian(number) == text


def test_rupees_and_counts_group_alike() -> None:
    """Before the move, importers.indian and format_rupees each had a copy of the grouping."""
    for rupees in (0, 7, 1234, 123456, 98765432, 10**12):
        assert format_rupees(rupees * 100) == f"₹{group_indian(rupees)}.00"
