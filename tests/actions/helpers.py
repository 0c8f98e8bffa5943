"""Building trackers and store rows for action tests."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.engine import Engine

from bot import connections, signing, store
from tests.domain import project_domain

#: A registered consumer's mobile and a stranger's.
MOBILE = "+919876543210"
STRANGER = "+919811111111"
STAFF_MOBILE = "+919900000001"
#: The id Rasa gives the latest message (the gateway's nonce); the channel's vouch names it.
MESSAGE_ID = "5f1e0c2a9b8d4e6f8a7b6c5d4e3f2a1b"


def tracker(
    text: str = "",
    *,
    intent: str | None = None,
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    sender_id: str = "default",
    metadata: dict[str, Any] | None = None,
    message_id: str = MESSAGE_ID,
    active_loop: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    """A tracker whose latest message is ``text``, as the action server receives it."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.98} if intent else {},
        "entities": [
            {"entity": name, "value": value, "start": 0, "end": len(value)}
            for name, value in (entities or {}).items()
        ],
        "message_id": message_id,
        "metadata": metadata or {},
    }
    return Tracker(
        sender_id,
        {"channel": "whatsapp", **(slots or {})},
        latest,
        events or [],
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def vouched(
    mobile: str, role: str = "consumer", channel: str = "whatsapp", message_id: str = MESSAGE_ID
) -> dict[str, Any]:
    """Tracker arguments for a message Rasa's gateway channel passed on, vouching for its sender."""
    sender_id = f"{channel}:{mobile}"
    sender = signing.VouchedSender(channel, mobile, role)
    secret = connections.settings().gateway_signing_secret
    return {
        "sender_id": sender_id,
        "message_id": message_id,
        "metadata": {
            signing.VOUCH_KEY: signing.vouch(secret, sender_id, message_id, sender),
            "profile_name": "Ramesh",
        },
    }


def whatsapp(mobile: str, role: str = "consumer") -> dict[str, Any]:
    """Tracker arguments for a message the gateway relayed from WhatsApp."""
    return vouched(mobile, role)


@lru_cache(maxsize=1)
def domain() -> dict[str, Any]:
    """The project's domain as Rasa sends it to the action server."""
    # A copy of its own, made once: Domain.as_dict hands out the shared Domain's own data
    # (tests/domain.py), which an action test that changed its dict would change for all.
    return copy.deepcopy(project_domain().as_dict())


def run(action: Action, trk: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run an action with the domain Rasa sends it (none, unless the domain says it needs
    one: endpoints.yml's enable_selective_domain); return (events, messages)."""
    dispatcher = CollectingDispatcher()
    needs_domain = project_domain().does_custom_action_explicitly_need_domain(action.name())
    result = action.run(dispatcher, trk, domain() if needs_domain else {})
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return list(result), dispatcher.messages


def responses(messages: list[dict[str, Any]]) -> list[str]:
    return [m["response"] for m in messages]


def slots_set(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The last value each slot is set to by ``events``."""
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def add_consumer(
    engine: Engine,
    new: str,
    *,
    old: str | None = None,
    name: str = "Ramesh Kumar",
    mobile: str | None = MOBILE,
    meter_type: str = "postpaid",
    area: str = "Kidwai Nagar",
    discom: str = "KESCO",
    category: str = "domestic",
) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Consumer(
                discom=discom,
                new_account_no=new,
                old_account_no=old,
                name=name,
                mobile=mobile,
                category=category,
                meter_type=meter_type,
                area=area,
                language="hi",
            )
        )


def add_bill(engine: Engine, new: str, month: str, due: int, arrears: int = 0) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Bill(
                new_account_no=new,
                bill_month=month,
                amount_due_paise=due,
                due_date=dt.date(2026, 11, 20),
                arrears_paise=arrears,
                imported_at=dt.datetime(2026, 11, 5, 3, 0),
            )
        )


def add_staff(engine: Engine, mobile: str = STAFF_MOBILE, active: bool = True) -> None:
    with store.session_scope(engine) as session:
        session.add(
            store.Staff(
                mobile=mobile,
                name="Suresh Yadav",
                role="meter_reader",
                area="Kidwai Nagar",
                active=active,
            )
        )
