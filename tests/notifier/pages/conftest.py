"""Campaign pages' fixtures: the app with the environment its tasks read, operators signed in,
a worker step, a campaign made through notifier.campaigns, and Twilio's statuses on its messages."""

from __future__ import annotations

import datetime as dt

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from bot import connections, create_app, store
from bot.queues import CAMPAIGNS
from notifier import campaigns, jobs, states
from notifier.selection import Filters
from tests.notifier.conftest import add_consumers
from tests.operators import sign_in

VALID_UNTIL = "2027-05-31"


@pytest.fixture()
def app(settings, engine, redis_conn, monkeypatch):
    """The app, and the environment that tasks run by an in-process worker read."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("BIJLI_VAR_DIR", str(settings.var_dir))
    monkeypatch.setattr(connections, "_settings", None)
    application = create_app(settings)
    application.testing = True
    return application


def run_one_task(redis_conn) -> None:
    """What a worker does with the next job on the campaigns queue (one job: the page's task;
    the send batches a start queues stay queued, for the test to see)."""
    queue = Queue(CAMPAIGNS, connection=redis_conn)
    SimpleWorker([queue], connection=redis_conn).work(burst=True, max_jobs=1)


def make_campaign(engine, count: int = 4, start: bool = True) -> int:
    add_consumers(engine, count)
    cid = campaigns.create(
        engine,
        "new-account-number",
        Filters(),
        cfg=connections.settings(),
        valid_until=dt.date.fromisoformat(VALID_UNTIL),
    )
    assert isinstance(cid, int)
    if start:
        campaigns.start(engine, connections.redis(), cid)
    return cid


def settle(engine, campaign_id: int, outcomes: list[tuple[str, int | None]]) -> None:
    """Recipients sent, their messages' statuses as Twilio's callbacks leave them."""
    with store.session_scope(engine) as session:
        recipients = session.execute(
            select(store.CampaignRecipient)
            .where(store.CampaignRecipient.campaign_id == campaign_id)
            .order_by(store.CampaignRecipient.id)
        ).scalars()
        for recipient, (status, code) in zip(recipients, outcomes, strict=False):
            recipient.state = states.SENT
            session.add(
                store.OutboundMessage(
                    idempotency_key=jobs.idempotency_key(campaign_id, recipient.new_account_no),
                    channel=recipient.channel,
                    to_number=recipient.mobile,
                    body="…",
                    campaign_id=campaign_id,
                    twilio_sid=f"SM{recipient.id:032d}",
                    status=status,
                    error_code=code,
                )
            )


def signed_in(app, make_operator, role: str):
    """A test client signed in as an operator of ``role`` (username = role)."""
    make_operator(role, role, role.title())
    client = app.test_client()
    assert sign_in(client, role).status_code == 302
    return client


@pytest.fixture()
def officer(app, make_operator):
    return signed_in(app, make_operator, "officer")


@pytest.fixture()
def agent(app, make_operator):
    return signed_in(app, make_operator, "agent")
