"""Staff fixtures: an area with consumers, a reader, an officer, visits; operators signed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner

from bot import connections, store, verification
from bot.staff import jobs
from tests.notifier.conftest import campaign_env  # noqa: F401  (the notifier's fixture)
from tests.operators import sign_in

AREA = "Kidwai Nagar"
OLD_MOBILE = "+919876543210"
NEW_MOBILE = "+919876511111"
READER = "+919900000001"
OFFICER = "+919900000002"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_INTERVALS", [0, 0, 0])


@pytest.fixture()
def area(engine: Any) -> dict[str, int]:
    """Three consumers in the area, one elsewhere; a reader and an officer of the area."""
    with store.session_scope(engine) as session:
        for n, (mobile, where) in enumerate(
            [(OLD_MOBILE, AREA), ("+919811100002", AREA), (None, AREA), (None, "Govind Nagar")]
        ):
            session.add(
                store.Consumer(
                    discom="KESCO",
                    new_account_no=f"123456789{n}",
                    old_account_no=f"45678{n}",
                    name=f"Consumer {n}",
                    mobile=mobile,
                    category="domestic",
                    meter_type="postpaid",
                    area=where,
                    language="hi",
                )
            )
        reader = store.Staff(mobile=READER, name="Suresh Yadav", role="meter_reader", area=AREA)
        officer = store.Staff(mobile=OFFICER, name="Anil Verma", role="officer", area=AREA)
        session.add_all([reader, officer])
        session.flush()
        return {"reader": reader.id, "officer": officer.id}


@pytest.fixture()
def visited(engine: Any, area: dict[str, int]) -> int:
    """The reader visited two consumers: one informed with a wrong mobile; returns the change id."""
    with store.session_scope(engine) as session:
        reader = session.get(store.Staff, area["reader"])
        first = store.consumer_by_account(session, "1234567890")
        second = store.consumer_by_account(session, "1234567891")
        _, change = verification.record_visit(
            session, reader, first, informed=True, mobile_confirmed=False,
            new_mobile=NEW_MOBILE, channel="whatsapp",
        )  # fmt: skip
        verification.record_visit(
            session, reader, second, informed=False, mobile_confirmed=True,
            new_mobile=None, channel="whatsapp",
        )  # fmt: skip
        assert change is not None
        return int(change.id)


@pytest.fixture()
def signed_in(gw_app: Any, make_operator: Callable[..., None]) -> Callable[[str], Any]:
    """A test client signed in with a role (agent, officer, admin)."""

    def client(role: str) -> Any:
        make_operator(role, role, role.title())
        c = gw_app.test_client()
        assert sign_in(c, role).status_code == 302
        return c

    return client


@pytest.fixture()
def cli(gw_settings: Any) -> Any:
    """The ``bijli`` command on the test database and Redis."""
    connections.reset()
    yield CliRunner()
    connections.reset()
