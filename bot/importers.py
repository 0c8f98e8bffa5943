"""Import the CSV files a discom hands over: consumers, bills, prepaid balances and staff.

A file is streamed (``csv`` over an open text file) and handled in batches of :data:`BATCH_SIZE`
rows, so memory stays bounded for KESCO's 5.3 lakh consumers. Each batch is compared with the rows
already stored (one ``SELECT ... IN`` per batch) and only new or changed rows are written, with Core
``executemany``; importing the same file twice therefore changes nothing the second time.

The whole file is one transaction: a file-level problem, or any bad row when the operator did not
ask to skip bad rows, rolls everything back. Every bad row is still reported (line, column, reason),
so one run tells the operator everything there is to fix.

A new account number, an old number within a discom, an account's bill for a month and a staff
mobile may each appear once in a file; a repeat is a bad row that names the line of the first. An
old number that belongs to a different consumer in the database is a bad row too: rows are checked
against the database as it stood before their batch, so a file that moves an old number from one
consumer to another is reported rather than applied in a guessed order.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from bot.store import (
    CATEGORIES,
    DISCOMS,
    IST,
    LANGUAGES,
    METER_TYPES,
    STAFF_ROLES,
    Bill,
    Consumer,
    PrepaidBalance,
    Staff,
    utcnow,
)

KINDS = ("consumers", "bills", "prepaid-balances", "staff")

BATCH_SIZE = 5000
"""Rows validated, compared and written together: bounds memory and the number of round trips."""

IN_CHUNK = 900
"""Most values in one ``IN (...)`` list; below SQLite's historical limit of 999 bound variables."""

MAX_STORED_ERRORS = 10_000
"""Bad-row messages kept in a report; beyond this they are only counted."""

SUMMARY_ERRORS = 100
"""Bad-row messages :meth:`ImportReport.summary` prints by default."""


class ImportFileError(Exception):
    """The file as a whole cannot be imported (not UTF-8, empty, not CSV, missing columns)."""


class BadValue(ValueError):
    """One value in a row is invalid; the message says why, in an operator's words."""


# --------------------------------------------------------------------------- report


