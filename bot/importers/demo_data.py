"""Synthetic KESCO-like data: the four CSV files of the brief, for demos, development, benchmarks.

The output depends only on the seed and on ``today`` (default: today in IST), so a seed reproduces a
file byte for byte. The mix follows KESCO's reported figures: categories in the proportions of
4,39,924 domestic, 73,187 commercial, 702 public institutions and 8,944 small and medium industry;
about 1.56 lakh of 5.3 lakh (29%) on smart prepaid meters; about 3.5% of those (5,417 of 1.56 lakh)
owing more than ₹15,000. Every consumer has one bill for last month: ``amount_due`` is the total
payable and ``arrears`` the part of it carried over from earlier months. For smart prepaid accounts
the bill is the debt behind a negative balance (zero when the balance is positive).

The first rows are fixed demo accounts, the same for every seed, so the dev console can log in:

* ``DEMO_CONSUMER_MOBILE`` (+91 90000 00101) holds two accounts, a home (``DEMO_CONSUMER_*``, Hindi,
  domestic postpaid, Kidwai Nagar, ₹1,845.00 due) and a shop (``DEMO_SHOP_*``, commercial
  smart postpaid, Govind Nagar, ₹7,520.50 due of which ₹1,200.00 arrears).
* ``DEMO_PREPAID_MOBILE`` (+91 90000 00102): ``DEMO_PREPAID_*``, English, domestic smart prepaid,
  Swaroop Nagar, balance −₹16,250.00 (over ₹15,000, like those warned in the disconnection drive).
* Staff: ``DEMO_METER_READER_MOBILE`` (+91 90000 00001, meter reader, Kidwai Nagar) and
  ``DEMO_OFFICER_MOBILE`` (+91 90000 00002, officer, Civil Lines).

Generated numbers never collide with these: new account numbers come from 2301000000–2399999999 and
no generated mobile starts with +91 9000.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import math
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

from tqdm import tqdm

from bot.clock import IST

_T = TypeVar("_T")

DEMO_CONSUMER_MOBILE = "+919000000101"
DEMO_CONSUMER_NAME = "राम कुमार"
DEMO_CONSUMER_NEW_ACCOUNT = "2300000001"
DEMO_CONSUMER_OLD_ACCOUNT = "1234567"
DEMO_SHOP_NEW_ACCOUNT = "2300000002"
DEMO_SHOP_OLD_ACCOUNT = "7654321"
DEMO_PREPAID_MOBILE = "+919000000102"
DEMO_PREPAID_NEW_ACCOUNT = "2300000003"
DEMO_PREPAID_OLD_ACCOUNT = "12345678"
DEMO_METER_READER_MOBILE = "+919000000001"
DEMO_OFFICER_MOBILE = "+919000000002"

CONSUMER_COLUMNS = (
    "discom",
    "new_account_no",
    "old_account_no",
    "name",
    "mobile",
    "category",
    "meter_type",
    "area",
    "language",
    "whatsapp_opt_in",
)
BILL_COLUMNS = ("new_account_no", "bill_month", "amount_due", "due_date", "arrears")
BALANCE_COLUMNS = ("new_account_no", "balance", "as_of")
STAFF_COLUMNS = ("mobile", "name", "role", "area")

FILE_NAMES = {
    "consumers": "consumers.csv",
    "bills": "bills.csv",
    "prepaid-balances": "prepaid_balances.csv",
    "staff": "staff.csv",
}

AREAS = (
    "Kidwai Nagar", "Govind Nagar", "Kalyanpur", "Swaroop Nagar", "Civil Lines", "Kakadeo",
    "Panki", "Shyam Nagar", "Juhi", "Barra", "Armapur", "Rawatpur", "Naubasta", "Chakeri",
    "Harsh Nagar", "Gwaltoli", "Parade", "Yashoda Nagar", "Jajmau", "Fazalganj", "Arya Nagar",
    "Vikas Nagar", "Shastri Nagar", "Gumti No. 5", "Nawabganj", "Sisamau",
)  # fmt: skip

# (Devanagari, Roman) pairs, so a name can be written either way.
_FIRST_NAMES = (
    ("राम", "Ram"), ("श्याम", "Shyam"), ("सुनीता", "Sunita"), ("अनीता", "Anita"),
    ("राजेश", "Rajesh"), ("सुरेश", "Suresh"), ("मनोज", "Manoj"), ("पूजा", "Pooja"),
    ("रीता", "Rita"), ("विनोद", "Vinod"), ("अजय", "Ajay"), ("संजय", "Sanjay"), ("प्रिया", "Priya"),
    ("नीलम", "Neelam"), ("गीता", "Geeta"), ("दिनेश", "Dinesh"), ("अमित", "Amit"), ("रवि", "Ravi"),
    ("कमला", "Kamla"), ("सरिता", "Sarita"), ("अशोक", "Ashok"), ("राकेश", "Rakesh"),
    ("प्रदीप", "Pradeep"), ("ममता", "Mamta"), ("उमेश", "Umesh"), ("शिव", "Shiv"),
)  # fmt: skip
_SURNAMES = (
    ("कुमार", "Kumar"), ("शर्मा", "Sharma"), ("गुप्ता", "Gupta"), ("यादव", "Yadav"),
    ("वर्मा", "Verma"), ("मिश्रा", "Mishra"), ("तिवारी", "Tiwari"), ("श्रीवास्तव", "Srivastava"),
    ("पांडेय", "Pandey"), ("सिंह", "Singh"), ("त्रिपाठी", "Tripathi"), ("अग्रवाल", "Agarwal"),
    ("शुक्ला", "Shukla"), ("दीक्षित", "Dixit"), ("बाजपेई", "Bajpai"), ("कटियार", "Katiyar"),
    ("सचान", "Sachan"), ("जायसवाल", "Jaiswal"), ("गौतम", "Gautam"), ("सक्सेना", "Saxena"),
)  # fmt: skip
_MUSLIM_FIRST_NAMES = (
    ("मोहम्मद", "Mohammad"), ("आरिफ", "Arif"), ("शबाना", "Shabana"), ("इरफ़ान", "Irfan"),
    ("नसरीन", "Nasreen"), ("सलीम", "Salim"), ("रुखसाना", "Rukhsana"), ("इमरान", "Imran"),
)  # fmt: skip
_MUSLIM_SURNAMES = (
    ("खान", "Khan"), ("अंसारी", "Ansari"), ("कुरैशी", "Qureshi"), ("सिद्दीकी", "Siddiqui"),
    ("हाशमी", "Hashmi"),
)  # fmt: skip
_SHOPS = (
    ("किराना स्टोर", "Kirana Store"), ("जनरल स्टोर", "General Store"),
    ("मेडिकल स्टोर", "Medical Store"), ("स्वीट हाउस", "Sweet House"),
    ("इलेक्ट्रिकल्स", "Electricals"), ("टेलर्स", "Tailors"), ("होटल", "Hotel"),
    ("ट्रेडर्स", "Traders"), ("क्लॉथ हाउस", "Cloth House"),
)  # fmt: skip
_WORKS = (
    "Leather Works", "Tanneries", "Plastics Pvt Ltd", "Hosiery Mills", "Engineering Works",
    "Flour Mill", "Textiles", "Detergents Pvt Ltd", "Steel Fabricators",
)  # fmt: skip
_INSTITUTIONS = (
    "Government Primary School", "Nagar Nigam Pump House", "Primary Health Centre",
    "Anganwadi Kendra", "Police Chowki", "Kendriya Vidyalaya", "Jal Sansthan Tubewell",
)  # fmt: skip

CATEGORY_WEIGHTS = {
    "domestic": 439_924,
    "commercial": 73_187,
    "public_institution": 702,
    "industrial": 8_944,
}
"""KESCO's connections by category (consumers); only the proportions are used."""

