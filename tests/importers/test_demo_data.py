"""Demo data: the brief's CSV formats, KESCO's mix, valid numbers, and a clean import."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from phonenumbers import PhoneNumberType
from sqlalchemy.engine import Engine

from bot.importers import demo_data, import_file
from bot.importers.values import normalise_mobile
from bot.store import (
    Consumer,
    PrepaidBalance,
    consumer_by_account,
    consumers_by_mobile,
    count_rows,
    latest_bill,
    prepaid_balance,
    session_scope,
    staff_by_mobile,
)

TODAY = dt.date(2026, 11, 25)
COUNT = 20_000


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    return demo_data.write_demo_data(out, consumers=COUNT, seed=7, progress=False, today=TODAY)


@pytest.fixture(scope="module")
def consumers(files: dict[str, Path]) -> list[dict[str, str]]:
    return read(files["consumers"])


def is_mobile(number: str) -> bool:
    parsed = phonenumbers.parse(number, "IN")
    return (
        phonenumbers.is_valid_number(parsed)
        and phonenumbers.number_type(parsed) == PhoneNumberType.MOBILE
        and parsed.country_code == 91
    )


def test_files_and_headers_follow_the_brief(files: dict[str, Path]) -> None:
    assert {kind: path.name for kind, path in files.items()} == {
        "consumers": "consumers.csv",
        "bills": "bills.csv",
        "prepaid-balances": "prepaid_balances.csv",
        "staff": "staff.csv",
    }
    headers = {
        kind: path.read_text(encoding="utf-8").splitlines()[0] for kind, path in files.items()
    }
    assert headers == {
        "consumers": "discom,new_account_no,old_account_no,name,mobile,category,meter_type,area,"
        "language,whatsapp_opt_in",
        "bills": "new_account_no,bill_month,amount_due,due_date,arrears",
        "prepaid-balances": "new_account_no,balance,as_of",
        "staff": "mobile,name,role,area",
    }


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    def generate(folder: str, seed: int) -> dict[str, bytes]:
        paths = demo_data.write_demo_data(
            tmp_path / folder, consumers=500, seed=seed, progress=False, today=TODAY
        )
        return {kind: path.read_bytes() for kind, path in paths.items()}

    first, again, other = generate("a", 1), generate("b", 1), generate("c", 2)
    assert first == again
    assert first["consumers"] != other["consumers"]


def test_kesco_category_and_meter_mix(consumers: list[dict[str, str]]) -> None:
    categories = Counter(row["category"] for row in consumers)
    share = {name: n / COUNT for name, n in categories.items()}
    assert share["domestic"] == pytest.approx(439_924 / 522_757, abs=0.015)
    assert share["commercial"] == pytest.approx(73_187 / 522_757, abs=0.015)
    assert share["industrial"] == pytest.approx(8_944 / 522_757, abs=0.005)
    assert 0 < categories["public_institution"] < 0.005 * COUNT
    meters = Counter(row["meter_type"] for row in consumers)
    assert meters["smart_prepaid"] / COUNT == pytest.approx(1.56 / 5.3, abs=0.02)
    assert meters["postpaid"] > meters["smart_postpaid"] > 0
    assert {row["discom"] for row in consumers} == {"KESCO"}
    assert {row["language"] for row in consumers} == {"hi", "en"}
    assert {row["whatsapp_opt_in"] for row in consumers} == {"yes", "no"}


def test_account_numbers_are_unique_and_well_formed(consumers: list[dict[str, str]]) -> None:
    new = [row["new_account_no"] for row in consumers]
    old = [row["old_account_no"] for row in consumers if row["old_account_no"]]
    assert len(set(new)) == COUNT
    assert all(len(n) == 10 and n.isdigit() for n in new)
    assert len(set(old)) == len(old)
    assert {len(n) for n in old} == {6, 7, 8}
    assert 0.01 < 1 - len(old) / COUNT < 0.05  # a few new connections have no old number


def test_mobiles_are_valid_some_shared_some_missing(consumers: list[dict[str, str]]) -> None:
    written = [row["mobile"] for row in consumers if row["mobile"]]
    assert all(is_mobile(number) for number in written)
    normalised = Counter(normalise_mobile(number) for number in written)
    shared = sum(n for n in normalised.values() if n > 1)
    assert 0.03 < shared / COUNT < 0.08
    assert 0.01 < 1 - len(written) / COUNT < 0.05
    forms = {("+91 " in n, n.startswith("0"), n.startswith("91-")) for n in written}
    assert len(forms) >= 4  # bare, 0-prefixed, spaced +91 and dashed 91- all occur


def test_names_in_devanagari_and_roman(consumers: list[dict[str, str]]) -> None:
    devanagari = [
        row["name"] for row in consumers if any("\u0900" <= c <= "\u097f" for c in row["name"])
    ]
    assert 0.2 < len(devanagari) / COUNT < 0.5
    assert all(row["name"].strip() for row in consumers)
    assert {row["area"] for row in consumers} >= {"Kidwai Nagar", "Govind Nagar", "Panki", "Juhi"}


def test_dues_spread(files: dict[str, Path]) -> None:
    bills = read(files["bills"])
    assert len(bills) == COUNT
    due = [float(row["amount_due"]) for row in bills]
    assert sum(300 <= d <= 3000 for d in due) / COUNT > 0.5
    assert 0.01 < sum(d > 15_000 for d in due) / COUNT < 0.08
    assert 0.1 < sum(float(row["arrears"]) > 0 for row in bills) / COUNT < 0.4
    assert {row["bill_month"] for row in bills} == {"2026-10"}
    assert all(row["due_date"] >= "2026-11-07" for row in bills)


def test_balances_for_every_smart_prepaid_account(
    files: dict[str, Path], consumers: list[dict[str, str]]
) -> None:
    prepaid = {row["new_account_no"] for row in consumers if row["meter_type"] == "smart_prepaid"}
    balances = read(files["prepaid-balances"])
    assert {row["new_account_no"] for row in balances} == prepaid
    amounts = [float(row["balance"]) for row in balances]
    assert 0.1 < sum(a < 0 for a in amounts) / len(amounts) < 0.3
    assert 0.02 < sum(a < -15_000 for a in amounts) / len(amounts) < 0.05
    for row in balances:
        as_of = dt.datetime.fromisoformat(row["as_of"])
        assert as_of.utcoffset() == dt.timedelta(hours=5, minutes=30)
        assert (
            dt.datetime(2026, 11, 24) <= as_of.replace(tzinfo=None) <= dt.datetime(2026, 11, 25, 6)
        )


def test_staff_one_reader_per_thousand_and_a_few_officers(files: dict[str, Path]) -> None:
    staff = read(files["staff"])
    roles = Counter(row["role"] for row in staff)
    assert roles == {"meter_reader": COUNT // 1000, "officer": 2}
    assert len({row["mobile"] for row in staff}) == len(staff)
    assert all(is_mobile(row["mobile"]) for row in staff)
    assert staff[0] == {
        "mobile": demo_data.DEMO_METER_READER_MOBILE,
        "name": "Suresh Yadav",
        "role": "meter_reader",
        "area": "Kidwai Nagar",
    }
    assert staff[1]["mobile"] == demo_data.DEMO_OFFICER_MOBILE


def test_fixed_demo_numbers_are_valid_mobiles() -> None:
    for number in (
        demo_data.DEMO_CONSUMER_MOBILE,
        demo_data.DEMO_PREPAID_MOBILE,
        demo_data.DEMO_METER_READER_MOBILE,
        demo_data.DEMO_OFFICER_MOBILE,
    ):
        assert is_mobile(number), number
        assert normalise_mobile(number) == number


def test_small_data_sets_still_have_the_demo_accounts_and_three_readers(tmp_path: Path) -> None:
    paths = demo_data.write_demo_data(tmp_path, consumers=1, seed=1, progress=False, today=TODAY)
    rows = read(paths["consumers"])
    assert [row["new_account_no"] for row in rows] == [demo_data.DEMO_CONSUMER_NEW_ACCOUNT]
    assert len(read(paths["bills"])) == 1
    assert read(paths["prepaid-balances"]) == []
    assert Counter(row["role"] for row in read(paths["staff"])) == {"meter_reader": 3, "officer": 2}


def test_demo_data_imports_cleanly(engine: Engine, tmp_path: Path) -> None:
    paths = demo_data.write_demo_data(tmp_path, consumers=3000, seed=3, progress=False, today=TODAY)
    for kind in ("consumers", "bills", "prepaid-balances", "staff"):
        report = import_file(engine, kind, paths[kind], progress=False)
        assert report.ok and report.bad == 0, report.summary()

    with session_scope(engine) as session:
        assert count_rows(session, Consumer) == 3000
        assert count_rows(session, PrepaidBalance) == len(read(paths["prepaid-balances"]))
        accounts = consumers_by_mobile(session, demo_data.DEMO_CONSUMER_MOBILE)
        assert [c.new_account_no for c in accounts] == [
            demo_data.DEMO_CONSUMER_NEW_ACCOUNT,
            demo_data.DEMO_SHOP_NEW_ACCOUNT,
        ]
        home = consumer_by_account(session, demo_data.DEMO_CONSUMER_OLD_ACCOUNT, "KESCO")
        assert home is not None and home.name == demo_data.DEMO_CONSUMER_NAME
        bill = latest_bill(session, demo_data.DEMO_CONSUMER_NEW_ACCOUNT)
        assert bill is not None and bill.amount_due_paise == 184500
        balance = prepaid_balance(session, demo_data.DEMO_PREPAID_NEW_ACCOUNT)
        assert balance is not None and balance.balance_paise == -1625000
        reader = staff_by_mobile(session, demo_data.DEMO_METER_READER_MOBILE)
        assert reader is not None and reader.role == "meter_reader"
