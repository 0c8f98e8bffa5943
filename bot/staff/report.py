"""The verification report per area: informed out of total, mobiles confirmed, pending changes,
and visits per reader per day (``bijli report verification`` and /admin/verification)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from bot import verification
from bot.verification import AreaFigures, ReaderDayRow

CSV_COLUMNS = (
    "area",
    "row",
    "day",
    "reader",
    "visits",
    "informed",
    "total",
    "percent_informed",
    "mobiles_confirmed",
    "pending_changes",
    "mobile_changes",
)


@dataclass(frozen=True)
class AreaReport:
    figures: AreaFigures
    days: list[ReaderDayRow]


def build(
    session: Session,
    areas: list[str],
    wrap: Callable[[Iterator[tuple[int, object, bool, bool]], int], Iterator] | None = None,
) -> list[AreaReport]:
    """The report of each area; ``wrap(rows, total)`` may wrap the visit stream (a progress bar)."""
    reports = []
    for area in areas:
        rows = verification.visit_rows(session, area)
        if wrap is not None:
            rows = wrap(rows, verification.count_visits(session, area))
        days = verification.per_reader_per_day(session, area, rows)
        reports.append(AreaReport(verification.area_figures(session, area), days))
    return reports


def write_csv(out: IO[str], reports: list[AreaReport]) -> int:
    """One ``area`` row per area, then its ``reader_day`` rows; returns the rows written."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    written = 0
    for report in reports:
        f = report.figures
        writer.writerow(
            [f.area, "area", "", "", f.visits_today, f.informed, f.total, f.percent,
             f.confirmed, f.pending, ""]
        )  # fmt: skip
        written += 1
        for d in report.days:
            writer.writerow(
                [f.area, "reader_day", d.day.isoformat(), d.name, d.visits, d.informed, "", "",
                 "", "", d.mobile_changes]
            )  # fmt: skip
            written += 1
    return written


def save_csv(path: Path, reports: list[AreaReport]) -> int:
    """Write the report to ``path`` (UTF-8, for Excel too); returns the rows written."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        return write_csv(fh, reports)


__all__ = ["CSV_COLUMNS", "AreaReport", "build", "save_csv", "write_csv"]
