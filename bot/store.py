"""The data store: SQLAlchemy models, the engine factory and the queries everything else uses.

Money is kept in integer paise so that SQLite and PostgreSQL agree to the last paisa. Times are
naive UTC; :func:`to_ist` converts for people. Nothing here connects at import time: callers
take the process's engine from :mod:`bot.connections` (or make one with :func:`make_engine`)
and pass sessions around.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeMeta, Session, registry, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.clock import to_ist, utcnow

DISCOMS = ("KESCO", "PVVNL", "MVVNL", "DVVNL", "PUVVNL")
CATEGORIES = ("domestic", "commercial", "public_institution", "industrial")
METER_TYPES = ("postpaid", "smart_postpaid", "smart_prepaid")
LANGUAGES = ("hi", "en")
STAFF_ROLES = ("meter_reader", "officer")
CHANNELS = ("sms", "whatsapp")
#: Who signs in to /admin: agents answer the inbox (with consumers' details masked), officers
#: see details in full and may take over a conversation, admins also manage operators.
OPERATOR_ROLES = ("agent", "officer", "admin")
#: A handoff waits for an agent, is held by one (the bot stays quiet), then is closed.
HANDOFF_STATES = ("waiting", "held", "closed")


mapper_registry = registry()


class Base(metaclass=DeclarativeMeta):
    """Declarative base spelled out, so that mypy sees a real class (SQLAlchemy 1.4 docs)."""

    __abstract__ = True
    registry = mapper_registry
    metadata = mapper_registry.metadata
    __init__ = mapper_registry.constructor


class Consumer(Base):
    __tablename__ = "consumers"

    id = Column(Integer, primary_key=True)
    discom = Column(String(8), nullable=False)
    new_account_no = Column(String(10), nullable=False, unique=True)
    old_account_no = Column(String(8))
    name = Column(String(200), nullable=False)
    mobile = Column(String(16), index=True)  # E.164
    category = Column(String(24), nullable=False)
    meter_type = Column(String(16), nullable=False)
    area = Column(String(120), nullable=False, default="")
    language = Column(String(2), nullable=False, default="hi")
    whatsapp_opt_in = Column(Boolean, nullable=False, default=False)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("discom", "old_account_no", name="uq_consumer_old_no"),)


class Bill(Base):
    __tablename__ = "bills"

    id = Column(Integer, primary_key=True)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    bill_month = Column(String(7), nullable=False)  # YYYY-MM
    amount_due_paise = Column(BigInteger, nullable=False)
    due_date = Column(Date, nullable=False)
    arrears_paise = Column(BigInteger, nullable=False, default=0)
    imported_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("new_account_no", "bill_month", name="uq_bill_month"),)


class PrepaidBalance(Base):
    __tablename__ = "prepaid_balances"

    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), primary_key=True
    )
    balance_paise = Column(BigInteger, nullable=False)
    as_of = Column(DateTime, nullable=False)  # naive UTC


class Payment(Base):
    __tablename__ = "payments"

    id = Column(Integer, primary_key=True)
    reference = Column(String(40), nullable=False, unique=True)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    amount_paise = Column(BigInteger, nullable=False)
    channel = Column(String(16), nullable=False)  # qr, counter, online
    status = Column(String(16), nullable=False, default="pending")  # pending, paid, failed
    receipt_no = Column(String(40), unique=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    paid_at = Column(DateTime)
    # Pay-by-QR (bot/payments): the intent paid, the bank's reference, the receipt's secret code.
    intent_id = Column(
        String(24), ForeignKey("payment_intents.id", name="fk_payments_intent_id"), index=True
    )
    discom = Column(String(8))
    utr = Column(String(22))
    source = Column(String(16))  # razorpay, bank_statement
    receipt_code = Column(String(16))
    #: When the payment was posted to billing; NULL while billing is closed (bijli billing).
    applied_at = Column(DateTime)
    receipt_sent_at = Column(DateTime)

    __table_args__ = (
        Index("ix_payments_account", "new_account_no", "created_at"),
        UniqueConstraint("utr", name="uq_payments_utr"),
    )


class PaymentIntent(Base):
    """What a pay link asks for: an account, an amount, a payee; its id is the UPI ``tr``."""

    __tablename__ = "payment_intents"

    id = Column(String(24), primary_key=True)  # [A-Za-z0-9] only: it is the UPI tr
    discom = Column(String(8), nullable=False)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    bill_month = Column(String(7))  # YYYY-MM; NULL for an advance payment
    amount_paise = Column(BigInteger, nullable=False)
    kind = Column(String(16), nullable=False)  # dues, advance
    mobile = Column(String(16))  # who asked (E.164): the receipt goes back to them
    channel = Column(String(16))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)

    __table_args__ = (Index("ix_payment_intents_account", "new_account_no", "created_at"),)


class PaymentNotice(Base):
    """Every payment a gateway or a bank statement reports, credited or not (reconciliation)."""

    __tablename__ = "payment_notices"

    id = Column(Integer, primary_key=True)
    source = Column(String(16), nullable=False)  # razorpay, bank_statement
    external_id = Column(String(64), nullable=False)  # the gateway's payment id, or utr:<UTR>
    utr = Column(String(22), index=True)
    intent_ref = Column(String(64))  # as reported: untrusted until matched
    amount_paise = Column(BigInteger, nullable=False)
    #: credited, amount_mismatch, unknown_intent, duplicate_utr
    outcome = Column(String(24), nullable=False)
    payment_id = Column(Integer, ForeignKey("payments.id"))
    paid_at = Column(DateTime)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    detail = Column(Text, nullable=False, default="{}")  # JSON

    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_notice_source_id"),)


class ReceiptCounter(Base):
    """The last receipt number given per discom and financial year (April–March)."""

    __tablename__ = "receipt_counters"

    discom = Column(String(8), primary_key=True)
    financial_year = Column(String(7), primary_key=True)  # 2026-27
    last_no = Column(Integer, nullable=False, default=0)


class BillingClosure(Base):
    """Month-end closing or an outage of the billing system: payments wait to be applied."""

    __tablename__ = "billing_closures"

    id = Column(Integer, primary_key=True)
    discom = Column(String(8), nullable=False, index=True)
    reason = Column(String(120), nullable=False, default="")
    started_at = Column(DateTime, nullable=False, default=utcnow)
    ended_at = Column(DateTime)


class Ticket(Base):
    __tablename__ = "tickets"

    id = Column(Integer, primary_key=True)
    reference = Column(String(24), nullable=False, unique=True)
    kind = Column(String(32), nullable=False)
    new_account_no = Column(String(10), index=True)
    mobile = Column(String(16))
    area = Column(String(120))
    description = Column(Text, nullable=False, default="")
    status = Column(String(16), nullable=False, default="open")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    #: A danger was reported (sparks, a fallen wire, current in a pole or wall, fire): first
    #: in the team's queue.
    priority = Column(Boolean, nullable=False, default=False, server_default=text("false"))
    #: The first danger reported: spark, wire, current or fire (bot/nlu/hazard.py).
    hazard = Column(String(16))

    __table_args__ = (Index("ix_tickets_kind_area_created", "kind", "area", "created_at"),)


class TicketReport(Base):
    """One person's report on a ticket: a cut in an area is one ticket, reported by many."""

    __tablename__ = "ticket_reports"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False)
    #: The reporter's E.164 mobile; None when no sender was vouched for (rasa test, REST).
    mobile = Column(String(16))
    description = Column(Text, nullable=False, default="")
    hazard = Column(String(16))
    created_at = Column(DateTime, nullable=False, default=utcnow)

    # One count per person: a second message from the same mobile is not a second reporter.
    __table_args__ = (UniqueConstraint("ticket_id", "mobile", name="uq_ticket_reports_mobile"),)