@dataclass
class ImportReport:
    """What an import did, or would have done, and every bad row it found."""

    kind: str
    path: Path
    skip_bad_rows: bool = False
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)
    errors_not_kept: int = 0
    file_error: str | None = None
    committed: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the file was imported (bad rows, if any, skipped at the operator's request)."""
        return self.committed

    @property
    def good(self) -> int:
        """Rows that passed every check."""
        return self.rows - self.bad

    def add_error(self, line: int, column: str | None, reason: str) -> None:
        """Record one problem with a row (the caller counts the row as bad once)."""
        if len(self.errors) < MAX_STORED_ERRORS:
            self.errors.append((line, column, reason))
        else:
            self.errors_not_kept += 1

    def summary(self, limit: int = SUMMARY_ERRORS) -> str:
        """Operator-readable account of the import: counts, then each bad row."""
        name = self.path.name
        if self.file_error is not None:
            return f"Nothing imported from {name}: {self.file_error}"
        if self.committed:
            lines = [
                f"Imported {self.kind} from {name} in {self.seconds:.1f} s: "
                f"{indian(self.rows)} rows read, {indian(self.inserted)} inserted, "
                f"{indian(self.updated)} updated, {indian(self.unchanged)} unchanged, "
                f"{indian(self.bad)} bad" + (" (skipped)." if self.bad else ".")
            ]
        elif self.good == 0:
            lines = [f"Nothing imported from {name}: all {indian(self.rows)} rows are bad."]
        else:
            lines = [
                f"Nothing imported from {name}: {indian(self.bad)} bad "
                f"{'row' if self.bad == 1 else 'rows'} out of {indian(self.rows)}. Fix "
                f"{'it' if self.bad == 1 else 'them'}, or run again with --skip-bad-rows to import "
                f"the other {indian(self.good)}."
            ]
        if self.errors:
            lines.append("Bad rows:")
            lines.extend(f"  {format_error(*error)}" for error in self.errors[:limit])
            hidden = len(self.errors) - limit + self.errors_not_kept
            if hidden > 0:
                lines.append(f"  ... and {indian(hidden)} more")
        return "\n".join(lines)


def format_error(line: int, column: str | None, reason: str) -> str:
    """One bad-row message: ``line 17, column mobile: '12345' is not ...``."""
    where = f"line {line}, column {column}" if column else f"line {line}"
    return f"{where}: {reason}"


def indian(number: int) -> str:
    """Group digits the Indian way (5,30,000), as operators at a discom write them."""
    sign, digits = ("-", str(-number)) if number < 0 else ("", str(number))
    if len(digits) <= 3:
        return sign + digits
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join([*groups, tail])


# --------------------------------------------------------------------------- value parsers


def _shown(raw: str) -> str:
    """A value quoted for a message, shortened so one bad row cannot flood the report."""
    text = raw.strip()
    return f"'{text[:40]}…'" if len(text) > 40 else f"'{text}'"


_PHONE_NOISE = re.compile(r"[\s\-().]")
_INDIAN_FORMS = re.compile(r"(?:\+91|0091|91|0)?(\d{10})")
_EXCEL_NUMBER = re.compile(r"\d(?:\.\d+)?[eE]\+?\d+")
# phonenumbers cannot tell some Indian series apart from landlines; those may be mobiles.
_MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def normalize_mobile(raw: str) -> str:
    """Return an Indian mobile number in E.164 (``+919876543210``), or raise :class:`BadValue`."""
    compact = _PHONE_NOISE.sub("", raw)
    match = _INDIAN_FORMS.fullmatch(compact)
    if match:
        # The common forms skip phonenumbers.parse, which costs more than the rest of a row.
        number = PhoneNumber(country_code=91, national_number=int(match.group(1)))
    else:
        if _EXCEL_NUMBER.fullmatch(raw.strip()):
            raise BadValue(
                f"{_shown(raw)} was turned into a number by Excel; format the column as Text"
            )
        try:
            number = phonenumbers.parse(raw, "IN")
        except NumberParseException:
            raise BadValue(f"{_shown(raw)} is not a valid Indian mobile number") from None
        if number.country_code != 91:
            raise BadValue(f"{_shown(raw)} is not an Indian (+91) number")
    kind = phonenumbers.number_type(number)
    if kind in _MOBILE_TYPES:
        return f"+91{number.national_number}"
    if kind == PhoneNumberType.FIXED_LINE:
        raise BadValue(f"{_shown(raw)} is a landline number, not a mobile")
    raise BadValue(f"{_shown(raw)} is not a valid Indian mobile number")


_PLAIN_RUPEES = re.compile(r"(\d{1,13})\.(\d\d)")
_RUPEES = re.compile(r"(-)?(\d{1,13})(?:\.(\d*))?")
_GROUPED = re.compile(r"-?\d{1,3}(?:(?:,\d\d)*,\d{3}|(?:,\d{3})+)(?:\.\d*)?")
_CURRENCY = re.compile(r"^\s*(?:₹|rs\.?|inr)\s*", re.IGNORECASE)


def parse_rupees(raw: str, *, allow_negative: bool = False) -> int:
    """Rupees with at most 2 decimals (``1234.50``, ``1,234.50``, ``₹ 1234``) to integer paise."""
    plain = _PLAIN_RUPEES.fullmatch(raw)
    if plain:  # the usual form, worth skipping the checks below for lakhs of rows
        return int(plain.group(1)) * 100 + int(plain.group(2))
    text = _CURRENCY.sub("", raw).strip()
    if _GROUPED.fullmatch(text):
        text = text.replace(",", "")
    match = _RUPEES.fullmatch(text)
    if not match:
        raise BadValue(f"{_shown(raw)} is not an amount in rupees like 1234.50")
    minus, whole, decimals = match.groups()
    decimals = decimals or ""
    if len(decimals) > 2:
        raise BadValue(f"{_shown(raw)} has more than 2 decimal places")
    if minus and not allow_negative:
        raise BadValue(f"{_shown(raw)} is negative; it must be 0 or more")
    paise = int(whole) * 100 + int(decimals.ljust(2, "0"))
    return -paise if minus else paise


def parse_as_of(raw: str) -> dt.datetime:
    """An ISO date-time to naive UTC; without an offset it is taken to be IST (+05:30)."""
    text = raw.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{_shown(raw)} is not a date-time like 2024-05-01T10:30:00+05:30") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def parse_date(raw: str) -> dt.date:
    """A date written YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise BadValue(f"{_shown(raw)} is not a date in YYYY-MM-DD form, e.g. 2024-05-15") from None


_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_month(raw: str) -> str:
    """A bill month written YYYY-MM."""
    text = raw.strip()
    match = _MONTH.fullmatch(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise BadValue(f"{_shown(raw)} is not a month in YYYY-MM form, e.g. 2024-05")
    return text


def parse_account(raw: str, *, old: bool = False) -> str:
    """A 10-digit new account number, or (``old=True``) a 6–8 digit old one."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        if (6 <= len(text) <= 8) if old else len(text) == 10:
            return text
        rule = "an old account number has 6 to 8" if old else "a new account number has exactly 10"
        raise BadValue(f"{_shown(raw)} has {len(text)} digits; {rule} digits")
    if _EXCEL_NUMBER.fullmatch(text):
        raise BadValue(
            f"{_shown(raw)} was turned into a number by Excel; format the column as Text"
        )
    if not text:
        raise BadValue("is empty")
    raise BadValue(f"{_shown(raw)} is not an account number: use digits only")


def _choice(canonical: Iterable[str], aliases: dict[str, str], what: str) -> Callable[[str], str]:
    """A parser accepting one of ``canonical`` in any case, with spaces or hyphens, or an alias."""
    table = {value: value for value in canonical}
    table.update(aliases)
    listed = ", ".join(canonical)

    def parse(raw: str) -> str:
        found = table.get(raw)
        if found is not None:
            return found
        found = table.get(_WORD_GAPS.sub("_", raw.strip().lower()))
        if found is None:
            if not raw.strip():
                raise BadValue(f"is empty; use one of {listed}")
            raise BadValue(f"{_shown(raw)} is not a {what}; use one of {listed}")
        return found

    return parse


_WORD_GAPS = re.compile(r"[\s\-_]+")

parse_discom = _choice(DISCOMS, {d.lower(): d for d in DISCOMS}, "discom")
parse_category = _choice(
    CATEGORIES,
    {
        "public_institutions": "public_institution",
        "institution": "public_institution",
        "industry": "industrial",
        "industries": "industrial",
        "small_and_medium_industry": "industrial",
        "non_domestic": "commercial",
    },
    "category",
)
parse_meter_type = _choice(
    METER_TYPES,
    {
        "post_paid": "postpaid",
        "smart_post_paid": "smart_postpaid",
        "smart_pre_paid": "smart_prepaid",
    },
    "meter type",
)
parse_language = _choice(
    LANGUAGES, {"hindi": "hi", "english": "en", "हिंदी": "hi", "हिन्दी": "hi"}, "language"
)
parse_role = _choice(
    STAFF_ROLES,
    {
        "reader": "meter_reader",
        **{title: "officer" for title in ("je", "ae", "sdo", "xen", "exen")},
    },
    "staff role",
)
_YES_NO = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False,
           "false": False, "0": False, "": False}  # fmt: skip


