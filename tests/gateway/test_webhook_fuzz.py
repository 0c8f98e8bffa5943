"""Fuzzing the webhook: random forms, encodings and lengths never get a 5xx, and a real worker
answers every message they leave behind without failing a job or dying."""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from bot.queues import INBOUND
from bot.store import InboundMessage, session_scope
from tests.gateway_stack import wait_for
from tests.processes import bijli, running

pytestmark = pytest.mark.slow

_sids = itertools.count(1)

indian = st.sampled_from(
    ["+919876543210", "9876543210", "09876543210", "+91 98765 43210", "919812345678"]
)
senders = st.one_of(
    indian,
    indian.map(lambda n: f"whatsapp:{n}"),
    st.sampled_from(["+14155550100", "whatsapp:+447700900123", "+911234567890", "", "whatsapp:"]),
    st.text(max_size=60),
)
bodies = st.one_of(
    st.text(max_size=1700),
    st.text(alphabet="अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह ािीुूेैोौं्।", max_size=1700),
    st.sampled_from(["HELP", "stop", "START", "band karo", "", "   ", "1", "२"]),
    st.integers(min_value=1590, max_value=1700).map(lambda n: "bill " * (n // 5)),
)
valid_sid = st.builds(lambda: f"SM{next(_sids):032x}")
#: Mostly Twilio's own sids (so most requests go all the way), sometimes anything.
sids = st.one_of(
    valid_sid,
    valid_sid,
    valid_sid,
    valid_sid,
    st.text(max_size=50),
    st.sampled_from(["", "SM" + "0" * 100, "SM\x00abc"]),
)
forms = st.fixed_dictionaries(
    {
        "MessageSid": sids,
        "From": senders,
        "Body": bodies,
        # Mostly a count Twilio could send (0-10), so that enough requests go all the way.
        "NumMedia": st.one_of(
            st.integers(0, 10).map(str),
            st.integers(0, 10).map(str),
            st.integers(-5, 10**12).map(str),
            st.text(max_size=8),
            st.just("9" * 5000),
        ),
        "ProfileName": st.text(max_size=300),
    },
    optional={
        "To": st.just("whatsapp:+14155238886"),
        "MediaUrl0": st.text(max_size=200),
        "SmsMessageSid": st.text(max_size=40),
        "AccountSid": st.text(max_size=40),
    },
).flatmap(
    lambda form: st.dictionaries(
        st.text(min_size=1, max_size=20), st.text(max_size=50), max_size=4
    ).map(lambda extra: {**extra, **form})
)
#: How the form travels: as Twilio sends it, as bytes in another encoding, as multipart, as JSON.
encodings = st.sampled_from(
    ["utf-8", "utf-8", "utf-8", "latin-1", "cp1252", "utf-16", "multipart", "json"]
)
signings = st.sampled_from(["signed"] * 6 + ["unsigned", "forged"])


def _raw(form: dict[str, str], encoding: str) -> tuple[bytes, str]:
    """The request body and its content type."""
    if encoding == "json":
        return json.dumps(form).encode(), "application/json"
    if encoding == "multipart":
        environ = EnvironBuilder(method="POST", data=form).get_environ()
        return environ["wsgi.input"].read(), environ["CONTENT_TYPE"]
    body = urlencode(form, encoding=encoding, errors="replace").encode("ascii")
    return body, f"application/x-www-form-urlencoded; charset={encoding}"


def _as_the_server_reads_it(raw: bytes, content_type: str) -> Any:
    """The form the app will see for these bytes (the signature must cover exactly that)."""
    environ = EnvironBuilder(method="POST", data=raw, content_type=content_type).get_environ()
    return Request(environ).form


def test_no_random_request_gets_a_5xx_and_the_worker_survives_the_jobs(
    gw_client, gw_settings, engine, redis_conn, fake, stub_rasa, tmp_path
):
    url = f"{gw_settings.public_base_url}/twilio/messages"
    validator = RequestValidator(gw_settings.twilio_auth_token)
    statuses: dict[int, int] = {}

    # Hypothesis draws the malformed sids and encodings more often than their share of the
    # strategies: of 300 examples, 36 to 79 got through to a job in four runs, against the 40
    # the check below needs (a CI run failed on 36). Of 600, 120 to 206 did (about 5 s more).
    @settings(
        max_examples=600,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(form=forms, encoding=encodings, signing=signings)
    def post(form: dict[str, str], encoding: str, signing: str) -> None:
        raw, content_type = _raw(form, encoding)
        seen = _as_the_server_reads_it(raw, content_type)
        signature = {
            "signed": validator.compute_signature(url, seen),
            "unsigned": "",
            "forged": RequestValidator("not-the-token").compute_signature(url, seen),
        }[signing]
        response = gw_client.post(
            "/twilio/messages",
            data=raw,
            content_type=content_type,
            headers={"X-Twilio-Signature": signature} if signature else {},
        )
        assert response.status_code < 500, (form, encoding, response.get_data(as_text=True))
        if signing != "signed":
            assert response.status_code == 403
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    post()
    assert statuses.get(200, 0) >= 40, f"too few requests got through to be a test: {statuses}"

    with session_scope(engine) as session:
        waiting = session.execute(
            select(InboundMessage.id).where(InboundMessage.processed_at.is_(None))
        ).all()
    assert waiting, "some messages were left for the worker"

    def all_answered() -> bool:
        with session_scope(engine) as session:
            return (
                session.execute(
                    select(InboundMessage.id).where(InboundMessage.processed_at.is_(None))
                ).first()
                is None
            )

    with running(
        "worker", bijli("worker"), env={}, log_dir=tmp_path / "logs", ready_text="Listening on"
    ) as worker:
        wait_for(all_answered, timeout=120, interval=0.5)
        assert worker.poll() is None, "the worker died"
    assert FailedJobRegistry(INBOUND, connection=redis_conn).count == 0
    log = (tmp_path / "logs" / "worker.log").read_text()
    assert "Traceback" not in log, log[-3000:]
