"""Who a campaign goes to: the filters, the dues, the channel rule and the exclusions.

Channel: WhatsApp when the consumer opted in (``whatsapp_opt_in`` in consumers.csv), SMS
otherwise. A number that opted out on that channel (STOP) is excluded, not moved to the other
channel: a person who said stop is not pushed elsewhere instead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from bot import paylinks, store
from notifier.messages import DISCONNECTION_WARNING, KINDS, NEW_ACCOUNT_NUMBER

#: Consumers read from the database per round trip while selecting.
FETCH_SIZE = 5000

#: Why a consumer is left out at selection.
NO_MOBILE = "no_mobile"
OPTED_OUT = "opted_out"
DUES_ABOVE_UPI_LIMIT = "dues_above_upi_limit"


class UnknownKind(ValueError):
    """Not a campaign kind (``new-account-number`` or ``disconnection-warning``)."""


class InvalidFilter(ValueError):
    """A filter value no consumer could have (unknown discom, meter type or category)."""


@dataclass(frozen=True)
class Filters:
    """Which consumers a campaign selects; every field narrows, None/empty means any."""

    discom: str | None = None
    areas: tuple[str, ...] = ()
    meter_type: str | None = None
    category: str | None = None
    #: Disconnection warnings: least outstanding dues, in paise (None: any dues above zero).
    min_dues_paise: int | None = None
    #: Only these accounts (new numbers); for operators re-sending to a few, and for tests.
    accounts: tuple[str, ...] = ()

    def check(self) -> Filters:
        """These filters, or :class:`InvalidFilter` naming the bad value."""
        if self.discom is not None and self.discom not in store.DISCOMS:
            raise InvalidFilter(
                f"unknown discom {self.discom!r}: one of {', '.join(store.DISCOMS)}"
            )
        if self.meter_type is not None and self.meter_type not in store.METER_TYPES:
            raise InvalidFilter(
                f"unknown meter type {self.meter_type!r}: one of {', '.join(store.METER_TYPES)}"
            )
        if self.category is not None and self.category not in store.CATEGORIES:
            raise InvalidFilter(
                f"unknown category {self.category!r}: one of {', '.join(store.CATEGORIES)}"
            )
        if self.min_dues_paise is not None and self.min_dues_paise < 0:
            raise InvalidFilter("minimum dues cannot be negative")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Filters:
        data: dict[str, Any] = json.loads(text or "{}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("areas", "accounts"):
            known[name] = tuple(known.get(name) or ())
        return cls(**known)

    def describe(self) -> str:
        """The filters as a person reads them."""
        parts = [
            f"discom={self.discom}" if self.discom else "",
            f"area={'|'.join(self.areas)}" if self.areas else "",
            f"meter_type={self.meter_type}" if self.meter_type else "",
            f"category={self.category}" if self.category else "",
            f"min_dues=₹{self.min_dues_paise / 100:,.2f}"
            if self.min_dues_paise is not None
            else "",
            f"accounts={len(self.accounts)}" if self.accounts else "",
        ]
        return ", ".join(p for p in parts if p) or "everyone"


@dataclass
class Candidate:
    """A consumer the filters selected, with the channel and language of their message."""

    new_account_no: str
    old_account_no: str | None
    discom: str
    name: str
    mobile: str | None
    meter_type: str
    language: str
    channel: str | None
    amount_paise: int | None = None
    #: None when the consumer gets a message; else why not.
    excluded: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def channel_for(whatsapp_opt_in: bool) -> str:
    """The channel of a consumer's pushes: WhatsApp when opted in, SMS otherwise."""
    return "whatsapp" if whatsapp_opt_in else "sms"


def check_kind(kind: str) -> str:
    """``kind`` when it is a campaign kind, else :class:`UnknownKind`."""
    if kind not in KINDS:
        raise UnknownKind(f"unknown campaign kind {kind!r}: one of {', '.join(KINDS)}")
    return kind