def parse_yes_no(raw: str) -> bool:
    """``yes``/``no`` (also y/n, true/false, 1/0); empty means no, as consent is never assumed."""
    found = _YES_NO.get(raw.strip().lower())
    if found is None:
        raise BadValue(f"{_shown(raw)} is not yes or no")
    return found


def _text(raw: str, limit: int, *, required: bool) -> str:
    """Free text, trimmed; raise if empty when required or longer than the column holds."""
    text = " ".join(raw.split())
    if required and not text:
        raise BadValue("is empty")
    if len(text) > limit:
        raise BadValue(f"is {len(text)} characters long; at most {limit} fit")
    return text


# --------------------------------------------------------------------------- kinds of file

Record = dict[str, Any]
Row = tuple[int, Record]  # (line, record)


@dataclass
class _Outcome:
    """How a batch compares with the database: rows to write and rows found bad."""

    inserts: list[Record] = field(default_factory=list)
    updates: list[Record] = field(default_factory=list)
    unchanged: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def sort(self, record: Record, stored: tuple[Any, ...] | None, values: tuple[Any, ...]) -> None:
        """File ``record`` as an insert (not stored), unchanged (same values) or an update."""
        if stored is None:
            self.inserts.append(record)
        elif stored == values:
            self.unchanged += 1
        else:
            self.updates.append(record)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield values[start : start + IN_CHUNK]


_REQUIRED: Any = object()
"""Marks a field whose empty value goes to its parser (which says why empty is wrong)."""

# (file column, record key, parser, value when the cell is empty or _REQUIRED)
Field = tuple[str, str, Callable[[str], Any], Any]
# The same with the column's position in the row, worked out from the header.
Plan = list[tuple[int, str, str, Callable[[str], Any], Any]]


