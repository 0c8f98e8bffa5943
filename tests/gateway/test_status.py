"""``POST /twilio/status``: signed, idempotent, never backwards, early callbacks kept.

Terminal statuses are written at once; queued, sent, delivered and read are parked in Redis and
written by a flush (``flush`` below runs it as the worker's job does).
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import delivery_status as status_mod
from bot import twilio_client
from bot.store import OutboundMessage, session_scope
from tests.gateway_stack import inbound_form, wait_for

SID = "SM" + "1" * 32


def _row(engine, sid=SID, status="queued"):
    with session_scope(engine) as session:
        session.add(
            OutboundMessage(
                idempotency_key=f"k:{sid}",
                channel="sms",
                to_number="+919876543210",
                body="x",
                twilio_sid=sid,
                status=status,
            )
        )


def _status(engine, sid=SID):
    with session_scope(engine) as session:
        row = session.execute(
            select(OutboundMessage).where(OutboundMessage.twilio_sid == sid)
        ).scalar_one()
        return row.status, row.error_code


def flush(redis_conn, engine):
    return status_mod.flush(redis_conn, engine)


def callback(post_signed, value, sid=SID, error_code=None):
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": value,
        "SmsStatus": value,
        "AccountSid": "AC00000000000000000000000000000000",
        "To": "+919876543210",
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        form["ErrorCode"] = str(error_code)
    return post_signed("/twilio/status", form)


@pytest.mark.parametrize("value", ["queued", "sent", "delivered", "read"])
def test_progress_is_parked_then_written_by_the_flush(value, post_signed, engine, redis_conn):
    _row(engine, status="pending")
    assert callback(post_signed, value).status_code == 204
    assert _status(engine)[0] == "pending", "not written at once"
    assert status_mod.parked_count(redis_conn) == 1
    assert flush(redis_conn, engine) == 1
    assert _status(engine)[0] == value
    assert status_mod.parked_count(redis_conn) == 0


@pytest.mark.parametrize("value", ["undelivered", "failed", "canceled"])
def test_terminal_statuses_are_written_at_once(value, post_signed, engine, redis_conn):
    _row(engine, status="pending")
    assert callback(post_signed, value).status_code == 204
    assert _status(engine)[0] == value
    assert status_mod.parked_count(redis_conn) == 0


def test_a_callback_schedules_one_flush_job(post_signed, engine, redis_conn):
    from rq import Queue
    from rq.job import Job

    _row(engine)
    for value in ("sent", "delivered", "read"):
        callback(post_signed, value)
    scheduled = Queue(status_mod.FLUSH_QUEUE, connection=redis_conn).scheduled_job_registry
    jobs = [Job.fetch(i, connection=redis_conn) for i in scheduled.get_job_ids()]
    assert [j.func_name for j in jobs] == [status_mod.FLUSH_JOB]
    jobs[0].perform()  # what the worker runs once RQ's scheduler queues it
    assert _status(engine) == ("read", None)


def test_status_never_moves_backwards(post_signed, engine, redis_conn):
    _row(engine)
    for value in ("delivered", "sent", "queued"):
        callback(post_signed, value)
    flush(redis_conn, engine)
    assert _status(engine) == ("delivered", None)
    for value in ("sent", "queued"):
        callback(post_signed, value)
        flush(redis_conn, engine)
    assert _status(engine) == ("delivered", None)


def test_failed_is_terminal_and_keeps_its_error_code(post_signed, engine, redis_conn):
    _row(engine)
    callback(post_signed, "failed", error_code=30008)
    callback(post_signed, "delivered")
    callback(post_signed, "read")
    flush(redis_conn, engine)
    assert _status(engine) == ("failed", 30008)


def test_a_parked_delivered_is_written_before_a_late_failure(post_signed, engine, redis_conn):
    # As when written at once: a message delivered cannot fail afterwards.
    _row(engine)
    callback(post_signed, "delivered")
    callback(post_signed, "undelivered", error_code=30003)
    assert _status(engine) == ("delivered", None)
    assert status_mod.parked_count(redis_conn) == 0


def test_undelivered_after_sent_records_the_error(post_signed, engine):
    _row(engine, status="sent")
    callback(post_signed, "undelivered", error_code=30003)
    assert _status(engine) == ("undelivered", 30003)


def test_repeated_callback_is_idempotent(post_signed, engine, redis_conn):
    _row(engine)
    for _ in range(3):
        assert callback(post_signed, "delivered").status_code == 204
    assert status_mod.parked_count(redis_conn) == 1
    flush(redis_conn, engine)
    assert _status(engine) == ("delivered", None)


def test_unsigned_callback_is_403(gw_client, engine, redis_conn):
    _row(engine)
    for value in ("failed", "delivered"):
        response = gw_client.post(
            "/twilio/status",
            data={"MessageSid": SID, "MessageStatus": value},
            headers={"X-Twilio-Signature": "nope"},
        )
        assert response.status_code == 403
    assert status_mod.parked_count(redis_conn) == 0
    assert _status(engine)[0] == "queued"


def test_callback_without_status_is_400(post_signed):
    assert post_signed("/twilio/status", {"MessageSid": SID}).status_code == 400


def test_with_redis_down_a_callback_is_written_at_once(
    gw_settings, engine, redis_conn, monkeypatch
):
    from bot import connections, create_app
    from bot.dev.embedded_redis import free_port
    from tests.gateway_stack import sign

    _row(engine)
    # Nothing listens there: every command fails to connect.
    cfg = gw_settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    connections.reset()
    client = create_app(cfg).test_client()
    form = {"MessageSid": SID, "MessageStatus": "delivered"}
    response = client.post(
        "/twilio/status",
        data=form,
        headers={"X-Twilio-Signature": sign(cfg, "/twilio/status", form)},
    )
    assert response.status_code == 204
    assert _status(engine)[0] == "delivered"


def test_callback_before_the_sid_is_stored_is_applied_later(post_signed, engine, redis_conn):
    callback(post_signed, "sent", sid="SM" + "2" * 32)
    callback(post_signed, "delivered", sid="SM" + "2" * 32)
    flush(redis_conn, engine)
    assert status_mod.parked_count(redis_conn) == 0
    _row(engine, sid="SM" + "2" * 32, status="queued")
    status_mod.apply_early(redis_conn, engine, "SM" + "2" * 32)
    assert _status(engine, "SM" + "2" * 32)[0] == "delivered"
    assert not redis_conn.exists(status_mod.EARLY_KEY.format(sid="SM" + "2" * 32))


def test_fake_twilio_callbacks_reach_delivered(live_app, gw_settings, engine, fake, redis_conn):
    fake.configure(callback_delay=0.01)
    outcome = twilio_client.send(
        gw_settings,
        channel="whatsapp",
        to="+919876543210",
        body="hello",
        idempotency_key="status:e2e",
        engine=engine,
    )
    wait_for(
        lambda: (
            flush(redis_conn, engine) >= 0 and _status(engine, outcome.twilio_sid)[0] == "delivered"
        )
    )


def test_undeliverable_number_ends_undelivered_with_error_code(live_app, gw_settings, engine, fake):
    fake.configure(undeliverable=["+919800000009"])
    outcome = twilio_client.send(
        gw_settings,
        channel="sms",
        to="+919800000009",
        body="hello",
        idempotency_key="status:undelivered",
        engine=engine,
    )
    wait_for(lambda: _status(engine, outcome.twilio_sid)[0] == "undelivered")
    assert _status(engine, outcome.twilio_sid)[1] == 30003


def test_whole_path_reply_status_is_tracked(
    live_app, post_signed, engine, work, fake, stub_rasa, redis_conn
):
    post_signed("/twilio/messages", inbound_form("hello"))
    work()
    sid = fake.sent()[0]["sid"]
    wait_for(lambda: flush(redis_conn, engine) >= 0 and _status(engine, sid)[0] == "delivered")


def test_a_worker_writes_parked_callbacks_by_itself(live_app, gw_settings, engine, fake, tmp_path):
    """The real mechanism: the callback schedules a flush, `bijli worker` runs it."""
    from tests.processes import bijli, running

    fake.configure(callback_delay=0.01)
    with running(
        "worker", bijli("worker"), env={}, log_dir=tmp_path / "logs", ready_text="Listening on"
    ):
        outcome = twilio_client.send(
            gw_settings,
            channel="whatsapp",
            to="+919700001301",
            body="hello",
            idempotency_key="status:worker",
            engine=engine,
        )
        wait_for(lambda: _status(engine, outcome.twilio_sid)[0] == "delivered", timeout=30)
    log = (tmp_path / "logs" / "worker.log").read_text()
    assert "event=twilio_status_flushed" in log


def test_early_callbacks_are_kept_until_a_row_holds_the_sid(post_signed, engine, redis_conn):
    sid = "SM" + "3" * 32
    callback(post_signed, "sent", sid=sid)
    flush(redis_conn, engine)
    status_mod.apply_early(redis_conn, engine, sid)
    assert redis_conn.exists(status_mod.EARLY_KEY.format(sid=sid))
    _row(engine, sid=sid, status="queued")
    callback(post_signed, "delivered", sid=sid)
    flush(redis_conn, engine)
    assert _status(engine, sid)[0] == "delivered"


def _park_many(post_signed, engine, count):
    sids = [f"SM{i:032d}" for i in range(count)]
    for sid in sids:
        _row(engine, sid=sid, status="queued")
        callback(post_signed, "sent", sid=sid)
        callback(post_signed, "delivered", sid=sid)
    return sids


def test_a_flush_dying_before_its_commit_loses_nothing(
    post_signed, engine, redis_conn, monkeypatch
):
    sids = _park_many(post_signed, engine, 30)

    def dies(*args, **kwargs):
        raise SystemExit("worker killed mid-flush")

    with monkeypatch.context() as m:
        m.setattr(status_mod, "session_scope", dies)
        with pytest.raises(SystemExit):
            flush(redis_conn, engine)
    assert status_mod.parked_count(redis_conn) == 60
    assert {_status(engine, sid)[0] for sid in sids} == {"queued"}
    flush(redis_conn, engine)
    assert {_status(engine, sid)[0] for sid in sids} == {"delivered"}
    assert status_mod.parked_count(redis_conn) == 0


def test_a_flush_dying_after_its_commit_is_written_again_harmlessly(
    post_signed, engine, redis_conn, monkeypatch
):
    sids = _park_many(post_signed, engine, 30)

    def dies(*args, **kwargs):
        raise SystemExit("worker killed between the commit and removing the fields")

    with monkeypatch.context() as m:
        m.setattr(status_mod, "_forget", dies)
        with pytest.raises(SystemExit):
            status_mod.flush(redis_conn, engine, batch=10)
    assert status_mod.parked_count(redis_conn) == 60
    # Meanwhile one message was read: the second flush must not move it back.
    callback(post_signed, "read", sid=sids[0])
    assert flush(redis_conn, engine) == 61
    assert _status(engine, sids[0])[0] == "read"
    assert {_status(engine, sid)[0] for sid in sids[1:]} == {"delivered"}
    assert status_mod.parked_count(redis_conn) == 0


def test_a_worker_killed_mid_flush_loses_nothing(post_signed, engine, redis_conn, tmp_path):
    """A real process dies (no cleanup at all) after its first page committed; a worker started
    later runs the flush the callbacks scheduled, and every status reaches the database."""
    import os
    import subprocess
    import sys

    from tests.processes import ROOT, bijli, running

    # 600 fields: more than Redis keeps in one compact encoding, so HSCAN pages through them.
    sids = _park_many(post_signed, engine, 300)
    script = (
        "import os\n"
        "from bot import connections, delivery_status as d\n"
        "written = d.apply_parked\n"
        "def then_die(*args, **kwargs):\n"
        "    written(*args, **kwargs)\n"
        "    os._exit(9)\n"
        "d.apply_parked = then_die\n"
        "cfg = connections.settings()\n"
        "d.flush(connections.redis(cfg), connections.engine(cfg), batch=10)\n"
    )
    died = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), cwd=ROOT)
    assert died.returncode == 9
    statuses = [_status(engine, sid)[0] for sid in sids]
    assert "delivered" in statuses and "queued" in statuses, "one page written, then death"
    assert status_mod.parked_count(redis_conn) == 600, "nothing left Redis unwritten"
    with running(
        "worker", bijli("worker"), env={}, log_dir=tmp_path / "logs", ready_text="Listening on"
    ):
        wait_for(lambda: status_mod.parked_count(redis_conn) == 0, timeout=30)
    assert {_status(engine, sid)[0] for sid in sids} == {"delivered"}


def test_flush_jobs_that_start_together_write_once_and_schedule_one_more(
    post_signed, engine, redis_conn, gw_settings
):
    from rq import Queue

    _row(engine)
    callback(post_signed, "delivered")
    redis_conn.set(status_mod.FLUSH_LOCK_KEY, "another flush", ex=60)
    redis_conn.delete(status_mod.FLUSH_SCHEDULED_KEY)
    scheduled = Queue(status_mod.FLUSH_QUEUE, connection=redis_conn).scheduled_job_registry
    before = len(scheduled.get_job_ids())
    assert [status_mod.flush_job() for _ in range(3)] == [0, 0, 0]
    assert len(scheduled.get_job_ids()) == before + 1, "one follow-up, not three"
    assert status_mod.parked_count(redis_conn) == 1, "left to the flush holding the lock"
    redis_conn.delete(status_mod.FLUSH_LOCK_KEY)
    assert status_mod.flush_job() == 1
    assert _status(engine)[0] == "delivered"
    assert not redis_conn.exists(status_mod.FLUSH_LOCK_KEY), "released"


def test_a_field_parked_again_during_a_flush_stays_for_the_next(post_signed, engine, redis_conn):
    _row(engine)
    callback(post_signed, "delivered")
    fields = {f"{SID}|delivered": "|k:other"}  # what the flush read, before a new value came
    status_mod._forget(redis_conn, fields)
    assert status_mod.parked_count(redis_conn) == 1


def test_parked_callbacks_survive_a_redis_restart(gw_settings, engine, tmp_path, monkeypatch):
    """The durable Redis of `bijli run` (append-only file): a restart between park and flush."""
    from bot import connections, create_app
    from bot.connections import redis_client
    from bot.dev.embedded_redis import EmbeddedRedis, free_port
    from tests.gateway_stack import sign

    port, workdir = free_port(), tmp_path / "redis"
    server = EmbeddedRedis(port=port, workdir=workdir).start()
    try:
        cfg = gw_settings.with_overrides(redis_url=server.url)
        connections.reset()
        client = create_app(cfg).test_client()
        sids = [f"SM{i:032d}" for i in range(20)]
        for sid in sids:
            _row(engine, sid=sid, status="queued")
            form = {"MessageSid": sid, "MessageStatus": "delivered"}
            response = client.post(
                "/twilio/status",
                data=form,
                headers={"X-Twilio-Signature": sign(cfg, "/twilio/status", form)},
            )
            assert response.status_code == 204
        assert {_status(engine, sid)[0] for sid in sids} == {"queued"}
        server.stop()
        server = EmbeddedRedis(port=port, workdir=workdir).start()
        conn = redis_client(server.url)
        assert status_mod.flush(conn, engine) == 20
        conn.close()
    finally:
        server.stop()
        connections.reset()
    assert {_status(engine, sid)[0] for sid in sids} == {"delivered"}


def _refuse_in_flask(gw_app, calls):
    """Replace the Flask view of the callbacks, counting what reaches it."""

    def view():
        calls.append(1)
        return "", 204

    gw_app.view_functions["gateway.message_status"] = view


def test_progress_is_parked_before_flask(gw_app, post_signed, engine, redis_conn):
    calls = []
    _refuse_in_flask(gw_app, calls)
    for value in ("sent", "delivered", "read"):
        assert callback(post_signed, value).status_code == 204
    assert calls == [], "parked by the middleware, not the view"
    assert status_mod.parked_count(redis_conn) == 3


def test_terminal_and_unsigned_callbacks_go_on_to_flask(gw_app, gw_client, post_signed, redis_conn):
    calls = []
    _refuse_in_flask(gw_app, calls)
    assert callback(post_signed, "failed").status_code == 204
    response = gw_client.post(
        "/twilio/status",
        data={"MessageSid": SID, "MessageStatus": "delivered"},
        headers={"X-Twilio-Signature": "nope"},
    )
    assert response.status_code == 204  # the stand-in view answered, not the middleware
    assert len(calls) == 2
    assert status_mod.parked_count(redis_conn) == 0


def test_parked_callback_keeps_the_idempotency_key(gw_client, gw_settings, engine, redis_conn):
    from tests.gateway_stack import sign

    _row(engine, status="pending")
    form = {"MessageSid": SID, "MessageStatus": "delivered"}
    path = "/twilio/status?key=reply%3A7%3A0%3A0"
    signature = sign(gw_settings, path, form)
    assert (
        gw_client.post(path, data=form, headers={"X-Twilio-Signature": signature}).status_code
        == 204
    )
    assert redis_conn.hgetall(status_mod.PARKED_KEY) == {
        f"{SID}|delivered".encode(): b"|reply:7:0:0"
    }
    # The query is signed too: the same signature for another key is refused.
    other = "/twilio/status?key=reply%3A8%3A0%3A0"
    response = gw_client.post(other, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert status_mod.parked_count(redis_conn) == 1


def test_a_repeated_field_is_read_by_flask_as_signed(gw_app, gw_client, gw_settings, redis_conn):
    from werkzeug.datastructures import MultiDict

    from tests.gateway_stack import sign

    form = MultiDict([("MessageSid", SID), ("MessageStatus", "sent"), ("To", "a"), ("To", "b")])
    signature = sign(gw_settings, "/twilio/status", form)
    response = gw_client.post(
        "/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 204
    assert status_mod.parked_count(redis_conn) == 1
