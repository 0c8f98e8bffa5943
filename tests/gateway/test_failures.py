"""Failures lose nothing: retries with back-off, permanent Twilio errors, dead letters, replay."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from click.testing import CliRunner
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from bot import twilio_client
from bot.cli import main as cli
from bot.gateway import inbound, ordering
from bot.queues import INBOUND
from bot.store import DeadLetter, InboundMessage, OutboundMessage, session_scope
from tests.gateway_stack import ServerThread, inbound_form

NUMBER = "+919876500002"


def test_default_retry_policy_backs_off():
    retry = ordering.default_retry()
    assert retry.max == len(ordering.RETRY_INTERVALS) >= 3
    assert retry.intervals == ordering.RETRY_INTERVALS


def test_enqueued_job_has_ids_timeout_and_retry(post_signed, redis_conn, monkeypatch):
    monkeypatch.setattr(ordering, "RETRY_INTERVALS", [5, 15, 60])
    post_signed("/twilio/messages", inbound_form("hi", sender=NUMBER))
    (job,) = Queue(INBOUND, connection=redis_conn).jobs
    assert job.func_name == "bot.gateway.inbound.handle_inbound"
    assert len(job.args) == 1 and isinstance(job.args[0], int)
    assert job.timeout == ordering.JOB_TIMEOUT
    assert job.retries_left == 3 and job.retry_intervals == [5, 15, 60]


def test_rasa_down_then_up_is_retried_and_answered_once(post_signed, engine, work, fake, stub_rasa):
    stub_rasa.fail_next = 2
    post_signed("/twilio/messages", inbound_form("hello", sender=NUMBER))
    work()
    assert stub_rasa.messages() == ["hello"] * 3
    assert [m["body"] for m in fake.sent()] == ["echo: hello"]


def test_twilio_500_then_200_is_retried_and_sent_once(post_signed, engine, work, fake, stub_rasa):
    fake.configure(fail_next=[500])
    post_signed("/twilio/messages", inbound_form("hello", sender=NUMBER))
    work()
    assert fake.state.requests_seen == 2 and fake.state.errors_injected == 1
    assert [m["body"] for m in fake.sent()] == ["echo: hello"]
    assert stub_rasa.messages() == ["hello"], "a retry reuses Rasa's first answer"
    with session_scope(engine) as session:
        out = session.execute(select(OutboundMessage)).scalar_one()
        assert (out.status, out.attempts) == ("queued", 2)


def test_twilio_429_is_retried(post_signed, engine, work, fake, stub_rasa):
    fake.configure(fail_next=[429, 429])
    post_signed("/twilio/messages", inbound_form("hello", sender=NUMBER))
    work()
    assert len(fake.sent()) == 1


def test_retry_after_a_partial_send_does_not_repeat_what_was_sent(
    post_signed, engine, work, fake, stub_rasa
):
    # "image please" answers two messages; the second send fails once.
    fake.configure(fail_next=[0, 503])
    post_signed("/twilio/messages", inbound_form("image please", sender=NUMBER))
    work()
    assert fake.state.requests_seen == 3
    assert [m["body"] for m in fake.sent()] == ["Scan this QR to pay", ""]


@pytest.mark.parametrize(
    ("code", "reason"),
    [(21211, "invalid_number"), (21610, "unsubscribed"), (63016, "outside_whatsapp_window")],
)
def test_permanent_twilio_errors_are_not_retried(
    code, reason, post_signed, engine, work, fake, stub_rasa, redis_conn
):
    fake.configure(reject={NUMBER: code})
    post_signed("/twilio/messages", inbound_form("hello", sender=NUMBER))
    work()
    assert fake.state.requests_seen == 1
    assert twilio_client.PERMANENT_ERRORS[code] == reason
    with session_scope(engine) as session:
        out = session.execute(select(OutboundMessage)).scalar_one()
        assert (out.status, out.error_code) == ("failed", code)
        assert session.execute(select(DeadLetter)).first() is None
        assert session.execute(select(InboundMessage)).scalar_one().processed_at is not None
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 0


def test_last_retry_writes_a_dead_letter_and_replay_answers_it(
    post_signed, engine, work, fake, stub_rasa, redis_conn
):
    stub_rasa.fail_next = 100
    post_signed("/twilio/messages", inbound_form("kya haal", sender=NUMBER))
    work()
    assert len(stub_rasa.requests) == 1 + len(ordering.RETRY_INTERVALS)
    assert fake.sent() == []
    with session_scope(engine) as session:
        letter = session.execute(select(DeadLetter)).scalar_one()
        assert letter.kind == "inbound" and letter.replayed_at is None
        assert "RasaTurnFailed" in letter.error and "action_failed" in letter.error
        assert letter.attempts == 1 + len(ordering.RETRY_INTERVALS)
        assert json.loads(letter.args)[0] == letter.inbound_message_id
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 1

    runner = CliRunner()
    dry = runner.invoke(cli, ["replay-failed", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"dead letter {letter.id}: inbound {letter.inbound_message_id}" in dry.output
    assert "whatsapp:+91******0002" in dry.output and "RasaTurnFailed" in dry.output
    assert "would replay 1 dead letter(s)" in dry.output

    stub_rasa.fail_next = 0
    result = runner.invoke(cli, ["replay-failed"])
    assert result.exit_code == 0, result.output
    assert (
        "enqueued as job inbound-" in result.output and "replayed 1 dead letter(s)" in result.output
    )
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: kya haal"]
    with session_scope(engine) as session:
        assert session.execute(select(DeadLetter)).scalar_one().replayed_at is not None
    again = runner.invoke(cli, ["replay-failed"])
    assert "replayed 0 dead letter(s)" in again.output


def test_rasa_saying_nothing_is_retried_then_dead_lettered_not_taken_as_an_answer(
    post_signed, engine, work, fake, stub_rasa, redis_conn
):
    # Rasa's own REST channel answers 200 [] when a turn produced nothing; ours answers 500.
    post_signed("/twilio/messages", inbound_form("silence", sender=NUMBER))
    work()
    assert stub_rasa.messages() == ["silence"] * (1 + len(ordering.RETRY_INTERVALS))
    assert fake.sent() == []
    with session_scope(engine) as session:
        assert session.execute(select(InboundMessage)).scalar_one().processed_at is None
        letter = session.execute(select(DeadLetter)).scalar_one()
        assert "RasaTurnFailed" in letter.error and "empty_answer" in letter.error
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 1


def test_an_answer_with_nothing_to_send_is_a_failure(gw_settings, stub_rasa, monkeypatch):
    # A 200 whose items carry neither text nor image (e.g. only a custom payload) sends nothing.
    monkeypatch.setattr(
        stub_rasa, "answer", lambda message: [{"recipient_id": "x", "custom": {"kind": "card"}}]
    )
    with pytest.raises(inbound.RasaTurnFailed, match="nothing to send"):
        inbound.ask_rasa(gw_settings, "sms", NUMBER, "hello", "consumer")


@pytest.fixture
def scripted_rasa(gw_settings):
    """Settings whose RASA_URL answers every post as scripted (a Rasa that misbehaves), and the
    function that scripts it: ``script(status, body)``."""
    answer = {"status": 200, "body": b"[]"}

    def app(environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        status = HTTPStatus(answer["status"])
        start_response(
            f"{status.value} {status.phrase}", [("Content-Length", str(len(answer["body"])))]
        )
        return [answer["body"]]

    def script(status: int, body: bytes) -> None:
        answer.update(status=status, body=body)

    with ServerThread(app) as server:
        yield gw_settings.with_overrides(rasa_url=server.url), script


def test_rasa_not_listening_is_unavailable(gw_settings):
    from bot.dev.embedded_redis import free_port

    nowhere = gw_settings.with_overrides(rasa_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(inbound.RasaUnavailable, match="unreachable: NewConnectionError"):
        inbound.ask_rasa(nowhere, "sms", NUMBER, "hello", "consumer")


def test_rasa_slower_than_the_timeout_is_unavailable(gw_settings, stub_rasa, monkeypatch):
    monkeypatch.setattr(inbound, "RASA_TIMEOUT", 0.3)
    stub_rasa.delays["slow"] = 2.0
    with pytest.raises(inbound.RasaUnavailable, match="unreachable: ReadTimeoutError"):
        inbound.ask_rasa(gw_settings, "sms", NUMBER, "slow", "consumer")


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (200, b"<html>proxy error</html>", inbound.RasaUnavailable, "not JSON"),
        (200, b"\xff\xfe", inbound.RasaUnavailable, "not JSON"),
        (503, b"", inbound.RasaUnavailable, "HTTP 503$"),
        (
            502,
            b'{"error": "upstream", "after": 3}',
            inbound.RasaUnavailable,
            "502: upstream after=3",
        ),
        (500, b'{"error": "action_failed", "action": "x"}', inbound.RasaTurnFailed, "action=x"),
        (500, b"Internal Server Error", inbound.RasaUnavailable, "HTTP 500$"),
        (200, b'[{"text": "namaste"}]', None, ""),
    ],
)
def test_what_rasa_answers_decides_between_a_reply_a_failed_turn_and_unavailable(
    scripted_rasa, status, body, error, match
):
    cfg, script = scripted_rasa
    script(status, body)
    if error is None:
        assert inbound.ask_rasa(cfg, "sms", NUMBER, "hello", "consumer") == [
            inbound.Reply("namaste")
        ]
        return
    with pytest.raises(error, match=match):
        inbound.ask_rasa(cfg, "sms", NUMBER, "hello", "consumer")


def test_a_worker_with_the_wrong_secret_is_refused_and_dead_letters(
    post_signed, engine, work, fake, stub_rasa, monkeypatch
):
    monkeypatch.setenv("BIJLI_GATEWAY_SECRET", "not-the-secret-rasa-holds")
    post_signed("/twilio/messages", inbound_form("hello", sender=NUMBER))
    work()
    assert stub_rasa.requests == []
    assert stub_rasa.refused == ["bad_signature"] * (1 + len(ordering.RETRY_INTERVALS))
    assert fake.sent() == []
    with session_scope(engine) as session:
        letter = session.execute(select(DeadLetter)).scalar_one()
        assert "HTTP 401: bad_signature" in letter.error


def test_a_dead_lettered_message_does_not_block_the_senders_next_one(
    post_signed, engine, work, fake, stub_rasa
):
    stub_rasa.fail_next = 1 + len(ordering.RETRY_INTERVALS)
    post_signed("/twilio/messages", inbound_form("first", sender=NUMBER))
    post_signed("/twilio/messages", inbound_form("second", sender=NUMBER))
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: second"]


def _post(app, cfg, form):
    from tests.gateway_stack import sign

    return app.test_client().post(
        "/twilio/messages",
        data=form,
        headers={"X-Twilio-Signature": sign(cfg, "/twilio/messages", form)},
    )


def test_redis_down_on_the_webhook_still_stores_and_answers_200(
    gw_settings, engine, redis_conn, work, fake, stub_rasa, monkeypatch
):
    from bot import create_app
    from bot.dev.embedded_redis import free_port
    from bot.gateway import inbox

    down = gw_settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = _post(create_app(down), down, inbound_form("hello", sender=NUMBER))
    assert response.status_code == 200
    assert response.data == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    with session_scope(engine) as session:
        row = session.execute(select(InboundMessage)).scalar_one()
        assert (row.body, row.processed_at) == ("hello", None)
    # Redis answers again: the sweep finds the unanswered message and it is answered.
    monkeypatch.setattr(inbox, "UNANSWERED_AFTER", 0)
    assert inbox.sweep() == "enqueued:1"
    work()
    assert [m["body"] for m in fake.sent()] == ["echo: hello"]


def test_database_down_on_the_webhook_answers_503_so_twilio_retries(gw_settings, engine):
    from bot import create_app
    from tests.gateway_stack import unreachable_database_url

    down = gw_settings.with_overrides(
        database_url=unreachable_database_url(gw_settings.database_url)
    )
    form = inbound_form("hello")
    response = _post(create_app(down), down, form)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    # Twilio's retry, once the database answers, is stored and accepted.
    assert _post(create_app(gw_settings), gw_settings, form).status_code == 200
    with session_scope(engine) as session:
        assert (
            session.execute(select(InboundMessage)).scalar_one().message_sid == form["MessageSid"]
        )