class _Kind:
    """What differs between the four files: columns, parsers, unique keys and the table."""

    fields: tuple[Field, ...] = ()
    #: Tables whose statistics PostgreSQL needs to plan this import's lookups.
    looked_up: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the header must have."""
        return tuple(column for column, *_ in self.fields)

    def keys(self, record: Record) -> Iterator[tuple[int, str, int]]:
        """Values that must be unique within the file, as (key kind, column, key)."""
        raise NotImplementedError

    def describe(self, key_kind: int, record: Record) -> str:
        """The unique value of a key kind, in words, for a duplicate's message."""
        raise NotImplementedError

    def compare(self, conn: Connection, batch: list[Row]) -> _Outcome:
        """Classify a batch of good rows against the database."""
        raise NotImplementedError

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        """Insert and update what :meth:`compare` found new or changed."""
        raise NotImplementedError


def _parse_row(cells: list[str], plan: Plan, errors: list[tuple[str, str]]) -> Record:
    """Parse one row by the plan; each bad value is appended to ``errors`` as (column, reason)."""
    record: Record = {}
    for index, column, key, parse, empty in plan:
        raw = cells[index]
        if empty is not _REQUIRED and not raw.strip():
            record[key] = empty
            continue
        try:
            record[key] = parse(raw)
        except BadValue as exc:
            errors.append((column, str(exc)))
    return record


def _known_accounts(conn: Connection, accounts: Sequence[str]) -> set[str]:
    found: set[str] = set()
    column = Consumer.__table__.c.new_account_no
    for chunk in _chunks(accounts):
        found.update(conn.execute(select(column).where(column.in_(chunk))).scalars().all())
    return found


def _unknown_account(account: str) -> str:
    return f"account {account} is not in consumers; import consumers first"


class _Consumers(_Kind):
    fields = (
        ("discom", "discom", parse_discom, _REQUIRED),
        ("new_account_no", "new_account_no", parse_account, _REQUIRED),
        ("old_account_no", "old_account_no", lambda raw: parse_account(raw, old=True), None),
        ("name", "name", lambda raw: _text(raw, 200, required=True), _REQUIRED),
        ("mobile", "mobile", normalize_mobile, None),
        ("category", "category", parse_category, _REQUIRED),
        ("meter_type", "meter_type", parse_meter_type, _REQUIRED),
        ("area", "area", lambda raw: _text(raw, 120, required=False), ""),
        ("language", "language", parse_language, _REQUIRED),
        # Consent is never assumed: an empty cell means no.
        ("whatsapp_opt_in", "whatsapp_opt_in", parse_yes_no, False),
    )
    compared = (
        "discom",
        "old_account_no",
        "name",
        "mobile",
        "category",
        "meter_type",
        "area",
        "language",
        "whatsapp_opt_in",
    )
    table = Consumer.__table__
    looked_up = ("consumers",)

    def keys(self, record: Record) -> Iterator[tuple[int, str, int]]:
        new = record.get("new_account_no")
        if new is not None:
            yield 0, "new_account_no", int(new)
        old, discom = record.get("old_account_no"), record.get("discom")
        if old and discom:
            # Old numbers are unique only within a discom; the length keeps 012345 apart from 12345.
            yield 1, "old_account_no", (DISCOMS.index(discom) * 10 + len(old)) * 10**8 + int(old)

    def describe(self, key_kind: int, record: Record) -> str:
        if key_kind == 0:
            return f"account {record['new_account_no']}"
        return f"old number {record['old_account_no']} ({record['discom']})"

    def compare(self, conn: Connection, batch: list[Row]) -> _Outcome:
        c = self.table.c
        news = [record["new_account_no"] for _, record in batch]
        olds: dict[str, set[str]] = {}
        for _, record in batch:
            if record["old_account_no"]:
                olds.setdefault(record["discom"], set()).add(record["old_account_no"])
        current: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(news):
            query = select(c.new_account_no, *(c[name] for name in self.compared))
            for row in conn.execute(query.where(c.new_account_no.in_(chunk))).all():
                current[row[0]] = tuple(row[1:])
        owners: dict[tuple[str, str], str] = {}
        for discom, numbers in olds.items():
            # By discom, so the (discom, old_account_no) unique index answers, not a table scan.
            for chunk in _chunks(sorted(numbers)):
                query = select(c.old_account_no, c.new_account_no).where(
                    c.discom == discom, c.old_account_no.in_(chunk)
                )
                for old, new in conn.execute(query).all():
                    owners[(discom, old)] = new
        outcome = _Outcome()
        for line, record in batch:
            old = record["old_account_no"]
            if old:
                owner = owners.get((record["discom"], old))
                if owner is not None and owner != record["new_account_no"]:
                    outcome.errors.append(
                        (
                            line,
                            "old_account_no",
                            f"old number {old} already belongs to account {owner} in the database",
                        )
                    )
                    continue
            stored = current.get(record["new_account_no"])
            outcome.sort(record, stored, tuple(record[name] for name in self.compared))
        return outcome

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        if outcome.inserts:
            for record in outcome.inserts:
                record["updated_at"] = now
            conn.execute(self.table.insert(), outcome.inserts)
        if outcome.updates:
            params = [
                {
                    **{k: r[k] for k in self.compared},
                    "updated_at": now,
                    "b_new": r["new_account_no"],
                }
                for r in outcome.updates
            ]
            statement = self.table.update().where(self.table.c.new_account_no == bindparam("b_new"))
            conn.execute(statement, params)


