"""Bills, prepaid balances and disconnection lists: private details of one account.

Details go to the account's registered mobile and to verified staff; anyone else is asked to
write from the registered mobile.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot import connections, store
from bot.actions.formatting import format_bill_month, format_date, format_moment
from bot.actions.resolve import Outcome, resolve, settle_unresolved
from bot.actions.topics import BALANCE, BILL, DISCONNECTION
from bot.actions.turn import TopicAction, Turn
from bot.money import format_rupees
from notifier import rules

SMART_PREPAID = "smart_prepaid"


def handle_bill(turn: Turn) -> None:
    """Answer "how much is my bill?": dues, due date, arrears and how fresh the data is."""
    with connections.session() as session:
        res = resolve(session, turn, answer_all=True)
        if res.outcome is Outcome.ALL:
            _say_each(turn, session, res.registered, BILL)
            return
        if settle_unresolved(turn, BILL, res):
            return
        consumer = res.consumer
        assert consumer is not None
        if not res.authorized:
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
        elif consumer.meter_type == SMART_PREPAID:
            # A prepaid meter has no bill to pay: its balance is what the consumer wants.
            _say_balance(turn, session, consumer)
        else:
            bill = store.latest_bill(session, consumer.new_account_no)
            if bill is None:
                turn.say("utter_no_bill_found", new_account_no=consumer.new_account_no)
            else:
                as_of = format_date(store.to_ist(bill.imported_at).date())
                turn.say(
                    "utter_bill_details",
                    new_account_no=consumer.new_account_no,
                    bill_month=format_bill_month(bill.bill_month),
                    # Less what was paid through the bot since this bill was imported.
                    amount_due=format_rupees(max(store.outstanding_paise(session, bill), 0)),
                    due_date=format_date(bill.due_date),
                    arrears=format_rupees(bill.arrears_paise or 0),
                    as_of=as_of,
                )
                if store.open_billing_closure(session, consumer.discom) is not None:
                    turn.say("utter_billing_closed_note", as_of=as_of)
        turn.settled(consumer.new_account_no)


def handle_balance(turn: Turn) -> None:
    """Answer "what is my prepaid balance?"."""
    with connections.session() as session:
        res = resolve(session, turn, answer_all=True)
        if res.outcome is Outcome.ALL:
            _say_each(turn, session, res.registered, BALANCE)
            return
        if settle_unresolved(turn, BALANCE, res):
            return
        consumer = res.consumer
        assert consumer is not None
        if not res.authorized:
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
        elif consumer.meter_type != SMART_PREPAID:
            turn.say("utter_not_prepaid", new_account_no=consumer.new_account_no)
        else:
            _say_balance(turn, session, consumer)
        turn.settled(consumer.new_account_no)


def _say_each(turn: Turn, session: Session, consumers: list[store.Consumer], topic: str) -> None:
    """Dues or balance of each of the sender's own accounts, one line each."""
    imported: dict[str, dt.datetime] = {}  # discom -> the latest bill import shown
    for consumer in consumers:
        values = {"new_account_no": consumer.new_account_no, "area": consumer.area or "—"}
        if consumer.meter_type == SMART_PREPAID:
            balance = store.prepaid_balance(session, consumer.new_account_no)
            if balance is None:
                turn.say("utter_account_line_nothing", **values)
                continue
            paise = balance.balance_paise + store.paid_since(
                session, consumer.new_account_no, balance.as_of
            )
            turn.say(
                "utter_account_line_balance",
                balance=format_rupees(paise),
                as_of=format_moment(balance.as_of),
                **values,
            )
            continue
        bill = store.latest_bill(session, consumer.new_account_no)
        if bill is None:
            turn.say("utter_account_line_nothing", **values)
            continue
        if consumer.discom not in imported or bill.imported_at > imported[consumer.discom]:
            imported[consumer.discom] = bill.imported_at
        turn.say(
            "utter_account_line_bill",
            bill_month=format_bill_month(bill.bill_month),
            amount_due=format_rupees(max(store.outstanding_paise(session, bill), 0)),
            due_date=format_date(bill.due_date),
            **values,
        )
    for discom, at in imported.items():
        if store.open_billing_closure(session, discom) is not None:
            turn.say("utter_billing_closed_note", as_of=format_date(store.to_ist(at).date()))
            break
    # No one account to remember; the question stays open, so that "pehle wale ka" next
    # answers it for that account (resolve.resolve).
    turn.settled(pending=topic)