PREPAID_SHARE = 156_000 / 530_000
"""Share of connections on smart prepaid meters."""

DEEP_DEBT_SHARE = 5_417 / 156_000
"""Share of smart prepaid consumers owing more than ₹15,000 (the disconnection drive)."""

# Median current charges in rupees and the spread (sigma of the log) for each category.
_CHARGES = {
    "domestic": (1100.0, 0.6),
    "commercial": (4500.0, 0.8),
    "public_institution": (15000.0, 0.9),
    "industrial": (40000.0, 1.0),
}

# Series in which phonenumbers' metadata for India makes every 7-digit tail a MOBILE number
# (checked by tests/test_demo_data.py); 9 is the most common first digit, as in Kanpur.
_PHONE_SERIES = (
    [f"9{d:02d}" for d in range(100)] * 3
    + [f"70{d}" for d in range(10)] * 6
    + [f"6{a}{b}" for a in "09" for b in range(10)] * 3
)


class _Demo(NamedTuple):
    new: str
    old: str
    name: str
    mobile: str
    category: str
    meter_type: str
    area: str
    language: str
    opt_in: str
    amount_due: str
    arrears: str
    balance: str | None


_DEMO_CONSUMERS = (
    _Demo(DEMO_CONSUMER_NEW_ACCOUNT, DEMO_CONSUMER_OLD_ACCOUNT, DEMO_CONSUMER_NAME,
          DEMO_CONSUMER_MOBILE, "domestic", "postpaid", "Kidwai Nagar", "hi", "yes",
          "1845.00", "0.00", None),
    _Demo(DEMO_SHOP_NEW_ACCOUNT, DEMO_SHOP_OLD_ACCOUNT, "राम कुमार जनरल स्टोर",
          DEMO_CONSUMER_MOBILE, "commercial", "smart_postpaid", "Govind Nagar", "hi", "yes",
          "7520.50", "1200.00", None),
    _Demo(DEMO_PREPAID_NEW_ACCOUNT, DEMO_PREPAID_OLD_ACCOUNT, "Sunita Sharma",
          DEMO_PREPAID_MOBILE, "domestic", "smart_prepaid", "Swaroop Nagar", "en", "yes",
          "16250.00", "16250.00", "-16250.00"),
)  # fmt: skip