class _Bills(_Kind):
    fields = (
        ("new_account_no", "new_account_no", parse_account, _REQUIRED),
        ("bill_month", "bill_month", parse_month, _REQUIRED),
        ("amount_due", "amount_due_paise", parse_rupees, _REQUIRED),
        ("due_date", "due_date", parse_date, _REQUIRED),
        ("arrears", "arrears_paise", parse_rupees, 0),
    )
    table = Bill.__table__
    looked_up = ("consumers", "bills")

    def keys(self, record: Record) -> Iterator[tuple[int, str, int]]:
        account, month = record.get("new_account_no"), record.get("bill_month")
        if account is not None and month is not None:
            yield 0, "bill_month", int(account) * 10**6 + int(month[:4]) * 100 + int(month[5:])

    def describe(self, key_kind: int, record: Record) -> str:
        return f"the bill of account {record['new_account_no']} for {record['bill_month']}"

    def compare(self, conn: Connection, batch: list[Row]) -> _Outcome:
        c = self.table.c
        accounts = sorted({record["new_account_no"] for _, record in batch})
        months = sorted({record["bill_month"] for _, record in batch})
        known = _known_accounts(conn, accounts)
        current: dict[tuple[str, str], tuple[Any, ...]] = {}
        for chunk in _chunks(accounts):
            query = select(
                c.new_account_no, c.bill_month, c.amount_due_paise, c.due_date, c.arrears_paise
            ).where(c.new_account_no.in_(chunk), c.bill_month.in_(months))
            for row in conn.execute(query).all():
                current[(row[0], row[1])] = tuple(row[2:])
        outcome = _Outcome()
        for line, record in batch:
            account = record["new_account_no"]
            if account not in known:
                outcome.errors.append((line, "new_account_no", _unknown_account(account)))
                continue
            stored = current.get((account, record["bill_month"]))
            values = (record["amount_due_paise"], record["due_date"], record["arrears_paise"])
            outcome.sort(record, stored, values)
        return outcome

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        if outcome.inserts:
            for record in outcome.inserts:
                record["imported_at"] = now
            conn.execute(self.table.insert(), outcome.inserts)
        if outcome.updates:
            c = self.table.c
            params = [
                {
                    "amount_due_paise": r["amount_due_paise"],
                    "due_date": r["due_date"],
                    "arrears_paise": r["arrears_paise"],
                    "imported_at": now,
                    "b_account": r["new_account_no"],
                    "b_month": r["bill_month"],
                }
                for r in outcome.updates
            ]
            statement = self.table.update().where(
                c.new_account_no == bindparam("b_account"), c.bill_month == bindparam("b_month")
            )
            conn.execute(statement, params)