class Staff(Base):
    __tablename__ = "staff"

    id = Column(Integer, primary_key=True)
    mobile = Column(String(16), nullable=False, unique=True)
    name = Column(String(200), nullable=False)
    role = Column(String(16), nullable=False)
    area = Column(String(120), nullable=False, default="")
    active = Column(Boolean, nullable=False, default=True)


class Campaign(Base):
    __tablename__ = "campaigns"

    id = Column(Integer, primary_key=True)
    name = Column(String(200), nullable=False)
    kind = Column(String(32), nullable=False)  # new-account-number, disconnection-warning
    # draft, running, paused, held (moratorium), cancelled, done (notifier/campaigns.py)
    status = Column(String(16), nullable=False, default="draft")
    filters = Column(Text, nullable=False, default="{}")  # JSON
    created_at = Column(DateTime, nullable=False, default=utcnow)
    started_at = Column(DateTime)
    finished_at = Column(DateTime)
    # The notifier's campaigns (0006_campaigns): what the messages say beyond the filters
    # (JSON), when the recipients were frozen, and why the campaign is held.
    options = Column(Text, nullable=False, default="{}")
    selected_at = Column(DateTime)
    held_reason = Column(Text)
    #: Bumped by every start and resume: a batch job of an older generation stops.
    generation = Column(Integer, nullable=False, default=0)


