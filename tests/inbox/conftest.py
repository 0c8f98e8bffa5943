"""Inbox fixtures: the gateway stack (fake Twilio, stub Rasa, a worker), operators signed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rq import Queue, SimpleWorker

from bot import handoffs, queues
from bot import settings as settings_mod
from bot.inbox import jobs
from bot.store import Consumer, session_scope
from tests.operators import sign_in

MOBILE = "+919876543210"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries without waiting, so a burst worker runs them at once."""
    monkeypatch.setattr(jobs, "RETRY_INTERVALS", [0, 0, 0])


@pytest.fixture()
def agent(gw_app: Any, make_operator: Callable[..., None]) -> Any:
    """A test client signed in as Priya, an agent."""
    make_operator("priya", "agent", "Priya")
    client = gw_app.test_client()
    assert sign_in(client, "priya").status_code == 302
    return client


@pytest.fixture()
def officer(gw_app: Any, make_operator: Callable[..., None]) -> Any:
    """A test client signed in as Verma, an officer."""
    make_operator("verma", "officer", "Verma")
    client = gw_app.test_client()
    assert sign_in(client, "verma").status_code == 302
    return client


@pytest.fixture()
def consumer(engine: Any) -> str:
    """A registered consumer's mobile."""
    with session_scope(engine) as session:
        session.add(
            Consumer(
                discom="KESCO",
                new_account_no="1234567890",
                old_account_no="456789",
                name="Ramesh Kumar",
                mobile=MOBILE,
                category="domestic",
                meter_type="postpaid",
                area="Kidwai Nagar",
                language="hi",
            )
        )
    return MOBILE


@pytest.fixture()
def open_handoff(engine: Any, gw_settings: settings_mod.Settings) -> Callable[..., int]:
    """Open a handoff as the action does; return its id."""

    def open_(mobile: str = MOBILE, channel: str = "whatsapp", language: str = "hinglish") -> int:
        with session_scope(engine) as session:
            row, _ = handoffs.open_handoff(
                session,
                gw_settings,
                channel=channel,
                mobile=mobile,
                discom="KESCO",
                language=language,
                reason="mera account 1234567890 hai, kisi insaan se baat karao",
                new_account_no="1234567890",
            )
            return int(row.id)

    return open_


@pytest.fixture()
def work_scheduled(redis_conn: Any) -> Callable[[], None]:
    """A burst worker that first moves due scheduled jobs (RQ's scheduler) onto the queues."""

    def run() -> None:
        qs = [Queue(name, connection=redis_conn) for name in queues.ALL]
        SimpleWorker(qs, connection=redis_conn).work(burst=True, with_scheduler=True)

    return run