class _PrepaidBalances(_Kind):
    fields = (
        ("new_account_no", "new_account_no", parse_account, _REQUIRED),
        ("balance", "balance_paise", lambda raw: parse_rupees(raw, allow_negative=True), _REQUIRED),
        ("as_of", "as_of", parse_as_of, _REQUIRED),
    )
    table = PrepaidBalance.__table__
    looked_up = ("consumers", "prepaid_balances")

    def keys(self, record: Record) -> Iterator[tuple[int, str, int]]:
        account = record.get("new_account_no")
        if account is not None:
            yield 0, "new_account_no", int(account)

    def describe(self, key_kind: int, record: Record) -> str:
        return f"account {record['new_account_no']}"

    def compare(self, conn: Connection, batch: list[Row]) -> _Outcome:
        c = self.table.c
        accounts = [record["new_account_no"] for _, record in batch]
        known = _known_accounts(conn, accounts)
        current: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(accounts):
            query = select(c.new_account_no, c.balance_paise, c.as_of)
            for row in conn.execute(query.where(c.new_account_no.in_(chunk))).all():
                current[row[0]] = (row[1], row[2])
        outcome = _Outcome()
        for line, record in batch:
            account = record["new_account_no"]
            if account not in known:
                outcome.errors.append((line, "new_account_no", _unknown_account(account)))
                continue
            stored = current.get(account)
            outcome.sort(record, stored, (record["balance_paise"], record["as_of"]))
        return outcome

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        if outcome.inserts:
            conn.execute(self.table.insert(), outcome.inserts)
        if outcome.updates:
            params = [
                {
                    "balance_paise": r["balance_paise"],
                    "as_of": r["as_of"],
                    "b_account": r["new_account_no"],
                }
                for r in outcome.updates
            ]
            statement = self.table.update().where(
                self.table.c.new_account_no == bindparam("b_account")
            )
            conn.execute(statement, params)


def _parse_staff_mobile(raw: str) -> str:
    if not raw.strip():
        raise BadValue("is empty; staff are known by their mobile number")
    return normalize_mobile(raw)


class _Staff(_Kind):
    fields = (
        ("mobile", "mobile", _parse_staff_mobile, _REQUIRED),
        ("name", "name", lambda raw: _text(raw, 200, required=True), _REQUIRED),
        ("role", "role", parse_role, _REQUIRED),
        ("area", "area", lambda raw: _text(raw, 120, required=False), ""),
    )
    compared = ("name", "role", "area")
    table = Staff.__table__

    def keys(self, record: Record) -> Iterator[tuple[int, str, int]]:
        mobile = record.get("mobile")
        if mobile is not None:
            yield 0, "mobile", int(mobile[1:])

    def describe(self, key_kind: int, record: Record) -> str:
        return f"mobile {record['mobile']}"

    def compare(self, conn: Connection, batch: list[Row]) -> _Outcome:
        c = self.table.c
        mobiles = [record["mobile"] for _, record in batch]
        current: dict[str, tuple[Any, ...]] = {}
        for chunk in _chunks(mobiles):
            query = select(c.mobile, c.name, c.role, c.area).where(c.mobile.in_(chunk))
            for row in conn.execute(query).all():
                current[row[0]] = tuple(row[1:])
        outcome = _Outcome()
        for _line, record in batch:
            stored = current.get(record["mobile"])
            outcome.sort(record, stored, tuple(record[name] for name in self.compared))
        return outcome

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        if outcome.inserts:
            conn.execute(self.table.insert(), [{**r, "active": True} for r in outcome.inserts])
        if outcome.updates:
            # ``active`` is left alone: a number an officer switched off stays off until they say.
            params = [
                {**{k: r[k] for k in self.compared}, "b_mobile": r["mobile"]}
                for r in outcome.updates
            ]
            statement = self.table.update().where(self.table.c.mobile == bindparam("b_mobile"))
            conn.execute(statement, params)


_KINDS: dict[str, type[_Kind]] = {
    "consumers": _Consumers,
    "bills": _Bills,
    "prepaid-balances": _PrepaidBalances,
    "staff": _Staff,
}

# --------------------------------------------------------------------------- the file


_NOT_UTF8 = "the file is not UTF-8{where}; save it as 'CSV UTF-8' in Excel"


