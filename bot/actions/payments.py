"""Receipts and payments that do not show: look the payment up, else open a ticket.

Paying itself (pay-by-QR links) and checking a payment link belong to the payments issue; until
then pay_bill and verify_payment_link are plain responses in the domain.
"""

from __future__ import annotations

from bot import connections, store
from bot.actions.formatting import format_moment
from bot.actions.resolve import resolve, settle_unresolved
from bot.actions.tickets import PAYMENT_NOT_REFLECTED, RECEIPT_MISSING, ticket_for
from bot.actions.topics import PAYMENT_MISSING, RECEIPT
from bot.actions.turn import TopicAction, Turn
from bot.money import format_rupees

PAID = "paid"
PENDING = "pending"


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
    """Answer "I paid but it does not show": the payment on record, else a ticket."""
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, PAYMENT_MISSING, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        payments = store.payments_for_account(session, consumer.new_account_no)
        latest = payments[0] if res.authorized and payments else None
        if latest is not None and latest.status == PAID:
            turn.say("utter_payment_found", **_payment_values(latest))
        elif latest is not None and latest.status == PENDING:
            turn.say("utter_payment_pending", **_payment_values(latest))
        else:
            # Anyone may report a missing payment; only the reference goes back to them.
            ticket = ticket_for(session, turn, PAYMENT_NOT_REFLECTED, consumer)
            turn.say("utter_payment_ticket", reference=ticket.reference)


class ActionReceipt(TopicAction):
    """ask_receipt."""

    action_name = "action_receipt"
    handle = staticmethod(handle_receipt)


class ActionPaymentNotReflected(TopicAction):
    """payment_not_reflected."""

    action_name = "action_payment_not_reflected"
    handle = staticmethod(handle_payment_missing)


__all__ = ["ActionPaymentNotReflected", "ActionReceipt", "handle_payment_missing", "handle_receipt"]