_DEMO_STAFF = (
    (DEMO_METER_READER_MOBILE, "Suresh Yadav", "meter_reader", "Kidwai Nagar"),
    (DEMO_OFFICER_MOBILE, "Anita Srivastava", "officer", "Civil Lines"),
)


def _rupees(paise: int) -> str:
    sign = "-" if paise < 0 else ""
    paise = abs(paise)
    return f"{sign}{paise // 100}.{paise % 100:02d}"


def _unique_numbers(
    rng: random.Random, count: int, low: int, high: int, skip: set[int]
) -> list[int]:
    """``count`` distinct integers in [low, high), none of them in ``skip``, in random order."""
    drawn = rng.sample(range(low, high), count + len(skip))
    return [number for number in drawn if number not in skip][:count]


def _old_numbers(rng: random.Random, count: int) -> Iterator[str]:
    """Distinct 6 to 8 digit old account numbers, in random order (most of them 8 digits)."""
    reserved = {int(d.old) for d in _DEMO_CONSUMERS}
    return (str(number) for number in _unique_numbers(rng, count, 100_000, 100_000_000, reserved))


def _pick(random_: Callable[[], float], options: Sequence[_T]) -> _T:
    """A uniformly chosen element; cheaper than ``Random.choice`` for millions of draws."""
    return options[int(random_() * len(options))]


def _mobile(random_: Callable[[], float]) -> str:
    """A random Indian mobile number, 10 digits, outside the reserved demo block."""
    while True:
        series = _pick(random_, _PHONE_SERIES)
        tail = int(random_() * 10_000_000)
        if series != "900" or tail >= 1_000_000:
            return f"{series}{tail:07d}"


def _written(national: str, form: float) -> str:
    """The number as a clerk might have typed it: mostly bare, sometimes with 0, +91 or spaces."""
    if form < 0.70:
        return national
    if form < 0.80:
        return "0" + national
    if form < 0.88:
        return f"+91 {national[:5]} {national[5:]}"
    if form < 0.94:
        return "+91" + national
    return f"91-{national[:5]}-{national[5:]}"