class OutboundMessage(Base):
    __tablename__ = "outbound_messages"

    id = Column(Integer, primary_key=True)
    idempotency_key = Column(String(120), nullable=False, unique=True)
    channel = Column(String(16), nullable=False)
    to_number = Column(String(16), nullable=False)  # E.164, without the whatsapp: prefix
    body = Column(Text, nullable=False, default="")
    media_url = Column(Text)
    campaign_id = Column(Integer, ForeignKey("campaigns.id"), index=True)
    twilio_sid = Column(String(40), unique=True)
    status = Column(String(16), nullable=False, default="pending")
    error_code = Column(Integer)
    attempts = Column(Integer, nullable=False, default=0)
    #: The quick-reply template (:class:`QuickReplyTemplate`) a reply with buttons went as.
    content_sid = Column(String(34))
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)


class QuickReplyTemplate(Base):
    """A Twilio Content template of type ``twilio/quick-reply`` for one set of buttons.

    Created once per distinct button set and language (``key``) and reused by every reply with
    those buttons; its body is the variable ``{{1}}``. A row without ``content_sid`` is a
    creation under way since ``claimed_at``, or one that failed at ``failed_at``
    (bot/gateway/quick_replies.py).
    """

    __tablename__ = "quick_reply_templates"

    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False, unique=True)  # sha256 of language and actions
    language = Column(String(8), nullable=False)
    actions = Column(Text, nullable=False)  # JSON: [{"title": …, "id": …}, …] in order
    content_sid = Column(String(34), unique=True)
    claimed_at = Column(DateTime, nullable=False, default=utcnow)
    failed_at = Column(DateTime)
    error_code = Column(Integer)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class CampaignRecipient(Base):
    """One consumer (account) of a campaign, frozen at selection: exactly one message each."""

    __tablename__ = "campaign_recipients"

    id = Column(Integer, primary_key=True)
    campaign_id = Column(Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False)
    new_account_no = Column(String(10), nullable=False)
    discom = Column(String(8), nullable=False)
    mobile = Column(String(16))  # E.164
    channel = Column(String(16))  # sms, whatsapp; NULL when excluded before a channel applied
    language = Column(String(2), nullable=False, default="hi")
    #: Dues at selection (disconnection warnings), in paise.
    amount_paise = Column(BigInteger)
    #: pending, queued, sent, skipped, failed, excluded (notifier/campaigns.py)
    state = Column(String(16), nullable=False, default="pending")
    reason = Column(String(40))  # why excluded, skipped or failed
    error_code = Column(Integer)
    #: The text rendered once for this recipient, so a retry sends (and finds) the same one.
    body = Column(Text)
    variables = Column(Text)  # JSON: the template variables it was rendered with (name: value)
    intent_id = Column(String(24))  # the pay link's intent (disconnection warnings)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign_id", "new_account_no", name="uq_campaign_recipient_account"),
        Index("ix_campaign_recipients_state", "campaign_id", "state"),
    )


