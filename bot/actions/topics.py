"""The questions the bot answers about an account, and which intent asks each."""

from __future__ import annotations

NEW_NUMBER = "new_number"
BILL = "bill"
PAY = "pay"
RECEIPT = "receipt"
PAYMENT_MISSING = "payment_missing"
POWER_CUT = "power_cut"
WRONG_BILL = "wrong_bill"
DISCONNECTION = "disconnection"
BALANCE = "balance"
HANDOFF = "handoff"

#: Topics answered about one account (the account form asks for it when unknown).
ACCOUNT_TOPICS = (
    NEW_NUMBER,
    BILL,
    RECEIPT,
    PAYMENT_MISSING,
    POWER_CUT,
    WRONG_BILL,
    DISCONNECTION,
    BALANCE,
)

TOPIC_BY_INTENT = {
    "ask_new_account_number": NEW_NUMBER,
    "ask_bill_amount": BILL,
    "pay_bill": PAY,
    "ask_receipt": RECEIPT,
    "payment_not_reflected": PAYMENT_MISSING,
    "report_power_cut": POWER_CUT,
    "complain_wrong_bill": WRONG_BILL,
    "ask_disconnection": DISCONNECTION,
    "ask_prepaid_balance": BALANCE,
    "human_handoff": HANDOFF,
}

__all__ = ["ACCOUNT_TOPICS", "TOPIC_BY_INTENT"]
