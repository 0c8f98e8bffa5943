"""Reading a discom's CSV file: refusing what is not CSV, matching the header, streaming the
rows in batches through a kind, in one transaction.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import zipfile
from pathlib import Path

from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from bot.clock import utcnow
from bot.importers.kinds import BATCH_SIZE, KIND_SPECS, KINDS, Kind, Plan, Row, parse_row
from bot.importers.report import ImportReport
from bot.importers.values import WORD_GAPS


class ImportFileError(Exception):
    """The file as a whole cannot be imported (not UTF-8, empty, not CSV, missing columns)."""


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


def _header_columns(header: list[str], kind: str, spec: Kind) -> dict[str, int]:
    """Map each needed column to its position; raise naming whatever is missing."""
    names = [WORD_GAPS.sub("_", name.strip().lower()).lstrip("\ufeff") for name in header]
    at: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in spec.columns or name in spec.optional_columns:
            if name in at:
                raise ImportFileError(f"column {name} appears twice in the header row")
            at[name] = position
    missing = [name for name in spec.columns if name not in at]
    if not missing:
        return at
    for other, other_spec in KIND_SPECS.items():
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
    if kind not in KIND_SPECS:
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
                _import(conn, KIND_SPECS[kind](), path, delimiter, report, progress, batch_size)
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
    spec: Kind,
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
            plan: Plan = [
                (at[column], column, *rest) for column, *rest in spec.fields if column in at
            ]
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
                record = parse_row(cells, plan, row_errors)
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
