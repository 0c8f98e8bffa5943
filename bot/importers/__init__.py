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

from bot.importers.kinds import BATCH_SIZE, KINDS
from bot.importers.reader import ImportFileError, import_file
from bot.importers.report import ImportReport
from bot.importers.values import BadValue

__all__ = ["BATCH_SIZE", "KINDS", "BadValue", "ImportFileError", "ImportReport", "import_file"]
