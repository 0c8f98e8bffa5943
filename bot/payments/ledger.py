"""What a reported payment means for an account: credit it with a receipt, or flag it.

Every report (a gateway's webhook, a bank-statement line) is kept as a
:class:`~bot.store.PaymentNotice`, once per source and payment id, so a replay changes nothing.
A payment is credited only when it names an intent we made, for exactly the intent's amount in
rupees, and its UTR has not been credited before; anything else is recorded for reconciliation.
A credited payment gets the next receipt number of its discom's financial year (April–March):
the counter row is incremented by an UPDATE in the crediting transaction, which holds the row
lock until commit, so concurrent callbacks queue on it and a rolled-back credit leaves no gap.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import store
from bot.clock import to_ist, utcnow
from bot.logfmt import kv
from bot.payments.gateways import Captured

log = logging.getLogger(__name__)

CREDITED = "credited"
AMOUNT_MISMATCH = "amount_mismatch"
UNKNOWN_INTENT = "unknown_intent"
DUPLICATE_UTR = "duplicate_utr"
#: Outcomes a person has to look at.
NEEDS_RECONCILIATION = (AMOUNT_MISMATCH, UNKNOWN_INTENT)

#: Letters of a receipt's verification code: no 0/O or 1/I/L to misread.
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


@dataclass(frozen=True)
class Recorded:
    """What became of one report: its outcome, the payment it credited, and if it was new."""

    outcome: str
    notice_id: int
    payment_id: int | None
    new: bool
    #: A credited payment whose receipt has not gone out yet (a replay queues it again).
    receipt_due: bool = False

    @property
    def credited(self) -> bool:
        return self.outcome == CREDITED


def financial_year(day: dt.date) -> str:
    """India's financial year holding ``day``: ``2026-27`` for 1 April 2026 – 31 March 2027."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def receipt_number(discom: str, year: str, number: int) -> str:
    """``KESCO-2627-000042``: discom, financial year, and the number within it."""
    return f"{discom}-{year[2:4]}{year[5:7]}-{number:06d}"


def next_receipt_number(session: Session, discom: str, moment: dt.datetime) -> str:
    """Take the next receipt number of ``discom`` for the financial year of ``moment`` (IST)."""
    year = financial_year(to_ist(moment).date())
    table = store.ReceiptCounter.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The first receipt of a year makes the row; a concurrent maker's insert waits, then yields.
    session.execute(
        insert(table)
        .values(discom=discom, financial_year=year, last_no=0)
        .on_conflict_do_nothing(index_elements=["discom", "financial_year"])
    )
    # UPDATE first: it takes the row lock (PostgreSQL) or the write lock (SQLite) before the read.
    session.execute(
        update(store.ReceiptCounter)
        .where(store.ReceiptCounter.discom == discom, store.ReceiptCounter.financial_year == year)
        .values(last_no=store.ReceiptCounter.last_no + 1)
        .execution_options(synchronize_session=False)
    )
    number = session.execute(
        select(store.ReceiptCounter.last_no).where(
            store.ReceiptCounter.discom == discom, store.ReceiptCounter.financial_year == year
        )
    ).scalar_one()
    return receipt_number(discom, year, int(number))


def new_receipt_code() -> str:
    """A verification code for a receipt, printed on it and required to open it online."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _notice(session: Session, source: str, external_id: str) -> store.PaymentNotice | None:
    return session.execute(
        select(store.PaymentNotice).where(
            store.PaymentNotice.source == source, store.PaymentNotice.external_id == external_id
        )
    ).scalar_one_or_none()


def record(session: Session, captured: Captured, now: dt.datetime | None = None) -> Recorded:
    """Record one reported payment and credit it when it matches an intent; idempotent.

    Commit the session afterwards. On a concurrent duplicate the flush raises IntegrityError:
    roll back and call again, and the second call answers as a replay.
    """
    moment = now or utcnow()
    seen = _notice(session, captured.source, captured.external_id)
    if seen is not None:
        paid = session.get(store.Payment, seen.payment_id) if seen.payment_id else None
        due = seen.outcome == CREDITED and paid is not None and paid.receipt_sent_at is None
        return Recorded(seen.outcome, seen.id, seen.payment_id, new=False, receipt_due=due)

    payment: store.Payment | None = None
    intent = session.get(store.PaymentIntent, captured.intent_ref) if captured.intent_ref else None
    earlier = store.payment_by_utr(session, captured.utr) if captured.utr else None
    if earlier is not None:
        outcome, payment_id = DUPLICATE_UTR, earlier.id
    elif intent is None:
        outcome, payment_id = UNKNOWN_INTENT, None
    elif captured.currency != "INR" or captured.amount_paise != intent.amount_paise:
        outcome, payment_id = AMOUNT_MISMATCH, None
    else:
        payment = credit(session, intent, captured, moment)
        outcome, payment_id = CREDITED, payment.id

    notice = store.PaymentNotice(
        source=captured.source,
        external_id=captured.external_id,
        utr=captured.utr,
        intent_ref=captured.intent_ref,
        amount_paise=captured.amount_paise,
        outcome=outcome,
        payment_id=payment_id,
        paid_at=captured.paid_at,
        received_at=moment,
        detail=json.dumps(
            {**captured.detail, "currency": captured.currency}, sort_keys=True, default=str
        ),
    )
    session.add(notice)
    session.flush()
    log_fields = {
        "source": captured.source,
        "payment": captured.external_id,
        "outcome": outcome,
        "paise": captured.amount_paise,
        "intent": captured.intent_ref,
    }
    if payment is not None:
        log_fields["receipt"] = payment.receipt_no
    log.info(kv("payment_recorded", **log_fields))
    if outcome in NEEDS_RECONCILIATION:
        store.audit(
            session,
            captured.source,
            f"payment_{outcome}",
            subject=captured.external_id,
            utr=captured.utr,
            intent=captured.intent_ref,
            paise=captured.amount_paise,
        )
    return Recorded(outcome, notice.id, payment_id, new=True, receipt_due=outcome == CREDITED)


def credit(
    session: Session, intent: store.PaymentIntent, captured: Captured, now: dt.datetime
) -> store.Payment:
    """Store a payment of ``intent`` as paid, with its receipt number and code."""
    closed = store.open_billing_closure(session, intent.discom) is not None
    payment = store.Payment(
        reference=f"{captured.source}:{captured.external_id}"[:40],
        new_account_no=intent.new_account_no,
        amount_paise=captured.amount_paise,
        channel="upi",
        status="paid",
        created_at=now,
        paid_at=captured.paid_at,
        intent_id=intent.id,
        discom=intent.discom,
        utr=captured.utr,
        source=captured.source,
        receipt_code=new_receipt_code(),
        # While billing is closed the payment is receipted now and posted when it reopens.
        applied_at=None if closed else now,
    )
    session.add(payment)
    # The unique reference and UTR stop a concurrent duplicate here, before it takes a number.
    session.flush()
    payment.receipt_no = next_receipt_number(session, intent.discom, captured.paid_at)
    session.flush()
    return payment


def record_once(engine: Engine, captured: Captured, now: dt.datetime | None = None) -> Recorded:
    """:func:`record` in its own transaction, answering a concurrent duplicate as a replay."""
    for attempt in range(2):
        try:
            with store.session_scope(engine) as session:
                return record(session, captured, now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


__all__ = [
    "AMOUNT_MISMATCH",
    "CREDITED",
    "DUPLICATE_UTR",
    "UNKNOWN_INTENT",
    "Recorded",
    "credit",
    "financial_year",
    "next_receipt_number",
    "receipt_number",
    "record",
    "record_once",
]
