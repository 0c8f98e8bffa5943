"""``bijli demo-data`` and ``bijli import`` as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from bot.cli import main
from bot.settings import ROOT
from bot.store import Bill, Consumer, PrepaidBalance, Staff, count_rows, session_scope


def table_counts(engine: Engine) -> tuple[int, ...]:
    with session_scope(engine) as session:
        return tuple(count_rows(session, m) for m in (Consumer, Bill, PrepaidBalance, Staff))


def bijli(database_url: str, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(main, list(args), env={"DATABASE_URL": database_url})


def test_demo_data_then_import_every_file(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    made = bijli(
        database_url, "demo-data", "--consumers", "300", "--out", str(tmp_path), "--seed", "5"
    )
    assert made.exit_code == 0, made.output
    assert f"consumers: {tmp_path / 'consumers.csv'}" in made.stdout

    for kind, name in [
        ("consumers", "consumers.csv"),
        ("bills", "bills.csv"),
        ("prepaid-balances", "prepaid_balances.csv"),
        ("staff", "staff.csv"),
    ]:
        result = bijli(database_url, "import", kind, str(tmp_path / name), "--no-progress")
        assert result.exit_code == 0, result.output
        assert f"Imported {kind} from {name}" in result.stdout
    consumers, bills, balances, staff = table_counts(engine)
    assert (consumers, bills) == (300, 300)
    assert balances > 0 and staff == 5

    again = bijli(
        database_url, "import", "consumers", str(tmp_path / "consumers.csv"), "--no-progress"
    )
    assert "0 inserted, 0 updated, 300 unchanged, 0 bad." in again.stdout


def test_bad_rows_exit_1_and_change_nothing(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "consumers.csv"
    path.write_text(
        "discom,new_account_no,old_account_no,name,mobile,category,meter_type,area,language,"
        "whatsapp_opt_in\n"
        "KESCO,2300000001,1234567,Ram Kumar,9876543210,domestic,postpaid,Juhi,hi,yes\n"
        "KESCO,2300000002,,Shyam,12345,domestic,postpaid,Juhi,hi,yes\n",
        encoding="utf-8",
    )
    result = bijli(database_url, "import", "consumers", str(path), "--no-progress")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "Nothing imported from consumers.csv: 1 bad row out of 2. Fix it, or run again with "
        "--skip-bad-rows to import the other 1.",
        "Bad rows:",
        "  line 3, column mobile: '12345' is not a valid Indian mobile number",
    ]
    assert table_counts(engine) == (0, 0, 0, 0)

    skipped = bijli(
        database_url, "import", "consumers", str(path), "--no-progress", "--skip-bad-rows"
    )
    assert skipped.exit_code == 0
    assert "1 inserted, 0 updated, 0 unchanged, 1 bad (skipped)." in skipped.stdout
    assert table_counts(engine) == (1, 0, 0, 0)


def test_a_bad_file_exits_1_with_the_reason(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "consumers.csv"
    path.write_bytes("discom,name\nKESCO,José\n".encode("latin-1"))
    result = bijli(database_url, "import", "consumers", str(path), "--no-progress")
    assert result.exit_code == 1
    assert result.stdout == (
        "Nothing imported from consumers.csv: the file is not UTF-8 (line 2 has characters that "
        "are not UTF-8); save it as 'CSV UTF-8' in Excel\n"
    )
    assert table_counts(engine) == (0, 0, 0, 0)


def test_the_real_command_shows_progress_on_stderr(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    made = bijli(database_url, "demo-data", "--consumers", "50", "--out", str(tmp_path))
    assert made.exit_code == 0
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import", "consumers", str(tmp_path / "consumers.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "importing consumers" in done.stderr
    assert done.stdout.startswith("Imported consumers from consumers.csv in ")
    assert "50 rows read, 50 inserted" in done.stdout
