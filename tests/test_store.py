from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from bot import store
from bot.store import Consumer, session_scope


def _consumer(**overrides: object) -> Consumer:
    fields: dict[str, object] = dict(
        discom="KESCO",
        new_account_no="2109876543",
        old_account_no="456789",
        name="Ram Kumar",
        mobile="+919876543210",
        category="domestic",
        meter_type="postpaid",
        area="Kidwai Nagar",
        language="hi",
        whatsapp_opt_in=True,
    )
    fields.update(overrides)
    return Consumer(**fields)


def test_lookup_by_old_and_new_number(engine):
    with session_scope(engine) as session:
        session.add(_consumer())
    with Session(engine) as session:
        assert store.consumer_by_account(session, "456789").new_account_no == "2109876543"
        assert store.consumer_by_account(session, "2109876543").old_account_no == "456789"
        assert store.consumer_by_account(session, "999999") is None


def test_old_number_shared_by_two_discoms_is_ambiguous_without_discom(engine):
    with session_scope(engine) as session:
        session.add(_consumer())
        session.add(_consumer(discom="PVVNL", new_account_no="3109876543"))
    with Session(engine) as session:
        assert store.consumer_by_account(session, "456789") is None
        found = store.consumer_by_account(session, "456789", discom="PVVNL")
        assert found is not None and found.new_account_no == "3109876543"


def test_ticket_references_are_unique_and_dated(engine):
    with session_scope(engine) as session:
        first = store.open_ticket(
            session, "power_cut", new_account_no=None, mobile=None, area="Juhi"
        )
        second = store.open_ticket(
            session, "power_cut", new_account_no=None, mobile=None, area="Juhi"
        )
    today = store.to_ist(store.utcnow())
    assert first.reference != second.reference
    assert first.reference.startswith(f"BS{today:%y%m%d}")


def test_opt_out_is_per_number_and_channel(engine):
    with session_scope(engine) as session:
        assert store.set_opt_out(session, "+919876543210", "sms", True)
        assert not store.set_opt_out(session, "+919876543210", "sms", True)
    with session_scope(engine) as session:
        assert store.is_opted_out(session, "+919876543210", "sms")
        assert not store.is_opted_out(session, "+919876543210", "whatsapp")
        assert store.set_opt_out(session, "+919876543210", "sms", False)
    with Session(engine) as session:
        assert not store.is_opted_out(session, "+919876543210", "sms")


def test_to_ist_adds_five_and_a_half_hours():
    assert store.to_ist(dt.datetime(2026, 1, 1, 0, 0)).hour == 5
    assert store.to_ist(dt.datetime(2026, 1, 1, 0, 0)).minute == 30