class InboundMessage(Base):
    __tablename__ = "inbound_messages"

    id = Column(Integer, primary_key=True)
    message_sid = Column(String(40), nullable=False, unique=True)
    channel = Column(String(16), nullable=False)
    from_number = Column(String(32), nullable=False)
    body = Column(Text, nullable=False, default="")
    num_media = Column(Integer, nullable=False, default=0)
    received_at = Column(DateTime, nullable=False, default=utcnow)
    processed_at = Column(DateTime)
    #: A WhatsApp location pin (Twilio's ``Latitude``/``Longitude``), when the message is one.
    latitude = Column(Float)
    longitude = Column(Float)
    #: The id of the WhatsApp button the person tapped (Twilio's ``ButtonPayload``); ``body``
    #: holds its title. The bot reads the payload.
    button_payload = Column(String(256))

    __table_args__ = (
        # Only the unanswered few: the webhook looks up a sender's, the sweep all of them.
        Index(
            "ix_inbound_messages_unanswered",
            "channel",
            "from_number",
            sqlite_where=processed_at.is_(None),
            postgresql_where=processed_at.is_(None),
        ),
        # A sender's latest message: WhatsApp's 24-hour customer-service window, per push.
        Index("ix_inbound_messages_sender_received", "channel", "from_number", "received_at"),
    )


class OptOut(Base):
    __tablename__ = "opt_outs"

    mobile = Column(String(16), primary_key=True)
    channel = Column(String(16), primary_key=True)
    opted_out_at = Column(DateTime, nullable=False, default=utcnow)


class DisconnectionNotice(Base):
    """An account on a disconnection list: warned, and cut unless the amount is paid."""

    __tablename__ = "disconnection_notices"

    id = Column(Integer, primary_key=True)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    amount_to_avoid_paise = Column(BigInteger, nullable=False)
    listed_on = Column(Date, nullable=False)
    campaign_id = Column(Integer, ForeignKey("campaigns.id"))
    status = Column(String(16), nullable=False, default="listed")  # listed, cleared, cut

    __table_args__ = (Index("ix_disconnection_account", "new_account_no", "status"),)


class Moratorium(Base):
    """A period in which no connection may be cut for dues (e.g. payment channels are down)."""

    __tablename__ = "moratoriums"

    id = Column(Integer, primary_key=True)
    discom = Column(String(8), nullable=False)
    starts_at = Column(DateTime, nullable=False)
    ends_at = Column(DateTime, nullable=False)
    reason = Column(Text, nullable=False, default="")


class Holiday(Base):
    __tablename__ = "holidays"

    day = Column(Date, primary_key=True)
    name = Column(String(120), nullable=False)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(40), nullable=False)  # masked mobile, "cli", "worker", ...
    action = Column(String(40), nullable=False)
    subject = Column(String(40))
    detail = Column(Text, nullable=False, default="{}")


class DeadLetter(Base):
    """A job that failed its last retry, kept for an operator to replay (bijli replay-failed)."""

    __tablename__ = "dead_letters"

    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False)  # "inbound", "send"
    job_id = Column(String(120), nullable=False)
    func = Column(String(200), nullable=False)  # dotted name of the job function
    args = Column(Text, nullable=False, default="[]")  # JSON: ids and E.164 numbers only
    inbound_message_id = Column(Integer, ForeignKey("inbound_messages.id"), index=True)
    error = Column(Text, nullable=False, default="")
    attempts = Column(Integer, nullable=False, default=1)
    failed_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    replayed_at = Column(DateTime)
    replay_job_id = Column(String(120))