def _sniff(path: Path) -> str:
    """Refuse files that are plainly not CSV text; return the delimiter the header line uses."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64 * 1024)
    except FileNotFoundError:
        raise ImportFileError(f"there is no file at {path}") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a folder, not a file") from None
    except PermissionError:
        raise ImportFileError(f"{path} cannot be read (permission denied)") from None
    if not head.lstrip(b"\xef\xbb\xbf").strip():
        raise ImportFileError("the file is empty")
    if head.startswith(b"PK\x03\x04"):
        raise ImportFileError(_zip_kind(path))
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ImportFileError(what)
    if b"\x00" in head:
        raise ImportFileError(f"this is not a CSV file (it holds binary data); {_EXPORT_HINT}")
    first = head.lstrip(b"\xef\xbb\xbf").lstrip().split(b"\n", 1)[0].decode("utf-8", "replace")
    if first.lstrip().lower().startswith(("<!doctype", "<html", "<?xml")):
        raise ImportFileError("this is a web page or XML document, not a CSV file")
    # Excel in some locales saves "CSV" with semicolons; a header that uses them is unambiguous.
    if "," not in first:
        for delimiter in (";", "\t"):
            if delimiter in first:
                return delimiter
    return ","


_EXPORT_HINT = "in Excel use File > Save As > 'CSV UTF-8 (Comma delimited)'"
_MAGIC = (
    (b"\x89PNG", "this is a PNG image, not a CSV file"),
    (b"\xff\xd8\xff", "this is a JPEG image, not a CSV file"),
    (b"GIF8", "this is a GIF image, not a CSV file"),
    (b"%PDF", "this is a PDF document, not a CSV file"),
    (b"\xd0\xcf\x11\xe0", f"this is an old Excel workbook (.xls), not a CSV file; {_EXPORT_HINT}"),
    (b"\xff\xfe", f"the file is UTF-16 ('Unicode Text'), not UTF-8; {_EXPORT_HINT}"),
    (b"\xfe\xff", f"the file is UTF-16 ('Unicode Text'), not UTF-8; {_EXPORT_HINT}"),
    (b"\x1f\x8b", "this is a gzip archive, not a CSV file; unpack it first"),
)


def _zip_kind(path: Path) -> str:
    """Say which kind of ZIP-based file this is, so the operator knows how to get a CSV from it."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile:
        names = set()
    if "xl/workbook.xml" in names or any(name.startswith("xl/") for name in names):
        return f"this is an Excel workbook (.xlsx), not a CSV file; {_EXPORT_HINT}"
    if "content.xml" in names:
        return "this is an OpenDocument spreadsheet, not a CSV file; save it as CSV (UTF-8)"
    return "this is a ZIP archive, not a CSV file; unzip it first"


def _first_bad_utf8_line(path: Path) -> int | None:
    """Line number of the first line that is not valid UTF-8."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _header_columns(header: list[str], kind: str, spec: _Kind) -> dict[str, int]:
    """Map each needed column to its position; raise naming whatever is missing."""
    names = [_WORD_GAPS.sub("_", name.strip().lower()).lstrip("\ufeff") for name in header]
    at: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in spec.columns:
            if name in at:
                raise ImportFileError(f"column {name} appears twice in the header row")
            at[name] = position
    missing = [name for name in spec.columns if name not in at]
    if not missing:
        return at
    for other, other_spec in _KINDS.items():
        if other != kind and all(name in names for name in other_spec().columns):
            raise ImportFileError(
                f"this looks like a {other} file, not {kind}; "
                f"import it with `bijli import {other} FILE`"
            )
    expected = ",".join(spec.columns)
    if len(missing) == len(spec.columns):
        found = ",".join(header)[:80]
        raise ImportFileError(
            f"the first line is not the header row of a {kind} file: expected columns "
            f"{expected}, found '{found}'"
        )
    plural = "column" if len(missing) == 1 else "columns"
    raise ImportFileError(f"missing {plural} {', '.join(missing)} (the header needs {expected})")


ANALYZE_FIRST_AFTER = 20_000
"""Rows inserted before PostgreSQL's statistics are first refreshed (then at every doubling)."""

SQLITE_IMPORT_CACHE_KIB = 128 * 1024
"""SQLite page cache while importing: holds the consumer indexes of a whole discom (5.3 lakh)."""


def _set_sqlite_cache(conn: Connection, kib: int | None) -> int | None:
    """Set SQLite's page cache to ``kib`` KiB (or back to a saved value); return the previous one.

    With the default 2 MB every index lookup and every spilled page is a system call, and one
    transaction of lakhs of rows writes the same pages to the WAL again and again.
    """
    if conn.dialect.name != "sqlite" or kib is None:
        return None
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)
    conn.exec_driver_sql(f"PRAGMA cache_size = {-kib if kib > 0 else kib}")
    return before


