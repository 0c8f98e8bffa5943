"""An approved mobile change moves where the notifier sends: a campaign run after the approval
reaches the new number, and nothing reaches the old one."""

from __future__ import annotations

import datetime as dt

from bot.cli import main
from notifier import campaigns
from notifier.campaigns import Filters
from tests.notifier.conftest import run_campaign_jobs
from tests.staff.conftest import NEW_MOBILE, OLD_MOBILE


def _campaign_to(fake, mobile: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [m for m in fake.sent() if m["to"].removeprefix("whatsapp:") == mobile]


def test_the_next_push_goes_to_the_approved_number(
    cli, visited, campaign_env, engine, redis_conn, fake, work
) -> None:
    result = cli.invoke(main, ["staff", "approve", str(visited)])
    assert result.exit_code == 0, result.output
    work()  # the approval's two notices
    notices = {m["to"] for m in fake.sent()}
    assert notices == {OLD_MOBILE, NEW_MOBILE}
    fake.reset()

    cid = campaigns.create(
        engine,
        "new-account-number",
        Filters(accounts=("1234567890",)),
        cfg=campaign_env,
        valid_until=dt.date(2027, 5, 31),
    )
    campaigns.start(engine, redis_conn, cid)
    run_campaign_jobs(redis_conn)
    [push] = _campaign_to(fake, NEW_MOBILE)
    assert "1234567890" in push["body"]
    assert _campaign_to(fake, OLD_MOBILE) == []