class Operator(Base):
    """A person who signs in to the operator pages (``bijli operator add``)."""

    __tablename__ = "operators"

    id = Column(Integer, primary_key=True)
    username = Column(String(40), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    role = Column(String(16), nullable=False)
    password_hash = Column(String(200), nullable=False)  # argon2id, bot/admin/accounts.py
    active = Column(Boolean, nullable=False, default=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime)
    # Bumped when the password changes or the account is disabled: older sessions end.
    session_epoch = Column(Integer, nullable=False, default=0)
    last_login_at = Column(DateTime)
    created_at = Column(DateTime, nullable=False, default=utcnow)


class Handoff(Base):
    """A consumer's request for a person: in the agent inbox until an agent closes it."""

    __tablename__ = "handoffs"

    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False)
    mobile = Column(String(16), nullable=False)  # E.164
    discom = Column(String(8), nullable=False)
    language = Column(String(8), nullable=False, default="hi")  # hi, hinglish, en
    new_account_no = Column(String(10))
    reason = Column(Text, nullable=False, default="")  # the consumer's words when asking
    state = Column(String(16), nullable=False, default="waiting")
    opened_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    promised_by = Column(DateTime, nullable=False)  # the reply time the consumer was told
    operator_id = Column(Integer, ForeignKey("operators.id"))
    taken_at = Column(DateTime)
    last_consumer_at = Column(DateTime)
    last_agent_at = Column(DateTime)
    closed_at = Column(DateTime)
    close_reason = Column(String(16))  # agent, timeout, unanswered

    __table_args__ = (
        # One open handoff per sender and channel; a second request finds the first.
        Index(
            "uq_handoffs_open_sender",
            "channel",
            "mobile",
            unique=True,
            sqlite_where=text("state != 'closed'"),
            postgresql_where=text("state != 'closed'"),
        ),
        Index("ix_handoffs_state", "state", "promised_by"),
    )


class HandoffReply(Base):
    """What an agent wrote to a consumer; an RQ job sends it (``bot.inbox.jobs``)."""

    __tablename__ = "handoff_replies"

    id = Column(Integer, primary_key=True)
    handoff_id = Column(Integer, ForeignKey("handoffs.id", ondelete="CASCADE"), nullable=False)
    operator_id = Column(Integer, ForeignKey("operators.id"), nullable=False)
    body = Column(Text, nullable=False)
    # The reply form's one-time token: a form posted twice makes one reply.
    form_token = Column(String(40), nullable=False, unique=True)
    status = Column(String(16), nullable=False, default="queued")  # queued, sent, failed
    error_code = Column(Integer)
    outbound_message_id = Column(Integer, ForeignKey("outbound_messages.id"))
    created_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_handoff_replies_handoff", "handoff_id", "id"),)


