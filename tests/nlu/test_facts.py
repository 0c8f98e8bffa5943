"""Dates, amounts, UTRs, mobiles, times and areas are read as what they are, never as accounts."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.importers.demo_data import AREAS
from bot.nlu.facts import (
    FactExtractor,
    is_mobile,
    is_own_number,
    parse_amount,
    parse_date,
    parse_mobile,
    parse_time,
)
from bot.settings import ROOT
from tests.nlu.components import message, trained

TODAY = dt.date(2026, 11, 25)
ACCOUNT_REGEX = r"(?<!\d)(?:\d{10}|\d{6,8})(?!\d)"


@pytest.mark.parametrize(
    ("written", "iso"),
    [
        ("20-11-2026", "2026-11-20"),
        ("20/11/26", "2026-11-20"),
        ("21.11.2026", "2026-11-21"),
        ("15 nov", "2026-11-15"),
        ("5th December 2025", "2025-12-05"),
        ("12 नवंबर", "2026-11-12"),
        # No year: the latest such day not after today.
        ("30 nov", "2025-11-30"),
        ("3 tarikh", "2026-11-03"),
        ("28 तारीख", "2026-10-28"),
        ("31-02-2026", None),
        ("३ नवंबर", "2026-11-03"),
    ],
)
def test_dates_become_iso(written: str, iso: str | None) -> None:
    assert parse_date(written, TODAY) == iso


@pytest.mark.parametrize(
    ("written", "paise"),
    [
        ("1500 rs", 150000),
        ("₹2,150", 215000),
        ("Rs. 2,340.50", 234050),
        ("1200/-", 120000),
        ("850 रुपये", 85000),
        ("₹ 1,50,000", 15000000),
        ("Rs 0", None),
    ],
)
def test_amounts_become_paise(written: str, paise: int | None) -> None:
    assert parse_amount(written) == paise


@pytest.mark.parametrize(
    ("text", "written", "hhmm"),
    [
        ("disconnected tonight at 9.30 pm", "9.30 pm", "21:30"),
        ("today night 9:30 PM", "9:30 PM", "21:30"),
        ("आज रात 9 बजे काट दिया जाएगा", "9 बजे", "21:00"),
        ("kal shaam 7 baje se", "7 baje", "19:00"),
        ("raat 2 baje se", "2 baje", "02:00"),
        ("subah 10 baje", "10 baje", "10:00"),
        ("light gyi 4 bje se", "4 bje", "04:00"),
    ],
)
def test_times_become_24_hour_when_the_part_of_the_day_is_known(
    text: str, written: str, hhmm: str
) -> None:
    start = text.index(written)
    assert parse_time(text, start, start + len(written)) == hhmm


@pytest.mark.parametrize(
    ("text", "number", "mobile"),
    [
        ("Call officer 9876500000 immediately", "9876500000", True),
        ("mobile 9876543210 hai mera", "9876543210", True),
        ("ई नंबर 9598123476 पर फोन करीं", "9598123476", True),
        ("kisi ne 500 maanga 9812300456 pe UPI karne ko", "9812300456", True),
        ("aur mobile +91 98390 12345", "+91 98390 12345", True),
        ("09876543210 pe msg aaya", "09876543210", True),
        # A new account number is ten digits too: without a phone cue it stays one.
        ("mera account 9876543210 hai", "9876543210", False),
        ("9876543210", "9876543210", False),
        ("account 9830012345 hai aur mobile bhi yahi", "9830012345", False),
    ],
)
def test_a_ten_digit_number_is_a_mobile_only_when_written_as_one(
    text: str, number: str, mobile: bool
) -> None:
    start = text.index(number)
    assert is_mobile(text, start, start + len(number)) is mobile


def test_own_numbers_are_told_from_someone_elses() -> None:
    own = "officer se baat karni hai, mera number 9839067123 hai"
    other = "officer ka number 9839067123 hai"
    assert is_own_number(own, own.index("98"), own.index("98") + 10)
    assert not is_own_number(other, other.index("98"), other.index("98") + 10)
    assert parse_mobile("+91 98390 12345") == "+919839012345"
    assert parse_mobile("1234567890") is None


@pytest.fixture(scope="module")
def extractor(tmp_path_factory: pytest.TempPathFactory) -> FactExtractor:
    component = trained(FactExtractor, tmp_path_factory.mktemp("facts"))
    component.today = staticmethod(lambda: TODAY)  # type: ignore[method-assign]
    return component


def extract(extractor: FactExtractor, text: str) -> list[tuple[str, str, Any]]:
    """(entity, text, value) found in ``text``; every account-shaped number starts tagged."""
    tagged = [
        {"entity": "account_number", "start": m.start(), "end": m.end(), "value": m.group()}
        for m in re.finditer(ACCOUNT_REGEX, text)
    ]
    msg = message(text, tagged)
    extractor.process([msg])
    return [(e["entity"], text[e["start"] : e["end"]], e["value"]) for e in msg.get("entities")]


def test_a_payment_message_holds_a_date_and_an_amount_not_an_account(
    extractor: FactExtractor,
) -> None:
    # Observed on main: "Account number 20112026 nahi mila".
    found = extract(
        extractor, "maine 20-11-2026 ko 1500 rs bhara tha par abhi bhi baki dikha raha hai"
    )
    assert found == [("date", "20-11-2026", "2026-11-20"), ("amount", "1500 rs", 150000)]


def test_a_scam_sms_holds_a_time_and_a_phone_not_an_account(extractor: FactExtractor) -> None:
    found = extract(
        extractor,
        "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
        "Call officer 9876500000 immediately. is this real?",
    )
    assert found == [("time", "9.30 pm", "21:30"), ("mobile", "9876500000", "+919876500000")]


def test_utrs_and_mobiles_beside_a_real_account_number(extractor: FactExtractor) -> None:
    found = extract(
        extractor, "account 2300918273 hai, mobile +91 98390 12345, UTR 633412987654 dt 21.11.2026"
    )
    assert found == [
        ("account_number", "2300918273", "2300918273"),
        ("mobile", "+91 98390 12345", "+919839012345"),
        ("utr", "633412987654", "633412987654"),
        ("date", "21.11.2026", "2026-11-21"),
    ]


def test_account_tags_on_part_of_a_fact_are_dropped_others_stay(extractor: FactExtractor) -> None:
    # DIET sometimes tags a part of a number ("12" of "12 नवंबर", "2,999" of "₹ 2,999"); a
    # short number alone stays tagged, for the dialogue to answer (an invalid number, a menu digit).
    text = "12 नवंबर को ₹ 2,999 भरे, खाता 2304918276, या 12345"
    tagged = [
        {"entity": "account_number", "start": text.index(v), "end": text.index(v) + len(v)}
        | {"value": v}
        for v in ("12", "2,999", "2304918276", "12345")
    ]
    msg = message(text, tagged)
    extractor.process([msg])
    accounts = [e["value"] for e in msg.get("entities") if e["entity"] == "account_number"]
    assert accounts == ["2304918276", "12345"]


def test_areas_are_found_in_both_scripts(extractor: FactExtractor) -> None:
    found = extract(extractor, "subah se light nahi hai Kidwai Nagar me, पनकी में भी, GOVIND NGR")
    assert [(kind, text) for kind, text, _ in found] == [
        ("area", "Kidwai Nagar"),
        ("area", "पनकी"),
        ("area", "GOVIND NGR"),
    ]
    # Not inside another word.
    assert extract(extractor, "panking ki jagah") == []


def test_every_area_of_the_consumer_data_is_in_the_lookup_and_maps_back_to_itself() -> None:
    data = yaml.safe_load((Path(ROOT) / "data" / "nlu" / "areas.yml").read_text("utf-8"))["nlu"]
    (lookup,) = [block for block in data if block.get("lookup") == "area"]
    elements = {line[2:] for line in lookup["examples"].splitlines() if line.startswith("- ")}
    synonyms = {
        block["synonym"]: [line[2:] for line in block["examples"].splitlines()]
        for block in data
        if "synonym" in block
    }
    assert set(synonyms) == set(AREAS)
    for area, variants in synonyms.items():
        assert area.lower() in {v.lower() for v in variants}, area
        assert {v.lower() for v in variants} <= {e.lower() for e in elements}, area
