"""The kinds of file a discom hands over (consumers, bills, prepaid balances, staff): their
columns, their keys, how a batch compares with the database, and how it is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from bot.importers.values import (
    BadValue,
    normalise_mobile,
    parse_account,
    parse_as_of,
    parse_category,
    parse_date,
    parse_discom,
    parse_language,
    parse_meter_type,
    parse_month,
    parse_role,
    parse_rupees,
    parse_text,
    parse_yes_no,
)
from bot.store import DISCOMS, Bill, Consumer, PrepaidBalance, Staff

KINDS = ("consumers", "bills", "prepaid-balances", "staff")

BATCH_SIZE = 5000
"""Rows validated, compared and written together: bounds memory and the number of round trips."""

IN_CHUNK = 900
"""Most values in one ``IN (...)`` list; below SQLite's historical limit of 999 bound variables."""


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


class Kind:
    """What differs between the four files: columns, parsers, unique keys and the table."""

    fields: tuple[Field, ...] = ()
    #: Columns a file may leave out altogether (their records then lack the key).
    optional_columns: tuple[str, ...] = ()
    #: Tables whose statistics PostgreSQL needs to plan this import's lookups.
    looked_up: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the header must have."""
        return tuple(c for c, *_ in self.fields if c not in self.optional_columns)

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


def parse_row(cells: list[str], plan: Plan, errors: list[tuple[str, str]]) -> Record:
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


class _Consumers(Kind):
    fields = (
        ("discom", "discom", parse_discom, _REQUIRED),
        ("new_account_no", "new_account_no", parse_account, _REQUIRED),
        ("old_account_no", "old_account_no", lambda raw: parse_account(raw, old=True), None),
        ("name", "name", lambda raw: parse_text(raw, 200, required=True), _REQUIRED),
        ("mobile", "mobile", normalise_mobile, None),
        ("category", "category", parse_category, _REQUIRED),
        ("meter_type", "meter_type", parse_meter_type, _REQUIRED),
        ("area", "area", lambda raw: parse_text(raw, 120, required=False), ""),
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


class _Bills(Kind):
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


class _PrepaidBalances(Kind):
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
    return normalise_mobile(raw)


class _Staff(Kind):
    fields = (
        ("mobile", "mobile", _parse_staff_mobile, _REQUIRED),
        ("name", "name", lambda raw: parse_text(raw, 200, required=True), _REQUIRED),
        ("role", "role", parse_role, _REQUIRED),
        ("area", "area", lambda raw: parse_text(raw, 120, required=False), ""),
        # BRIEF: optional, yes/no, default yes. Empty or absent leaves a stored number as it is.
        ("active", "active", parse_yes_no, None),
    )
    optional_columns = ("active",)
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
            query = select(c.mobile, c.name, c.role, c.area, c.active).where(c.mobile.in_(chunk))
            for row in conn.execute(query).all():
                current[row[0]] = tuple(row[1:])
        outcome = _Outcome()
        for _line, record in batch:
            stored = current.get(record["mobile"])
            given = record.get("active")
            if stored is not None and given is None:
                stored = stored[:-1] + (None,)  # not given: whatever is stored stays
            outcome.sort(record, stored, (*(record[name] for name in self.compared), given))
        return outcome

    def write(self, conn: Connection, outcome: _Outcome, now: dt.datetime) -> None:
        if outcome.inserts:
            rows = [{**r, "active": r.get("active") is not False} for r in outcome.inserts]
            conn.execute(self.table.insert(), rows)
        # Without an ``active`` value a number an officer switched off stays off until they say.
        for changes_active in (False, True):
            names = (*self.compared, "active") if changes_active else self.compared
            params = [
                {**{k: r[k] for k in names}, "b_mobile": r["mobile"]}
                for r in outcome.updates
                if (r.get("active") is not None) == changes_active
            ]
            if params:
                statement = self.table.update().where(self.table.c.mobile == bindparam("b_mobile"))
                conn.execute(statement, params)


KIND_SPECS: dict[str, type[Kind]] = {
    "consumers": _Consumers,
    "bills": _Bills,
    "prepaid-balances": _PrepaidBalances,
    "staff": _Staff,
}