# --------------------------------------------------------------------------- engine & sessions


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite is tuned for web and workers side by side.

    ``hide_parameters``: an error's text goes to dead letters, the audit log and the logs, and
    must not carry the bound values (mobiles, names, message bodies) with it.
    """
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        # SQLAlchemy 1.4 gives file SQLite a NullPool: a connect, three pragmas and a WAL
        # checkpoint on close for every request. A pool keeps the webhook's p99 in milliseconds.
        engine = create_engine(
            url,
            future=True,
            hide_parameters=True,
            connect_args={"timeout": 30, "check_same_thread": False},
            **({} if in_memory else {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 10}),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)


#: One session factory for every engine, bound per session. A new ``sessionmaker`` per session
#: made a new Session subclass each time, and SQLAlchemy set up its event dispatch for every
#: one: about a third of a millisecond of CPU per session, a dozen sessions per message between
#: web and worker. (A factory cached per engine would hold the engine, and its pool's
#: connections, for as long as the cache lives.)
_Session = sessionmaker(future=True, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _Session(bind=engine)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# --------------------------------------------------------------------------- queries


def consumers_by_mobile(session: Session, mobile: str) -> list[Consumer]:
    """Accounts registered to an E.164 mobile number, oldest account number first."""
    rows = session.execute(
        select(Consumer).where(Consumer.mobile == mobile).order_by(Consumer.new_account_no)
    )
    return list(rows.scalars())


def consumer_by_account(
    session: Session, number: str, discom: str | None = None
) -> Consumer | None:
    """Find a consumer by a 10-digit new number or a 6–8 digit old number."""
    if len(number) == 10:
        return session.execute(
            select(Consumer).where(Consumer.new_account_no == number)
        ).scalar_one_or_none()
    query = select(Consumer).where(Consumer.old_account_no == number)
    if discom:
        query = query.where(Consumer.discom == discom)
    # Old numbers are unique only within a discom; an ambiguous number answers nothing.
    found = list(session.execute(query.limit(2)).scalars())
    return found[0] if len(found) == 1 else None


def latest_bill(session: Session, new_account_no: str) -> Bill | None:
    """The most recent bill of an account."""
    return session.execute(
        select(Bill)
        .where(Bill.new_account_no == new_account_no)
        .order_by(Bill.bill_month.desc())
        .limit(1)
    ).scalar_one_or_none()


def prepaid_balance(session: Session, new_account_no: str) -> PrepaidBalance | None:
    """The last known prepaid balance of an account."""
    return session.get(PrepaidBalance, new_account_no)


def staff_by_mobile(session: Session, mobile: str) -> Staff | None:
    """Active staff member registered with this E.164 mobile, if any."""
    return session.execute(
        select(Staff).where(Staff.mobile == mobile, Staff.active.is_(True))
    ).scalar_one_or_none()


def payments_for_account(session: Session, new_account_no: str, limit: int = 5) -> list[Payment]:
    """Most recent payments of an account, newest first."""
    rows = session.execute(
        select(Payment)
        .where(Payment.new_account_no == new_account_no)
        .order_by(Payment.created_at.desc())
        .limit(limit)
    )
    return list(rows.scalars())


def open_ticket(
    session: Session,
    kind: str,
    *,
    new_account_no: str | None,
    mobile: str | None,
    area: str | None,
    description: str = "",
) -> Ticket:
    """Open a ticket and give it a reference a person can read out on the phone."""
    ticket = Ticket(
        reference=uuid.uuid4().hex[:24],  # placeholder until the id is known
        kind=kind,
        new_account_no=new_account_no,
        mobile=mobile,
        area=area,
        description=description,
    )
    session.add(ticket)
    session.flush()
    # The id makes the reference unique; the date makes it easy to say and to sort.
    ticket.reference = f"BS{to_ist(ticket.created_at):%y%m%d}{ticket.id:05d}"
    session.flush()
    return ticket


def is_opted_out(session: Session, mobile: str, channel: str) -> bool:
    """True when the number has opted out of pushed messages on this channel."""
    return session.get(OptOut, (mobile, channel)) is not None


def set_opt_out(session: Session, mobile: str, channel: str, opted_out: bool) -> bool:
    """Opt a number out (or back in); return True when that changed anything."""
    current = session.get(OptOut, (mobile, channel))
    if opted_out and current is None:
        session.add(OptOut(mobile=mobile, channel=channel))
        return True
    if not opted_out and current is not None:
        session.delete(current)
        return True
    return False


def audit(
    session: Session, actor: str, action: str, subject: str | None = None, **detail: Any
) -> None:
    """Append a line to the audit log."""
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            subject=subject,
            detail=json.dumps(detail, ensure_ascii=False, default=str, sort_keys=True),
        )
    )


def count_rows(session: Session, model: type) -> int:
    """Number of rows in a model's table."""
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def opted_out_numbers(session: Session, channel: str) -> set[str]:
    """E.164 numbers opted out of pushed messages on ``channel`` (for bulk campaign filters)."""
    rows = session.execute(select(OptOut.mobile).where(OptOut.channel == channel))
    return set(rows.scalars())


def pending_dead_letters(session: Session, ids: list[int] | None = None) -> list[DeadLetter]:
    """Dead letters not replayed yet (optionally only ``ids``), oldest first."""
    query = select(DeadLetter).where(DeadLetter.replayed_at.is_(None))
    if ids:
        query = query.where(DeadLetter.id.in_(ids))
    return list(session.execute(query.order_by(DeadLetter.id)).scalars())


