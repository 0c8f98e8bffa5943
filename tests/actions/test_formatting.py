"""Dates and masked names as a consumer reads them."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.actions.formatting import (
    format_bill_month,
    format_date,
    format_moment,
    mask_name,
)


def test_dates_and_moments_are_ist() -> None:
    assert format_date(dt.date(2026, 11, 5)) == "05-11-2026"
    # 20:00 UTC is 01:30 the next day in IST.
    assert format_moment(dt.datetime(2026, 11, 5, 20, 0)) == "06-11-2026 01:30"
    assert format_bill_month("2026-10") == "10/2026"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Ramesh Kumar", "R*** K***"),
        ("ramesh", "r***"),
        ("रमेश कुमार", "र*** कु***"),
        ("  Sita   Devi ", "S*** D***"),
        ("", "***"),
    ],
)
def test_names_are_masked_to_initials(name: str, masked: str) -> None:
    assert mask_name(name) == masked
