"""Import throughput and memory: KESCO's 5.3 lakh consumers (with bills) through ``bijli import``.

Generates demo data with ``bijli demo-data``, migrates a fresh database, then runs ``bijli import``
for each file as its own process, exactly as an operator would, and records per file: rows, wall
seconds, rows/s and the process's peak resident memory (``ru_maxrss`` from ``wait4``). Then imports
consumers and bills a second time (every row unchanged), the path a nightly re-import takes.

    python bench/import_bench.py [--consumers 530000] [--runs 3] [--database-url URL]
                                 [--write bench/IMPORT_RESULTS.md]

Without ``--database-url`` a new SQLite file in a temporary folder is used. A PostgreSQL URL gets
a schema of its own for every run (``bijli_bench_<n>``, see ``tests/pg_schemas.py``), dropped at
its end, so a benchmark never meets another one, or a test run, on the same server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bot import migrations  # noqa: E402
from tests.pg_schemas import PrivateSchema  # noqa: E402

#: Prefix of the PostgreSQL schema each run creates for itself.
PG_SCHEMA_PREFIX = "bijli_bench"
STEPS = (
    ("consumers", "consumers.csv"),
    ("bills", "bills.csv"),
    ("prepaid-balances", "prepaid_balances.csv"),
    ("staff", "staff.csv"),
    ("consumers", "consumers.csv"),  # again: every row unchanged
    ("bills", "bills.csv"),
)
SUMMARY = re.compile(
    r"([\d,]+) rows read, ([\d,]+) inserted, ([\d,]+) updated, ([\d,]+) unchanged, ([\d,]+) bad"
)


@dataclass
class Step:
    """One command run: what it did, how long it took and its peak memory."""

    label: str
    rows: int
    seconds: float
    cpu_seconds: float
    peak_mb: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[str, float, float, float]:
    """Run a command; return its stdout, wall seconds, CPU seconds and peak RSS in MB."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert child.stdout is not None
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed ({child.returncode}):\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return output, seconds, cpu, usage.ru_maxrss / 1024  # Linux reports KiB


def one_run(consumers: int, database_url: str | None, seed: int) -> list[Step]:
    """Generate the files, import them into a fresh database, import consumers and bills again."""
    bijli = [sys.executable, "-m", "bot.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    steps: list[Step] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bijli-bench-")))
        if database_url and database_url.startswith("postgresql"):
            url = stack.enter_context(PrivateSchema(database_url, PG_SCHEMA_PREFIX)).url
        else:
            url = f"sqlite:///{folder / 'bench.sqlite3'}"
        out, seconds, cpu, peak = run_measured(
            [*bijli, "demo-data", "--consumers", str(consumers), "--out", str(folder),
             "--seed", str(seed)],
            env,
        )  # fmt: skip
        steps.append(Step("demo-data (write 4 files)", consumers, seconds, cpu, peak))
        migrations.upgrade(url)
        env["DATABASE_URL"] = url
        seen: set[str] = set()
        for kind, name in STEPS:
            out, seconds, cpu, peak = run_measured(
                [*bijli, "import", kind, str(folder / name), "--no-progress"], env
            )
            counts = SUMMARY.search(out)
            if counts is None:
                raise SystemExit(f"unexpected output from bijli import {kind}:\n{out}")
            rows, inserted, updated, unchanged, bad = (
                int(n.replace(",", "")) for n in counts.groups()
            )
            if bad:
                raise SystemExit(f"bijli import {kind} found bad rows in demo data:\n{out}")
            label = f"import {kind}" + (" (again: unchanged)" if kind in seen else "")
            if kind in seen and unchanged != rows:
                raise SystemExit(f"second import of {kind} changed rows:\n{out}")
            seen.add(kind)
            steps.append(Step(label, rows, seconds, cpu, peak))
            print(
                f"  {label}: {rows:,} rows in {seconds:.1f} s ({cpu:.1f} s CPU), "
                f"peak {peak:.0f} MB",
                flush=True,
            )
    return steps


def describe_database(url: str | None) -> str:
    if url is None:
        return f"SQLite {sqlite3.sqlite_version} (file in a temporary folder, WAL)"
    engine = create_engine(url, future=True)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version()")).scalar_one()
    engine.dispose()
    return str(version).split(" on ")[0]


def report(
    all_runs: list[list[Step]], consumers: int, database_url: str | None, command: str
) -> str:
    """A Markdown table of the median of each step over the runs."""
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    lines = [
        f"## Import benchmark: {consumers:,} consumers",
        "",
        f"- Command: `{command}`",
        f"- Database: {describe_database(database_url)}",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {platform.platform()}",
        f"- Runs: {len(all_runs)} (median shown; each run on a fresh database); load average at "
        f"the end {load} (the machine is shared: CPU seconds are steadier than wall seconds)",
        "",
        "| step | rows | seconds | rows/s | CPU seconds | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for index, first in enumerate(all_runs[0]):
        seconds = statistics.median(run[index].seconds for run in all_runs)
        cpu = statistics.median(run[index].cpu_seconds for run in all_runs)
        peak = statistics.median(run[index].peak_mb for run in all_runs)
        rate = first.rows / seconds if seconds else 0.0
        lines.append(
            f"| {first.label} | {first.rows:,} | {seconds:.1f} | {rate:,.0f} | {cpu:.1f} "
            f"| {peak:.0f} |"
        )
    both = [run[1].seconds + run[2].seconds for run in all_runs]
    lines += [
        "",
        f"Consumers and their bills, first import: {statistics.median(both):.1f} s "
        f"(runs: {', '.join(f'{s:.1f}' for s in both)}).",
    ]
    if len(all_runs) > 1:
        lines += ["", "Seconds of each run, per step:", ""]
        for index, first in enumerate(all_runs[0]):
            each = ", ".join(f"{run[index].seconds:.1f}" for run in all_runs)
            lines.append(f"- {first.label}: {each}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--consumers", type=int, default=530_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--write", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()

    command = "python bench/import_bench.py " + shlex.join(sys.argv[1:])
    all_runs = []
    for number in range(1, args.runs + 1):
        print(f"run {number} of {args.runs}", flush=True)
        all_runs.append(one_run(args.consumers, args.database_url, args.seed))
    table = report(all_runs, args.consumers, args.database_url, command.strip())
    print()
    print(table)
    if args.write:
        args.write.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