def _say_balance(turn: Turn, session: Session, consumer: store.Consumer) -> None:
    balance = store.prepaid_balance(session, consumer.new_account_no)
    if balance is None:
        turn.say("utter_no_balance_found", new_account_no=consumer.new_account_no)
        return
    # Recharges paid through the bot since the balance was read are added to it.
    paise = balance.balance_paise + store.paid_since(
        session, consumer.new_account_no, balance.as_of
    )
    turn.say(
        "utter_prepaid_balance_negative" if paise < 0 else "utter_prepaid_balance",
        new_account_no=consumer.new_account_no,
        balance=format_rupees(paise),
        as_of=format_moment(balance.as_of),
    )


def handle_disconnection(turn: Turn, now: dt.datetime | None = None) -> None:
    """Answer "will my connection be cut?": the list, the amount that avoids it, and when."""
    moment = now or store.utcnow()
    with connections.session() as session:
        res = resolve(session, turn)
        if settle_unresolved(turn, DISCONNECTION, res):
            return
        consumer = res.consumer
        assert consumer is not None
        turn.settled(consumer.new_account_no)
        if not res.authorized:
            turn.say("utter_registered_mobile_only", new_account_no=consumer.new_account_no)
            return
        window = rules.cut_window(consumer.discom, consumer.meter_type)
        notice = store.listed_disconnection(session, consumer.new_account_no)
        if notice is None:
            turn.say(
                "utter_not_on_disconnection_list",
                new_account_no=consumer.new_account_no,
                cut_hours=rules.hours_text(window),
            )
            return
        periods = [
            rules.Period(m.starts_at, m.ends_at, m.reason)
            for m in store.moratoriums_ending_after(session, consumer.discom, moment)
        ]
        today = rules.as_ist(moment).date()
        holidays = store.holidays_between(
            session, today, today + dt.timedelta(days=rules.DEFAULT_HORIZON_DAYS)
        )
        values = {
            "new_account_no": consumer.new_account_no,
            "amount": format_rupees(notice.amount_to_avoid_paise),
            "cut_hours": rules.hours_text(window),
        }
        moratorium = rules.active_moratorium(moment, periods)
        if moratorium is not None:
            turn.say(
                "utter_disconnection_moratorium",
                until=format_moment(rules.as_utc_naive(moratorium.ends_at)),
                **values,
            )
            return
        earliest = rules.next_cut_time(
            moment,
            discom=consumer.discom,
            meter_type=consumer.meter_type,
            holidays=holidays,
            moratoriums=periods,
        )
        turn.say(
            "utter_disconnection_listed",
            next_cut=format_moment(earliest) if earliest else "—",
            **values,
        )


class ActionBillAmount(TopicAction):
    """ask_bill_amount."""

    action_name = "action_bill_amount"
    handle = staticmethod(handle_bill)


class ActionPrepaidBalance(TopicAction):
    """ask_prepaid_balance."""

    action_name = "action_prepaid_balance"
    handle = staticmethod(handle_balance)


class ActionDisconnectionStatus(TopicAction):
    """ask_disconnection."""

    action_name = "action_disconnection_status"
    handle = staticmethod(handle_disconnection)


__all__ = [
    "ActionBillAmount",
    "ActionDisconnectionStatus",
    "ActionPrepaidBalance",
    "handle_balance",
    "handle_bill",
    "handle_disconnection",
]
