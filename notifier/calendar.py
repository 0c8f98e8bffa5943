"""Public holidays and moratoriums, as operators declare them (``bijli holiday``, ``bijli
moratorium``). Disconnection warnings never go on a holiday, and a moratorium holds them."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from tqdm import tqdm

from bot import store
from bot.clock import IST
from notifier.rules import as_utc_naive

HOLIDAY_COLUMNS = ("date", "name")


class CalendarError(ValueError):
    """A date, period or file an operator gave cannot be used; the message says why."""


@dataclass
class HolidayImport:
    """What a holiday CSV did: rows added, changed, unchanged, and bad rows with their line."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    bad: list[str] = field(default_factory=list)
    applied: bool = False

    def summary(self) -> str:
        head = (
            f"holidays: {self.added} added, {self.changed} changed, {self.unchanged} unchanged"
            if self.applied
            else "holidays: nothing changed"
        )
        return "\n".join([head, *self.bad])


def add_holiday(engine: Engine, day: dt.date, name: str) -> str:
    """List a public holiday: ``added``, ``changed`` (a new name) or ``unchanged``."""
    name = name.strip() or "Public holiday"
    with store.session_scope(engine) as session:
        found = session.get(store.Holiday, day)
        if found is None:
            session.add(store.Holiday(day=day, name=name))
            store.audit(session, "cli", "holiday_added", day.isoformat(), name=name)
            return "added"
        if found.name == name:
            return "unchanged"
        found.name = name
        store.audit(session, "cli", "holiday_changed", day.isoformat(), name=name)
        return "changed"


def import_holidays(
    engine: Engine, path: Path, *, skip_bad_rows: bool = False, progress: bool = False
) -> HolidayImport:
    """Import ``date,name`` rows (UTF-8, header row); a file with bad rows changes nothing
    unless ``skip_bad_rows``; the same file twice changes nothing the second time."""
    report = HolidayImport()
    rows: dict[dt.date, str] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in HOLIDAY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise CalendarError(f"{path.name}: missing column(s) {', '.join(missing)}")
            for line, row in enumerate(reader, start=2):
                raw = (row.get("date") or "").strip()
                try:
                    day = dt.date.fromisoformat(raw)
                except ValueError:
                    report.bad.append(f"line {line}, column date: {raw!r} is not YYYY-MM-DD")
                    continue
                name = (row.get("name") or "").strip()
                if not name:
                    report.bad.append(f"line {line}, column name: empty")
                    continue
                if day in rows and rows[day] != name:
                    report.bad.append(f"line {line}, column date: {day} listed twice")
                    continue
                rows[day] = name
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{path}: {exc}") from exc
    if report.bad and not skip_bad_rows:
        return report
    for day, name in tqdm(
        sorted(rows.items()), desc="holidays", unit=" days", disable=not progress
    ):
        outcome = add_holiday(engine, day, name)
        setattr(report, outcome, getattr(report, outcome) + 1)
    report.applied = True
    return report


def parse_moment(text: str, *, end_of_day: bool = False) -> dt.datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM`` in IST, as naive UTC; a bare date is the start of
    the day (or, with ``end_of_day``, the start of the next: ``--to`` a date includes it)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time(0), tzinfo=IST)
            if end_of_day:
                moment += dt.timedelta(days=1)
        else:
            moment = dt.datetime.fromisoformat(value.replace("T", " ")).replace(tzinfo=IST)
    except ValueError as exc:
        raise CalendarError(f"{text!r} is not YYYY-MM-DD or YYYY-MM-DD HH:MM (IST)") from exc
    return as_utc_naive(moment)


def add_moratorium(
    engine: Engine, discoms: list[str], starts_at: dt.datetime, ends_at: dt.datetime, reason: str
) -> list[int]:
    """Declare a moratorium (naive UTC bounds) for each discom; return the new ids."""
    if ends_at <= starts_at:
        raise CalendarError("a moratorium must end after it starts")
    if not reason.strip():
        raise CalendarError("give the moratorium's reason (consumers are told it)")
    unknown = [d for d in discoms if d not in store.DISCOMS]
    if unknown:
        raise CalendarError(f"unknown discom(s) {', '.join(unknown)}")
    ids = []
    with store.session_scope(engine) as session:
        for discom in discoms:
            row = store.Moratorium(
                discom=discom, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()
            )
            session.add(row)
            session.flush()
            ids.append(int(row.id))
            store.audit(
                session,
                "cli",
                "moratorium_added",
                str(row.id),
                discom=discom,
                starts_at=starts_at,
                ends_at=ends_at,
                reason=reason,
            )
    return ids


__all__ = [
    "CalendarError",
    "HolidayImport",
    "add_holiday",
    "add_moratorium",
    "import_holidays",
    "parse_moment",
]
