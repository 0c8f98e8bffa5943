"""Chunks of a batch claimed, sent side by side and recorded together (notifier/sending.py),
run by a real RQ worker against the fake Twilio: every recipient ends in its right state, once.

Mobiles of this file: +91 97000 009xx.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from sqlalchemy import event, select

from bot import connections, store
from bot.clock import utcnow
from notifier import campaigns, jobs
from notifier.campaigns import Filters
from tests.notifier.conftest import add_consumers, new_number_batch, run_campaign_jobs

VALID_UNTIL = dt.date(2027, 5, 31)
NEW_NUMBER = "new-account-number"
#: Consumers 900.. have mobiles +919700000900.. (add_consumers: base + index).
FIRST = 900


def _mobile(i: int) -> str:
    return f"+9197000009{i - FIRST:02d}"


def _rows(engine, cid):  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        recipients = {
            r.mobile: r
            for r in session.execute(
                select(store.CampaignRecipient).where(store.CampaignRecipient.campaign_id == cid)
            ).scalars()
        }
        outbound = list(
            session.execute(
                select(store.OutboundMessage).where(store.OutboundMessage.campaign_id == cid)
            ).scalars()
        )
    return recipients, outbound


def test_a_chunk_twilio_partly_accepts_rejects_fails_and_drops_ends_each_recipient_once(
    campaign_env, engine, redis_conn, fake
):
    """One chunk of 12 sent 8 at a time: two numbers Twilio refuses for good (different codes),
    one request answered 500, one accepted and then dropped without an answer."""
    add_consumers(engine, 12, start=FIRST, whatsapp_every=3)
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    rejected = {_mobile(FIRST + 1): 21211, _mobile(FIRST + 4): 21614}
    fake.configure(reject=rejected, fail_next=[0, 0, 500], drop_after_accept=1)
    campaigns.start(engine, redis_conn, cid, batch_size=12)
    run_campaign_jobs(redis_conn)

    assert fake.state.drop_after_accept == 0, "the drop happened"
    assert fake.state.errors_injected == 1, "the 500 happened"
    arrived = Counter(m["to"].removeprefix("whatsapp:") for m in fake.sent())
    expected = {_mobile(i) for i in range(FIRST, FIRST + 12)} - set(rejected)
    assert set(arrived) == expected
    assert all(n == 1 for n in arrived.values()), f"sent twice: {arrived}"

    recipients, outbound = _rows(engine, cid)
    for mobile, row in recipients.items():
        if mobile in rejected:
            assert (row.state, row.reason, row.error_code) == (
                "failed",
                jobs.REJECTED,
                rejected[mobile],
            )
        else:
            assert (row.state, row.reason) == ("sent", None), mobile
    # One idempotency row per recipient; every sent one holds its own sid.
    assert Counter(o.idempotency_key for o in outbound).most_common(1)[0][1] == 1
    sids = [o.twilio_sid for o in outbound if o.to_number not in rejected]
    assert len(sids) == 10 and None not in sids and len(set(sids)) == 10
    assert {o.to_number: o.error_code for o in outbound if o.status == "failed"} == rejected
    st = campaigns.status(engine, cid)
    assert (st.state, st.sent, st.failed, st.queued) == ("done", 10, 2, 0)
    assert st.failures_by_code == {"21211": 1, "21614": 1}


def test_a_rerun_chunk_sends_only_what_twilio_does_not_have(campaign_env, engine, redis_conn, fake):
    """A batch run again after its recipients' states were lost: messages with a sid are not
    sent again (even to a number that opted out since: it stays sent); and in a chunk an
    opt-out since selection is skipped while the rest go."""
    add_consumers(engine, 6, start=FIRST + 20, whatsapp_every=100)  # SMS
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid, batch_size=6)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 6
    # As if the recording transaction had been lost: every recipient queued again, and one
    # consumer opted out of SMS meanwhile (its message was already out: it stays sent).
    add_consumers(engine, 2, start=FIRST + 30, whatsapp_every=100, area="Later")
    with store.session_scope(engine) as session:
        session.execute(
            store.CampaignRecipient.__table__.update()
            .where(store.CampaignRecipient.campaign_id == cid)
            .values(state="queued")
        )
        session.execute(
            store.Campaign.__table__.update()
            .where(store.Campaign.id == cid)
            .values(status="running", finished_at=None)
        )
        store.set_opt_out(session, _mobile(FIRST + 21), "sms", True)
    jobs.enqueue_batches(redis_conn, cid, 1, _ids(engine, cid), batch_size=6)
    run_campaign_jobs(redis_conn)
    assert len(fake.sent()) == 6, "nothing Twilio has was sent again"
    recipients, _ = _rows(engine, cid)
    assert {r.state for r in recipients.values()} == {"sent"}
    # A campaign to two consumers of whom one opted out after selection: one message.
    later = campaigns.create(
        engine, NEW_NUMBER, Filters(areas=("Later",)), cfg=campaign_env, valid_until=VALID_UNTIL
    )
    with store.session_scope(engine) as session:
        store.set_opt_out(session, _mobile(FIRST + 31), "sms", True)
    campaigns.start(engine, redis_conn, later)
    run_campaign_jobs(redis_conn)
    assert [m["to"] for m in fake.sent()[6:]] == [_mobile(FIRST + 30)]
    assert campaigns.status(engine, later).skipped == {"opted_out": 1}


def _ids(engine, cid):  # type: ignore[no-untyped-def]
    with store.session_scope(engine) as session:
        return list(
            session.execute(
                select(store.CampaignRecipient.id)
                .where(store.CampaignRecipient.campaign_id == cid)
                .order_by(store.CampaignRecipient.id)
            ).scalars()
        )


def test_every_send_of_a_chunk_takes_a_token_from_the_rate_limiter(
    campaign_env, engine, redis_conn, fake, monkeypatch
):
    """Eight requests in flight at once still keep to the sender's MPS: 15 SMS at 5 a second,
    the bucket holding 5, cannot all arrive within 2 seconds."""
    monkeypatch.setenv("BIJLI_SMS_MPS", "5")
    connections.reset()
    add_consumers(engine, 15, start=FIRST + 40, whatsapp_every=100)  # SMS
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid, batch_size=15)
    run_campaign_jobs(redis_conn)
    times = sorted(m["received_at"] for m in fake.sent())
    assert len(times) == 15
    # 5 at once from the full bucket, then one every 0.2 s: at least 10 × 0.2 s for the rest.
    assert times[-1] - times[0] >= 1.8
    assert campaigns.status(engine, cid).sent == 15


def test_a_chunk_whose_claim_races_another_attempt_is_claimed_one_by_one(
    campaign_env, engine, redis_conn, fake
):
    """Another attempt inserts one of the chunk's idempotency rows between the chunk's read and
    its insert: the chunk is claimed message by message; the raced one is left to its holder,
    the others go, once."""
    add_consumers(engine, 4, start=FIRST + 60, whatsapp_every=100)  # SMS
    cid = campaigns.create(engine, NEW_NUMBER, Filters(), cfg=campaign_env, valid_until=VALID_UNTIL)
    campaigns.start(engine, redis_conn, cid)
    with store.session_scope(engine) as session:
        rows = list(
            session.execute(
                select(store.CampaignRecipient).order_by(store.CampaignRecipient.id)
            ).scalars()
        )
        batch = new_number_batch(session, campaign_env, engine, redis_conn, cid)
    texts = batch.prepare(rows)
    raced = rows[2]
    key = jobs.idempotency_key(cid, raced.new_account_no)
    seen: list[str] = []

    def other_attempt(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO outbound_messages") and not seen:
            seen.append(statement)
            with engine.begin() as other:
                other.execute(
                    store.OutboundMessage.__table__.insert().values(
                        idempotency_key=key,
                        channel="sms",
                        to_number=raced.mobile,
                        body=texts[raced.id][0],
                        campaign_id=cid,
                        status="in_flight",
                        attempts=1,
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )

    event.listen(engine, "before_cursor_execute", other_attempt)
    try:
        with batch:
            leftovers = batch.send_chunk(rows, texts)
    finally:
        event.remove(engine, "before_cursor_execute", other_attempt)
    assert seen, "the race was staged"
    assert [r.id for r in leftovers] == [raced.id]
    arrived = Counter(m["to"] for m in fake.sent())
    assert arrived == Counter(r.mobile for r in rows if r.id != raced.id)
    recipients, outbound = _rows(engine, cid)
    assert recipients[raced.mobile].state == "queued"
    assert {r.state for m, r in recipients.items() if m != raced.mobile} == {"sent"}
    assert len(outbound) == 4