def _pairs(
    firsts: Sequence[tuple[str, str]], lasts: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    return [(f"{a[0]} {b[0]}", f"{a[1]} {b[1]}") for a in firsts for b in lasts]


_PEOPLE = _pairs(_FIRST_NAMES, _SURNAMES)
_MUSLIM_PEOPLE = _pairs(_MUSLIM_FIRST_NAMES, _MUSLIM_SURNAMES)
_SHOP_NAMES = _pairs(_SURNAMES, _SHOPS)
_WORKS_NAMES = [f"{surname[1]} {works}" for surname in _SURNAMES for works in _WORKS]


def _person(random_: Callable[[], float]) -> tuple[str, str]:
    """A person's name in Devanagari and in Roman letters."""
    return _pick(random_, _MUSLIM_PEOPLE if random_() < 0.15 else _PEOPLE)


def _name(random_: Callable[[], float], category: str, area: str) -> tuple[str, bool]:
    """A consumer name for the category; True when it is written in Devanagari."""
    if category == "domestic":
        names = _person(random_)
    elif category == "commercial":
        names = _pick(random_, _SHOP_NAMES)
    elif category == "industrial":
        return _pick(random_, _WORKS_NAMES), False
    else:
        return f"{_pick(random_, _INSTITUTIONS)}, {area}", False
    return (names[0], True) if random_() < 0.35 else (names[1], False)


def _month_before(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def write_demo_data(
    out_dir: str | Path,
    *,
    consumers: int,
    seed: int = 2023,
    progress: bool = True,
    today: dt.date | None = None,
) -> dict[str, Path]:
    """Write consumers.csv, bills.csv, prepaid_balances.csv and staff.csv; return their paths."""
    if consumers < 1:
        raise ValueError("consumers must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    today = today or dt.datetime.now(IST).date()
    rng = random.Random(seed)
    random_ = rng.random
    paths = {kind: out / name for kind, name in FILE_NAMES.items()}

    month_start = _month_before(today)
    month = f"{month_start:%Y-%m}"
    # Bills fall due over a month around today, never before the billed month is over.
    earliest_due = month_start.replace(day=28) + dt.timedelta(days=10)
    due_dates = [
        f"{max(earliest_due, today + dt.timedelta(days=days)):%Y-%m-%d}" for days in range(-12, 19)
    ]
    # Meters last reported at some minute of the 30 hours before 06:00 IST today.
    morning = dt.datetime.combine(today, dt.time(6, 0))
    as_of_times = [
        f"{morning - dt.timedelta(minutes=minutes):%Y-%m-%dT%H:%M:00}+05:30"
        for minutes in range(30 * 60)
    ]
    categories = list(CATEGORY_WEIGHTS)
    total_weight = sum(CATEGORY_WEIGHTS.values())
    cum_weights = list(itertools.accumulate(CATEGORY_WEIGHTS.values()))
    log_median = {category: math.log(median) for category, (median, _) in _CHARGES.items()}

    demo = _DEMO_CONSUMERS[:consumers]
    generated = consumers - len(demo)
    reserved_new = {int(d.new) for d in _DEMO_CONSUMERS}
    new_numbers = iter(_unique_numbers(rng, generated, 2_301_000_000, 2_400_000_000, reserved_new))
    old_numbers = _old_numbers(rng, generated)

    with (
        open(paths["consumers"], "w", newline="", encoding="utf-8") as consumers_file,
        open(paths["bills"], "w", newline="", encoding="utf-8") as bills_file,
        open(paths["prepaid-balances"], "w", newline="", encoding="utf-8") as balances_file,
        tqdm(
            total=consumers,
            unit=" consumers",
            unit_scale=True,
            desc="demo data",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar,
    ):
        consumer_rows = csv.writer(consumers_file)
        bill_rows = csv.writer(bills_file)
        balance_rows = csv.writer(balances_file)
        consumer_rows.writerow(CONSUMER_COLUMNS)
        bill_rows.writerow(BILL_COLUMNS)
        balance_rows.writerow(BALANCE_COLUMNS)

        for d in demo:
            consumer_rows.writerow(
                ("KESCO", d.new, d.old, d.name, d.mobile, d.category, d.meter_type, d.area,
                 d.language, d.opt_in)
            )  # fmt: skip
            bill_rows.writerow((d.new, month, d.amount_due, _pick(random_, due_dates), d.arrears))
            if d.balance is not None:
                balance_rows.writerow((d.new, d.balance, _pick(random_, as_of_times)))
        bar.update(len(demo))

        previous_mobile = ""
        previous_shared = False
        consumer_batch: list[tuple[str, ...]] = []
        bill_batch: list[tuple[str, ...]] = []
        balance_batch: list[tuple[str, ...]] = []
        for done in range(1, generated + 1):
            new = str(next(new_numbers))
            old = next(old_numbers)
            if random_() < 0.03:
                old = ""  # connections made after the move to 10-digit numbers
            category = categories[bisect.bisect(cum_weights, random_() * total_weight)]
            area = _pick(random_, AREAS)
            name, devanagari = _name(random_, category, area)

            # About 5% of accounts share a mobile with the one before (one owner, two accounts).
            chance = random_()
            if chance < 0.03:
                national = ""
            elif chance < 0.055 and previous_mobile and not previous_shared:
                national = previous_mobile
            else:
                national = _mobile(random_)
            previous_shared = bool(national) and national == previous_mobile
            previous_mobile = national
            mobile = _written(national, random_()) if national else ""

            prepaid = random_() < PREPAID_SHARE
            if prepaid:
                meter_type = "smart_prepaid"
            else:
                meter_type = "smart_postpaid" if random_() < 0.3 else "postpaid"
            language = "hi" if random_() < (0.9 if devanagari else 0.65) else "en"
            opt_in = "yes" if random_() < 0.55 else "no"
            consumer_batch.append(
                ("KESCO", new, old, name, mobile, category, meter_type, area, language, opt_in)
            )

            due = _pick(random_, due_dates)
            if prepaid:
                kind = random_()
                if kind < DEEP_DEBT_SHARE:
                    balance = -(1_500_001 + int(random_() * 4_500_000))
                elif kind < 0.2:
                    balance = -min(int(rng.lognormvariate(_LOG_1500, 0.7) * 100), 1_499_900)
                else:
                    balance = int(rng.lognormvariate(_LOG_600, 0.9) * 100)
                debt = _rupees(max(0, -balance))
                balance_batch.append((new, _rupees(balance), _pick(random_, as_of_times)))
                bill_batch.append((new, month, debt, due, debt))
            else:
                charges = arrears = 0
                if random_() >= 0.02:  # the rest paid in advance and owe nothing
                    charges = int(
                        rng.lognormvariate(log_median[category], _CHARGES[category][1]) * 100
                    )
                    if random_() < 0.18:
                        arrears = int(charges * (0.5 + 4.5 * random_()))
                bill_batch.append((new, month, _rupees(charges + arrears), due, _rupees(arrears)))

            if done % 10_000 == 0:
                consumer_rows.writerows(consumer_batch)
                bill_rows.writerows(bill_batch)
                balance_rows.writerows(balance_batch)
                consumer_batch.clear()
                bill_batch.clear()
                balance_batch.clear()
                bar.update(10_000)
        consumer_rows.writerows(consumer_batch)
        bill_rows.writerows(bill_batch)
        balance_rows.writerows(balance_batch)
        bar.update(generated % 10_000)

    _write_staff(paths["staff"], random_, consumers)
    return paths


_LOG_1500 = math.log(1500)
_LOG_600 = math.log(600)


def _write_staff(path: Path, random_: Callable[[], float], consumers: int) -> None:
    """About one meter reader per 1,000 consumers (at least 3) and a few officers."""
    readers = max(3, consumers // 1000)
    officers = max(2, consumers // 25_000)
    taken = {mobile for mobile, *_ in _DEMO_STAFF}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        rows = csv.writer(handle)
        rows.writerow(STAFF_COLUMNS)
        rows.writerows(_DEMO_STAFF)
        for index in range(readers + officers - len(_DEMO_STAFF)):
            mobile = "+91" + _mobile(random_)
            while mobile in taken:
                mobile = "+91" + _mobile(random_)
            taken.add(mobile)
            role = "meter_reader" if index < readers - 1 else "officer"
            devanagari, roman = _person(random_)
            name = devanagari if random_() < 0.2 else roman
            rows.writerow((mobile, name, role, AREAS[index % len(AREAS)]))
