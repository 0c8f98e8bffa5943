"""``bijli import bank-statement FILE.csv``: credit payments whose gateway never called back.

Each line of the bank's statement (``utr``, ``amount``, ``credited_at``, ``reference``) goes
through the same ledger as a webhook, as the report of source ``bank_statement``: a line whose
``reference`` is an intent's UPI ``tr`` for its exact amount is credited and receipted; a UTR
already credited (by the webhook, usually) is left alone; the rest is reported for a person. A
bad line is reported with its line number, column and reason, and a file with bad lines changes
nothing unless the operator asks to skip them. Importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy.engine import Engine

from bot.clock import IST
from bot.money import format_rupees
from bot.payments import ledger
from bot.payments.gateways import Captured

SOURCE = "bank_statement"
COLUMNS = ("utr", "amount", "credited_at", "reference")
_UTR = re.compile(r"^[A-Za-z0-9]{12,22}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9]{1,35}$")
_AMOUNT = re.compile(r"^\d{1,9}(?:\.\d{1,2})?$")


@dataclass
class StatementReport:
    """What a statement import did: outcomes per line, and every bad line."""

    path: Path
    rows: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    replays: int = 0
    unmatched: list[tuple[int, str, int, str]] = field(default_factory=list)
    credited: list[int] = field(default_factory=list)  # payment ids
    committed: bool = False
    file_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.committed

    def summary(self) -> str:
        """Operator-readable account: counts, what needs a person, then each bad line."""
        name = self.path.name
        if self.file_error:
            return f"Nothing imported from {name}: {self.file_error}"
        lines: list[str] = []
        if self.committed:
            lines.append(
                f"Bank statement {name}: {self.rows} lines, "
                f"{self.outcomes[ledger.CREDITED]} credited and receipted, "
                f"{self.outcomes[ledger.DUPLICATE_UTR]} already credited, "
                f"{len(self.unmatched)} for reconciliation by hand, "
                f"{self.replays} seen in an earlier import"
            )
            for line, utr, paise, outcome in self.unmatched:
                reason = {
                    ledger.UNKNOWN_INTENT: "no pay link with this reference",
                    ledger.AMOUNT_MISMATCH: "amount differs from the pay link",
                }[outcome]
                lines.append(f"  line {line}: UTR {utr}, {format_rupees(paise)}: {reason}")
        else:
            lines.append(
                f"Nothing imported from {name}: {len(self.errors)} bad line(s) "
                "(fix them, or pass --skip-bad-rows)"
            )
        for line, column, reason in self.errors:
            where = f"line {line}" + (f", column {column}" if column else "")
            lines.append(f"  {where}: {reason}")
        return "\n".join(lines)


def _moment(value: str) -> dt.datetime:
    """A statement's time: ISO 8601; without a zone it is Indian time. Returns naive UTC."""
    moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def read_statement(path: Path, report: StatementReport) -> list[tuple[int, Captured]]:
    """The statement's good lines as captured payments; bad ones go into ``report``."""
    good: list[tuple[int, Captured]] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
        if missing:
            report.file_error = f"missing column(s): {', '.join(missing)}"
            return []
        for row in reader:
            line = reader.line_num
            report.rows += 1
            problems: list[tuple[str, str]] = []
            utr = (row.get("utr") or "").strip()
            amount = (row.get("amount") or "").strip().replace(",", "")
            reference = (row.get("reference") or "").strip()
            if not _UTR.match(utr):
                problems.append(("utr", "must be 12 to 22 letters or digits"))
            elif utr in seen:
                problems.append(("utr", f"repeats line {seen[utr]}"))
            else:
                seen[utr] = line
            paise = 0
            if not _AMOUNT.match(amount):
                problems.append(("amount", "must be rupees, e.g. 1543.50"))
            else:
                try:
                    paise = int(Decimal(amount) * 100)
                except InvalidOperation:
                    problems.append(("amount", "must be rupees, e.g. 1543.50"))
                if paise <= 0:
                    problems.append(("amount", "must be more than zero"))
            try:
                paid_at = _moment(row.get("credited_at") or "")
            except ValueError:
                problems.append(("credited_at", "must be an ISO date-time, e.g. 2026-11-30T18:05"))
            if reference and not _REFERENCE.match(reference):
                problems.append(("reference", "must be the UPI tr: letters and digits only"))
            if problems:
                report.errors.extend((line, column, reason) for column, reason in problems)
                continue
            good.append(
                (
                    line,
                    Captured(
                        source=SOURCE,
                        external_id=f"utr:{utr}",
                        amount_paise=paise,
                        currency="INR",
                        intent_ref=reference or None,
                        utr=utr,
                        paid_at=paid_at,
                        detail={"file": path.name, "line": line},
                    ),
                )
            )
    return good


def import_statement(engine: Engine, path: Path, *, skip_bad_rows: bool = False) -> StatementReport:
    """Reconcile a bank statement; return what happened (nothing, if bad lines and no skip)."""
    report = StatementReport(path)
    try:
        lines = read_statement(path, report)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.file_error = f"cannot read the file: {exc}"
        return report
    if report.file_error or (report.errors and not skip_bad_rows):
        return report
    for line, captured in lines:
        recorded = ledger.record_once(engine, captured)
        if not recorded.new:
            report.replays += 1
            continue
        report.outcomes[recorded.outcome] += 1
        if recorded.outcome in ledger.NEEDS_RECONCILIATION:
            assert captured.utr is not None
            report.unmatched.append((line, captured.utr, captured.amount_paise, recorded.outcome))
        if recorded.receipt_due and recorded.payment_id is not None:
            report.credited.append(recorded.payment_id)
    report.committed = True
    return report


__all__ = ["COLUMNS", "StatementReport", "import_statement", "read_statement"]
