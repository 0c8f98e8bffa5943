"""Receipts and payments that do not show: look the payment up, else open a ticket.

Paying itself (pay-by-QR links) and checking a payment link belong to the payments issue; until
then pay_bill and verify_payment_link are plain responses in the domain. A consumer reporting a
missing payment often says when and how much ("maine 20-11-2026 ko 1500 rs bhara tha"): the NLU
reads those as date and amount entities (bot/nlu/facts.py), and the answer and the ticket use them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot import connections, store
from bot.actions.formatting import format_date, format_moment
from bot.actions.resolve import resolve, settle_unresolved
from bot.actions.tickets import PAYMENT_NOT_REFLECTED, RECEIPT_MISSING, ticket_for
from bot.actions.topics import PAYMENT_MISSING, RECEIPT
from bot.actions.turn import TopicAction, Turn
from bot.clock import to_ist
from bot.money import format_rupees

PAID = "paid"
PENDING = "pending"
PAYMENT_NOT_REFLECTED_INTENT = "payment_not_reflected"

#: A recorded payment this many days from the date the consumer gives is the one they mean.
SAME_PAYMENT_DAYS = 1


@dataclass(frozen=True)
class PaymentClaim:
    """What the consumer says they paid: on which day, how much, with which UTR (each optional)."""

    paid_on: dt.date | None = None
    amount_paise: int | None = None
    utr: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.paid_on, self.amount_paise, self.utr))

    def details(self) -> str:
        """Digits only, as the consumer's answer repeats them: ``₹1,500.00, 20-11-2026, UTR …``."""
        parts = [
            format_rupees(self.amount_paise) if self.amount_paise is not None else None,
            format_date(self.paid_on) if self.paid_on is not None else None,
            f"UTR {self.utr}" if self.utr else None,
        ]
        return ", ".join(p for p in parts if p)

    def record(self) -> str:
        """The claim as one key=value line at the top of the ticket, for the person who checks."""
        values = {
            "claimed_amount": format_rupees(self.amount_paise) if self.amount_paise else None,
            "claimed_date": self.paid_on.isoformat() if self.paid_on else None,
            "claimed_utr": self.utr,
        }
        return " ".join(f"{k}={v}" for k, v in values.items() if v)

    def matches(self, payment: store.Payment) -> bool:
        """True when a recorded payment can be the one claimed (same amount, about that day)."""
        if self.amount_paise is not None and payment.amount_paise != self.amount_paise:
            return False
        if self.paid_on is not None:
            day = to_ist(payment.paid_at or payment.created_at).date()
            if abs((day - self.paid_on).days) > SAME_PAYMENT_DAYS:
                return False
        return True


def _entity(entities: list[dict[str, Any]], name: str) -> Any:
    return next((e.get("value") for e in entities if e.get("entity") == name), None)


def _claim_from(parse_data: dict[str, Any]) -> PaymentClaim:
    entities = parse_data.get("entities") or []
    try:
        paid_on = dt.date.fromisoformat(str(_entity(entities, "date")))
    except ValueError:
        paid_on = None
    amount = _entity(entities, "amount")
    utr = _entity(entities, "utr")
    return PaymentClaim(
        paid_on=paid_on,
        amount_paise=amount if isinstance(amount, int) and amount > 0 else None,
        utr=str(utr) if utr else None,
    )


def _report_message(turn: Turn) -> dict[str, Any]:
    """The user message that reported the missing payment (before any account-form answer)."""
    latest = turn.tracker.latest_message or {}
    if (latest.get("intent") or {}).get("name") == PAYMENT_NOT_REFLECTED_INTENT:
        return latest
    for event in reversed(turn.tracker.events or []):
        parse_data = event.get("parse_data") or {}
        if event.get("event") == "user" and (
            (parse_data.get("intent") or {}).get("name") == PAYMENT_NOT_REFLECTED_INTENT
        ):
            return {**parse_data, "text": event.get("text") or ""}
    return latest


def payment_claim(turn: Turn) -> tuple[PaymentClaim, str]:
    """The date, amount and UTR the consumer gave for the missing payment, and their words."""
    report = _report_message(turn)
    claim = _claim_from(report)
    latest = turn.tracker.latest_message or {}
    if report is not latest:
        # Given with the account number instead ("2300000001, 1500 bhare the 20 nov ko").
        later = _claim_from(latest)
        claim = PaymentClaim(
            paid_on=claim.paid_on or later.paid_on,
            amount_paise=claim.amount_paise or later.amount_paise,
            utr=claim.utr or later.utr,
        )
    return claim, str(report.get("text") or turn.text)


def _payment_values(payment: store.Payment) -> dict[str, str]:
    return {
        "amount": format_rupees(payment.amount_paise),
        "paid_on": format_moment(payment.paid_at or payment.created_at),
        "receipt_no": payment.receipt_no or payment.reference,
        "reference": payment.reference,
    }


def handle_receipt(turn: Turn) -> None:
    """Answer "I need my receipt": the latest paid payment's receipt, else a ticket."""
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, RECEIPT, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        if not res.authorized:
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
            return
        payments = store.payments_for_account(session, consumer.new_account_no)
        paid = [p for p in payments if p.status == PAID]
        if paid:
            turn.say("utter_receipt_found", **_payment_values(paid[0]))
        elif payments and payments[0].status == PENDING:
            turn.say("utter_payment_pending", **_payment_values(payments[0]))
        else:
            ticket = ticket_for(session, turn, RECEIPT_MISSING, consumer)
            turn.say("utter_receipt_ticket", reference=ticket.reference)


def handle_payment_missing(turn: Turn) -> None:
    """Answer "I paid but it does not show": the payment on record, else a ticket.

    When the consumer said when or how much they paid, only a recorded payment that fits counts,
    and the ticket repeats what they said and carries it for the person who checks.
    """
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, PAYMENT_MISSING, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        claim, words = payment_claim(turn)
        payments = store.payments_for_account(session, consumer.new_account_no)
        if claim:
            payments = [p for p in payments if claim.matches(p)]
        latest = payments[0] if res.authorized and payments else None
        if latest is not None and latest.status == PAID:
            turn.say("utter_payment_found", **_payment_values(latest))
        elif latest is not None and latest.status == PENDING:
            turn.say("utter_payment_pending", **_payment_values(latest))
        else:
            # Anyone may report a missing payment; only the reference goes back to them.
            description = "\n".join(filter(None, [claim.record(), words]))
            ticket = ticket_for(
                session, turn, PAYMENT_NOT_REFLECTED, consumer, description=description
            )
            if claim:
                turn.say(
                    "utter_payment_claim_ticket",
                    reference=ticket.reference,
                    details=claim.details(),
                )
            else:
                turn.say("utter_payment_ticket", reference=ticket.reference)


class ActionReceipt(TopicAction):
    """ask_receipt."""

    action_name = "action_receipt"
    handle = staticmethod(handle_receipt)


class ActionPaymentNotReflected(TopicAction):
    """payment_not_reflected."""

    action_name = "action_payment_not_reflected"
    handle = staticmethod(handle_payment_missing)


__all__ = [
    "ActionPaymentNotReflected",
    "ActionReceipt",
    "PaymentClaim",
    "handle_payment_missing",
    "handle_receipt",
    "payment_claim",
]
