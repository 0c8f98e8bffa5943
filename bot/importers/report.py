"""What an import did: counts, and every bad row with its line, column and reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.money import group_indian

MAX_STORED_ERRORS = 10_000
"""Bad-row messages kept in a report; beyond this they are only counted."""

SUMMARY_ERRORS = 100
"""Bad-row messages :meth:`ImportReport.summary` prints by default."""


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
                f"{group_indian(self.rows)} rows read, {group_indian(self.inserted)} inserted, "
                f"{group_indian(self.updated)} updated, {group_indian(self.unchanged)} unchanged, "
                f"{group_indian(self.bad)} bad" + (" (skipped)." if self.bad else ".")
            ]
        elif self.good == 0:
            lines = [f"Nothing imported from {name}: all {group_indian(self.rows)} rows are bad."]
        else:
            lines = [
                f"Nothing imported from {name}: {group_indian(self.bad)} bad "
                f"{'row' if self.bad == 1 else 'rows'} out of {group_indian(self.rows)}. Fix "
                f"{'it' if self.bad == 1 else 'them'}, or run again with --skip-bad-rows to import "
                f"the other {group_indian(self.good)}."
            ]
        if self.errors:
            lines.append("Bad rows:")
            lines.extend(f"  {format_error(*error)}" for error in self.errors[:limit])
            hidden = len(self.errors) - limit + self.errors_not_kept
            if hidden > 0:
                lines.append(f"  ... and {group_indian(hidden)} more")
        return "\n".join(lines)


def format_error(line: int, column: str | None, reason: str) -> str:
    """One bad-row message: ``line 17, column mobile: '12345' is not ...``."""
    where = f"line {line}, column {column}" if column else f"line {line}"
    return f"{where}: {reason}"