def import_file(
    engine: Engine,
    kind: str,
    path: str | Path,
    *,
    skip_bad_rows: bool = False,
    progress: bool = True,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import one discom CSV file of ``kind``; file problems are reported, never raised."""
    if kind not in _KINDS:
        raise ValueError(f"unknown import kind {kind!r}; expected one of {', '.join(KINDS)}")
    path = Path(path)
    report = ImportReport(kind=kind, path=path, skip_bad_rows=skip_bad_rows)
    started = time.perf_counter()
    try:
        delimiter = _sniff(path)
        with engine.connect() as conn:
            # One transaction (begun by the first statement) holds the whole file.
            cache_before = _set_sqlite_cache(conn, SQLITE_IMPORT_CACHE_KIB)
            try:
                _import(conn, _KINDS[kind](), path, delimiter, report, progress, batch_size)
                if report.bad and not skip_bad_rows:
                    conn.rollback()
                else:
                    conn.commit()
                    report.committed = True
            except BaseException:
                conn.rollback()
                raise
            finally:
                # The pooled connection goes back with the cache it came with.
                _set_sqlite_cache(conn, cache_before)
                conn.commit()
    except ImportFileError as exc:
        report.file_error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


def _import(
    conn: Connection,
    spec: _Kind,
    path: Path,
    delimiter: str,
    report: ImportReport,
    progress: bool,
    batch_size: int,
) -> None:
    """Read, check and (while no bad row forbids it) write the file batch by batch."""
    now = utcnow()
    skip = report.skip_bad_rows
    # Where each unique value was first seen, by key kind: finds duplicates with both lines.
    seen: list[dict[int, int]] = [{}, {}]
    batch: list[Row] = []
    row_errors: list[tuple[str, str]] = []

    # PostgreSQL plans an IN (...) lookup on a table that grew since its last ANALYZE as a scan of
    # the whole table (hundreds of ms per batch); refresh the statistics as this import doubles it.
    analyze_at = 0

    def refresh_statistics() -> None:
        nonlocal analyze_at
        if conn.dialect.name == "postgresql" and report.inserted >= analyze_at:
            for table in spec.looked_up:
                conn.exec_driver_sql(f"ANALYZE {table}")
            analyze_at = max(2 * report.inserted, ANALYZE_FIRST_AFTER)

    def flush() -> None:
        refresh_statistics()
        outcome = spec.compare(conn, batch)
        for line, column, reason in outcome.errors:
            report.bad += 1
            report.add_error(line, column, reason)
        if outcome.errors:
            # Rows are checked in file order within a batch; keep the report in file order too.
            report.errors.sort(key=lambda error: error[0])
        if report.bad == 0 or skip:
            spec.write(conn, outcome, now)
            report.inserted += len(outcome.inserts)
            report.updated += len(outcome.updates)
            report.unchanged += outcome.unchanged
        batch.clear()

    size = path.stat().st_size
    with (
        io.TextIOWrapper(open(path, "rb"), encoding="utf-8-sig", newline="") as text,
        tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"importing {report.kind}",
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar,
    ):
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header: list[str] | None = None
            for header in reader:
                if any(cell.strip() for cell in header):
                    break
            if header is None or not any(cell.strip() for cell in header):
                raise ImportFileError("the file is empty")
            at = _header_columns(header, report.kind, spec)
            plan: Plan = [(at[column], column, *rest) for column, *rest in spec.fields]
            width = len(header)
            previous_end = reader.line_num
            read_bytes = 0
            for cells in reader:
                line = previous_end + 1
                previous_end = reader.line_num
                if not cells or (not cells[0].strip() and not "".join(cells).strip()):
                    continue
                report.rows += 1
                if len(cells) != width and (len(cells) < width or any(cells[width:])):
                    report.bad += 1
                    report.add_error(line, None, _width_problem(len(cells), width))
                    continue
                record = _parse_row(cells, plan, row_errors)
                for key_kind, column, key in spec.keys(record):
                    first = seen[key_kind].setdefault(key, line)
                    if first != line:
                        what = spec.describe(key_kind, record)
                        row_errors.append((column, f"duplicate: {what} is also on line {first}"))
                if row_errors:
                    report.bad += 1
                    for column, reason in row_errors:
                        report.add_error(line, column, reason)
                    row_errors.clear()
                    continue
                batch.append((line, record))
                if len(batch) >= batch_size:
                    flush()
                    position = text.buffer.tell()
                    bar.update(position - read_bytes)
                    read_bytes = position
            if batch:
                flush()
            bar.update(size - read_bytes)
        except UnicodeDecodeError:
            line_no = _first_bad_utf8_line(path)
            where = f" (line {line_no} has characters that are not UTF-8)" if line_no else ""
            raise ImportFileError(_NOT_UTF8.format(where=where)) from None
        except csv.Error as exc:
            raise ImportFileError(
                f"this is not a readable CSV file (line {reader.line_num}: {exc})"
            ) from None
    if report.rows == 0:
        raise ImportFileError("the file has a header row but no data rows")


def _width_problem(found: int, width: int) -> str:
    if found < width:
        return f"has {found} values but the header has {width} columns"
    return (
        f"has {found} values but the header has {width} columns; "
        "a value with a comma in it must be in double quotes"
    )