def candidates(session: Session, kind: str, filters: Filters) -> Iterator[Candidate]:
    """Every consumer the filters select, each with a channel or the reason it is excluded."""
    check_kind(kind)
    filters.check()
    query = select(
        store.Consumer.new_account_no,
        store.Consumer.old_account_no,
        store.Consumer.discom,
        store.Consumer.name,
        store.Consumer.mobile,
        store.Consumer.meter_type,
        store.Consumer.language,
        store.Consumer.whatsapp_opt_in,
    )
    if filters.discom:
        query = query.where(store.Consumer.discom == filters.discom)
    if filters.areas:
        query = query.where(store.Consumer.area.in_(filters.areas))
    if filters.meter_type:
        query = query.where(store.Consumer.meter_type == filters.meter_type)
    if filters.category:
        query = query.where(store.Consumer.category == filters.category)
    if filters.accounts:
        query = query.where(store.Consumer.new_account_no.in_(filters.accounts))
    dues: dict[str, int] = {}
    if kind == NEW_ACCOUNT_NUMBER:
        query = query.where(
            store.Consumer.old_account_no.is_not(None), store.Consumer.old_account_no != ""
        )
    elif kind == DISCONNECTION_WARNING:
        dues = outstanding_dues(session, filters)
        least = filters.min_dues_paise if filters.min_dues_paise is not None else 1
        wanted = {account for account, paise in dues.items() if paise >= max(least, 1)}
        if not wanted:
            return
        dues = {a: dues[a] for a in wanted}
    opted_out = {c: store.opted_out_numbers(session, c) for c in ("sms", "whatsapp")}
    rows = session.execute(
        query.order_by(store.Consumer.discom, store.Consumer.new_account_no).execution_options(
            yield_per=FETCH_SIZE
        )
    )
    for row in rows:
        amount = None
        if kind == DISCONNECTION_WARNING:
            amount = dues.get(row.new_account_no)
            if amount is None:
                continue
        channel: str | None = channel_for(bool(row.whatsapp_opt_in))
        excluded = None
        if not row.mobile:
            excluded, channel = NO_MOBILE, None
        elif row.mobile in opted_out[channel or "sms"]:
            excluded = OPTED_OUT
        elif amount is not None and amount > paylinks.MAX_PAISE:
            # One UPI payment cannot carry it: the warning's pay link could not be made.
            excluded = DUES_ABOVE_UPI_LIMIT
        yield Candidate(
            new_account_no=row.new_account_no,
            old_account_no=row.old_account_no,
            discom=row.discom,
            name=row.name,
            mobile=row.mobile or None,
            meter_type=row.meter_type,
            language=row.language if row.language in ("hi", "en") else "hi",
            channel=channel,
            amount_paise=amount,
            excluded=excluded,
        )


def outstanding_dues(session: Session, filters: Filters) -> dict[str, int]:
    """Paise still owed per account on its latest bill: its dues less payments since its import."""
    latest = (
        select(
            store.Bill.new_account_no.label("account"),
            func.max(store.Bill.bill_month).label("month"),
        )
        .group_by(store.Bill.new_account_no)
        .subquery()
    )
    query = select(
        store.Bill.new_account_no, store.Bill.amount_due_paise, store.Bill.imported_at
    ).join(
        latest,
        and_(
            store.Bill.new_account_no == latest.c.account,
            store.Bill.bill_month == latest.c.month,
        ),
    )
    if filters.accounts:
        query = query.where(store.Bill.new_account_no.in_(filters.accounts))
    bills = {
        account: (int(amount), imported)
        for account, amount, imported in session.execute(
            query.execution_options(yield_per=FETCH_SIZE)
        )
    }
    if not bills:
        return {}
    earliest = min(imported for _, imported in bills.values())
    paid: dict[str, int] = {}
    for account, amount, paid_at in session.execute(
        select(
            store.Payment.new_account_no, store.Payment.amount_paise, store.Payment.paid_at
        ).where(store.Payment.status == "paid", store.Payment.paid_at >= earliest)
    ):
        bill = bills.get(account)
        if bill is not None and paid_at >= bill[1]:
            paid[account] = paid.get(account, 0) + int(amount)
    return {account: amount - paid.get(account, 0) for account, (amount, _) in bills.items()}


def outstanding_now(
    session: Session, new_account_no: str, amount_at_selection: int, selected_at: dt.datetime
) -> int:
    """What a recipient still owes: the dues frozen at selection less payments since then."""
    return amount_at_selection - store.paid_since(session, new_account_no, selected_at)


__all__ = [
    "Candidate",
    "Filters",
    "InvalidFilter",
    "DUES_ABOVE_UPI_LIMIT",
    "NO_MOBILE",
    "OPTED_OUT",
    "UnknownKind",
    "candidates",
    "channel_for",
    "check_kind",
    "outstanding_dues",
    "outstanding_now",
]