def listed_disconnection(session: Session, new_account_no: str) -> DisconnectionNotice | None:
    """The account's newest disconnection notice still in force (status ``listed``), if any."""
    return session.execute(
        select(DisconnectionNotice)
        .where(
            DisconnectionNotice.new_account_no == new_account_no,
            DisconnectionNotice.status == "listed",
        )
        .order_by(DisconnectionNotice.listed_on.desc(), DisconnectionNotice.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def moratoriums_ending_after(
    session: Session, discom: str, moment: dt.datetime
) -> list[Moratorium]:
    """A discom's moratoriums that end after ``moment`` (naive UTC), earliest start first."""
    rows = session.execute(
        select(Moratorium)
        .where(Moratorium.discom == discom, Moratorium.ends_at > moment)
        .order_by(Moratorium.starts_at)
    )
    return list(rows.scalars())


def holidays_between(session: Session, first: dt.date, last: dt.date) -> set[dt.date]:
    """Public holidays from ``first`` to ``last``, both included."""
    rows = session.execute(select(Holiday.day).where(Holiday.day >= first, Holiday.day <= last))
    return set(rows.scalars())


def _open_ticket(
    session: Session, kind: str, since: dt.datetime, *where: Any, newest: bool
) -> Ticket | None:
    """The newest (or oldest) open ticket of this kind opened at or after ``since`` that also
    meets ``where``."""
    return session.execute(
        select(Ticket)
        .where(Ticket.kind == kind, *where, Ticket.status == "open", Ticket.created_at >= since)
        .order_by(Ticket.id.desc() if newest else Ticket.id)
        .limit(1)
    ).scalar_one_or_none()


def open_ticket_since(
    session: Session, kind: str, new_account_no: str, since: dt.datetime
) -> Ticket | None:
    """The newest open ticket of this kind for an account, opened at or after ``since``."""
    return _open_ticket(session, kind, since, Ticket.new_account_no == new_account_no, newest=True)


def open_area_ticket_since(
    session: Session, kind: str, area: str, since: dt.datetime
) -> Ticket | None:
    """The oldest open ticket of this kind in an area, opened at or after ``since``."""
    return _open_ticket(session, kind, since, Ticket.area == area, newest=False)


def open_ticket_without_area_since(
    session: Session, kind: str, mobile: str, since: dt.datetime
) -> Ticket | None:
    """The newest open ticket of this kind a mobile opened without an area since ``since``."""
    return _open_ticket(
        session, kind, since, Ticket.mobile == mobile, Ticket.area.is_(None), newest=True
    )


def add_ticket_report(
    session: Session,
    ticket: Ticket,
    mobile: str | None,
    description: str,
    hazard: str | None = None,
) -> bool:
    """Record a person's report on a ticket; False when that mobile had already reported it."""
    if mobile is not None:
        existing = session.execute(
            select(TicketReport.id).where(
                TicketReport.ticket_id == ticket.id, TicketReport.mobile == mobile
            )
        ).first()
        if existing is not None:
            return False
    try:
        with session.begin_nested():
            session.add(
                TicketReport(
                    ticket_id=ticket.id, mobile=mobile, description=description, hazard=hazard
                )
            )
    except IntegrityError:
        return False  # the same person, reporting twice at once
    return True


def ticket_reporters(session: Session, ticket_id: int) -> int:
    """How many people reported a ticket."""
    query = select(func.count()).select_from(TicketReport)
    return int(session.execute(query.where(TicketReport.ticket_id == ticket_id)).scalar_one())


def consumer_areas(session: Session) -> list[str]:
    """The areas the consumer data names, each once."""
    rows = session.execute(select(Consumer.area).where(Consumer.area != "").distinct())
    return sorted(a for a in rows.scalars() if a)


# --------------------------------------------------------------------------- payments


def paid_since(session: Session, new_account_no: str, since: dt.datetime) -> int:
    """Paise credited to an account at or after ``since`` (payments a bill cannot show yet)."""
    total = session.execute(
        select(func.coalesce(func.sum(Payment.amount_paise), 0)).where(
            Payment.new_account_no == new_account_no,
            Payment.status == "paid",
            Payment.paid_at >= since,
        )
    ).scalar_one()
    return int(total)


def outstanding_paise(session: Session, bill: Bill) -> int:
    """What is still owed on ``bill``: its dues less the payments credited since its import."""
    return int(bill.amount_due_paise) - paid_since(session, bill.new_account_no, bill.imported_at)


def open_billing_closure(session: Session, discom: str) -> BillingClosure | None:
    """The discom's billing closure in force (month-end closing or an outage), if any."""
    return session.execute(
        select(BillingClosure)
        .where(BillingClosure.discom == discom, BillingClosure.ended_at.is_(None))
        .order_by(BillingClosure.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def payment_by_utr(session: Session, utr: str) -> Payment | None:
    """The credited payment with this UPI reference (UTR/RRN), if any."""
    return session.execute(select(Payment).where(Payment.utr == utr)).scalar_one_or_none()


def payment_by_receipt(session: Session, receipt_no: str) -> Payment | None:
    """The payment that holds receipt number ``receipt_no``."""
    return session.execute(
        select(Payment).where(Payment.receipt_no == receipt_no)
    ).scalar_one_or_none()


def notices_by_utr(session: Session, utr: str) -> list[PaymentNotice]:
    """Gateway and bank-statement notices carrying this UTR, newest first."""
    rows = session.execute(
        select(PaymentNotice).where(PaymentNotice.utr == utr).order_by(PaymentNotice.id.desc())
    )
    return list(rows.scalars())


def last_inbound_at(session: Session, channel: str, mobile: str) -> dt.datetime | None:
    """When E.164 ``mobile`` last wrote to us on ``channel`` (UTC), or None if never."""
    return session.execute(
        select(func.max(InboundMessage.received_at)).where(
            InboundMessage.channel == channel, InboundMessage.from_number == mobile
        )
    ).scalar()


# --------------------------------------------------------------------------- staff (issue 13)

#: A mobile change a meter reader reported waits for an officer, who approves or rejects it.
MOBILE_CHANGE_STATES = ("pending", "approved", "rejected")


class StaffVisit(Base):
    """A meter reader's visit to a consumer: told the new number? mobile on record right?"""

    __tablename__ = "staff_visits"

    id = Column(Integer, primary_key=True)
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    area = Column(String(120), nullable=False, default="")  # the consumer's, at the visit
    informed = Column(Boolean, nullable=False)
    mobile_confirmed = Column(Boolean, nullable=False)
    visited_at = Column(DateTime, nullable=False, default=utcnow)

    __table_args__ = (
        Index("ix_staff_visits_staff", "staff_id", "visited_at"),
        Index("ix_staff_visits_account", "new_account_no", "visited_at"),
        Index("ix_staff_visits_area", "area", "visited_at"),
    )


class MobileChange(Base):
    """A consumer's registered mobile as a reader found it wrong, and the officer's decision."""

    __tablename__ = "mobile_changes"

    id = Column(Integer, primary_key=True)
    new_account_no = Column(
        String(10), ForeignKey("consumers.new_account_no", ondelete="CASCADE"), nullable=False
    )
    old_mobile = Column(String(16))  # E.164; NULL when none was on record
    new_mobile = Column(String(16), nullable=False)  # E.164
    visit_id = Column(Integer, ForeignKey("staff_visits.id"))
    requested_by = Column(Integer, ForeignKey("staff.id"), nullable=False)
    status = Column(String(16), nullable=False, default="pending")
    created_at = Column(DateTime, nullable=False, default=utcnow)
    decided_at = Column(DateTime)
    decided_by = Column(String(40))  # "operator:<username>" or "cli"

    __table_args__ = (Index("ix_mobile_changes_status", "status", "created_at"),)
