"""Only the gateway speaks for a sender, and a failed turn is never taken for an answer.

Against the real stack (tests/e2e/conftest.py): real Rasa on the trained model behind its
gateway channel, the real action server, real workers, Redis and the fake Twilio. An attacker
who reaches Rasa's or the action server's port gets nothing about any account; a message that
comes in while the action server is dead is retried, dead-lettered, and answered on replay.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from rq.exceptions import InvalidJobOperation
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from bot import signing, store
from bot.gateway.ordering import job_id_for
from bot.queues import INBOUND
from bot.settings import DEV_GATEWAY_SECRET
from bot.store import DeadLetter, InboundMessage, session_scope
from tests.actions.helpers import domain
from tests.e2e.conftest import Stack, new_sid, wait_for
from tests.processes import bijli

pytestmark = [pytest.mark.rasa, pytest.mark.slow, pytest.mark.timeout(900)]

#: A registered consumer with a bill: what an attacker is after.
VICTIM = "+919700000101"
VICTIM_ACCOUNT = "9700000101"
#: The bill's amount as the bot writes it; no attack may see it.
DUES = "1,234.56"
ATTACKER = "+919700000199"
KILLED_ACTIONS_SENDER = "+919700000102"


@pytest.fixture(scope="module")
def victim(stack: Stack) -> str:
    """A consumer registered to VICTIM with a bill of ₹1,234.56 (and another for the kill test)."""
    with session_scope(stack.engine) as session:
        for mobile, account in ((VICTIM, VICTIM_ACCOUNT), (KILLED_ACTIONS_SENDER, "9700000102")):
            session.add(
                store.Consumer(
                    discom="KESCO",
                    new_account_no=account,
                    old_account_no=None,
                    name="Kamla Devi",
                    mobile=mobile,
                    category="domestic",
                    meter_type="postpaid",
                    area="Kidwai Nagar",
                    language="hi",
                )
            )
        session.flush()
        for account in (VICTIM_ACCOUNT, "9700000102"):
            session.add(
                store.Bill(
                    new_account_no=account,
                    bill_month="2026-10",
                    amount_due_paise=123456,
                    due_date=dt.date(2026, 11, 20),
                )
            )
    return VICTIM


def _post(stack: Stack, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        stack.rasa + signing.WEBHOOK_PATH, data=body, headers=headers or {}, timeout=90
    )


def _as_gateway(stack: Stack, mobile: str, text: str, **extra: Any) -> tuple[bytes, dict[str, str]]:
    """A request signed as the worker signs it (``extra`` fields ride along, also signed)."""
    message = signing.new_message("whatsapp", mobile, "consumer", text)
    if not extra:
        return signing.signed_request(stack.cfg.gateway_signing_secret, message)
    body = json.dumps({**json.loads(message.body()), **extra}).encode()
    sig = signing.sign(stack.cfg.gateway_signing_secret, body)
    return body, {signing.SIGNATURE_HEADER: sig, "Content-Type": "application/json"}


def _tracker(stack: Stack, mobile: str) -> dict[str, Any]:
    response = requests.get(
        f"{stack.rasa}/conversations/whatsapp:{mobile}/tracker",
        params={"token": stack.env["RASA_AUTH_TOKEN"]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _user_turns(stack: Stack, mobile: str) -> int:
    return sum(1 for e in _tracker(stack, mobile)["events"] if e["event"] == "user")


def _listening(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


# --------------------------------------------------------------------------- who listens where


def test_rasa_and_the_action_server_listen_on_loopback_only(stack: Stack) -> None:
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    for port in (stack.cfg.rasa_port, stack.cfg.actions_port):
        assert _listening(port) == {loopback}, port


# --------------------------------------------------------------------------- Rasa's door


def test_the_gateway_itself_gets_the_dues(stack: Stack, victim: str) -> None:
    """Control for the attacks below: the data is there, and the signed path reaches it."""
    before = _user_turns(stack, victim)
    response = _post(stack, *_as_gateway(stack, victim, "mera bill kitna hai"))
    assert response.status_code == 200, response.text
    assert DUES in " ".join(m.get("text", "") for m in response.json())
    assert _user_turns(stack, victim) == before + 1


@pytest.mark.parametrize(
    "attack",
    [
        "no signature",
        "a made-up signature",
        "signed with a guessed key",
        "a signed request with the mobile changed to the victim's",
    ],
)
def test_an_unsigned_or_forged_request_is_refused(stack: Stack, victim: str, attack: str) -> None:
    before = _user_turns(stack, victim)
    body, headers = _as_gateway(stack, victim, "mera bill kitna hai")
    if attack == "no signature":
        headers = {"Content-Type": "application/json"}
    elif attack == "a made-up signature":
        headers = {signing.SIGNATURE_HEADER: "sha256=" + "0" * 64}
    elif attack == "signed with a guessed key":
        headers = {signing.SIGNATURE_HEADER: signing.sign(DEV_GATEWAY_SECRET, body)}
    else:
        body, headers = _as_gateway(stack, ATTACKER, "mera bill kitna hai")
        body = body.replace(ATTACKER.encode(), victim.encode())
    response = _post(stack, body, headers)
    assert response.status_code == 401
    assert response.json()["error"] in ("unsigned", "bad_signature")
    assert DUES not in response.text
    assert _user_turns(stack, victim) == before, "nothing reached the victim's conversation"


def test_a_huge_body_is_refused_before_its_signature_is_checked(stack: Stack) -> None:
    body = b'{"text": "' + b"x" * 200_000 + b'"}'
    response = _post(stack, body, {signing.SIGNATURE_HEADER: "sha256=" + "0" * 64})
    assert response.status_code == 413 and response.json() == {"error": "too_large"}


def test_identity_claimed_beside_the_signed_sender_is_ignored(stack: Stack, victim: str) -> None:
    """Even signed, a sender id, a mobile in metadata or a vouch in the body name nobody."""
    claims = {
        "sender": f"whatsapp:{victim}",
        "sender_id": f"whatsapp:{victim}",
        "metadata": {"mobile": victim, "role": "staff", "channel": "whatsapp"},
        signing.VOUCH_KEY: {"channel": "whatsapp", "mobile": victim, "role": "staff"},
    }
    victim_turns = _user_turns(stack, victim)
    response = _post(stack, *_as_gateway(stack, ATTACKER, f"{VICTIM_ACCOUNT} ka bill", **claims))
    assert response.status_code == 200, response.text
    assert DUES not in response.text
    tracker = _tracker(stack, ATTACKER)
    assert tracker["slots"]["mobile"] == ATTACKER
    assert _user_turns(stack, victim) == victim_turns


def test_rasas_rest_channel_is_gone(stack: Stack, victim: str) -> None:
    response = requests.post(
        f"{stack.rasa}/webhooks/rest/webhook",
        json={"sender": f"whatsapp:{victim}", "message": "mera bill kitna hai"},
        timeout=30,
    )
    assert response.status_code == 404
    assert DUES not in response.text


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_rasas_http_api_wants_its_token(stack: Stack, victim: str, token: str | None) -> None:
    _post(stack, *_as_gateway(stack, victim, "mera bill kitna hai"))  # the tracker holds the dues
    params = {"token": token} if token else {}
    conversation = f"{stack.rasa}/conversations/whatsapp:{victim}"
    calls = [
        requests.get(f"{conversation}/tracker", params=params, timeout=30),
        requests.post(
            f"{conversation}/messages",
            params=params,
            json={"text": "mera bill kitna hai", "sender": "user"},
            timeout=30,
        ),
        requests.post(
            f"{conversation}/trigger_intent",
            params=params,
            json={"name": "ask_bill_amount"},
            timeout=30,
        ),
        requests.post(
            f"{stack.rasa}/model/parse", params=params, json={"text": "bill"}, timeout=30
        ),
    ]
    for response in calls:
        assert response.status_code in (401, 403), (response.url, response.status_code)
        assert DUES not in response.text
    # Control: with the token the API answers, and the tracker does hold the dues.
    assert DUES in json.dumps(_tracker(stack, victim), ensure_ascii=False)


def test_a_replayed_request_is_refused(stack: Stack, victim: str) -> None:
    body, headers = _as_gateway(stack, victim, "mera bill kitna hai")
    first = _post(stack, body, headers)
    assert first.status_code == 200 and DUES in first.text  # control: it was a good request
    again = _post(stack, body, headers)
    assert again.status_code == 401 and again.json() == {"error": "replayed"}
    assert DUES not in again.text


def test_an_old_signed_request_is_refused(stack: Stack, victim: str) -> None:
    before = _user_turns(stack, victim)
    message = signing.new_message("whatsapp", victim, "consumer", "mera bill kitna hai")
    old = signing.GatewayMessage(
        **{**json.loads(message.body()), "sent_at": int(time.time()) - 5 * 60}
    )
    response = _post(stack, *signing.signed_request(stack.cfg.gateway_signing_secret, old))
    assert response.status_code == 401 and response.json() == {"error": "stale"}
    assert _user_turns(stack, victim) == before


# --------------------------------------------------------------------------- the action server


def _action_call(mobile: str) -> dict[str, Any]:
    """What Rasa posts to run action_bill_amount, with a mobile written into the metadata."""
    import rasa_sdk

    return {
        "next_action": "action_bill_amount",
        "sender_id": f"whatsapp:{mobile}",
        "version": rasa_sdk.__version__,
        "domain": domain(),
        "tracker": {
            "sender_id": f"whatsapp:{mobile}",
            "slots": {"mobile": mobile, "role": "consumer", "channel": "whatsapp"},
            "latest_message": {
                "text": "mera bill kitna hai",
                "intent": {"name": "ask_bill_amount", "confidence": 1.0},
                "entities": [],
                "message_id": "0" * 32,
                "metadata": {"mobile": mobile, "channel": "whatsapp", "role": "consumer"},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
    }


def test_the_action_server_wants_rasas_token(stack: Stack, victim: str) -> None:
    url, token = stack.actions.url, stack.env["ACTIONS_TOKEN"]
    for params in ({}, {"token": "wrong-token"}):
        call = requests.post(f"{url}/webhook", params=params, json=_action_call(victim), timeout=30)
        assert call.status_code == 401, call.text
        assert "utter_bill_details" not in call.text
        assert requests.get(f"{url}/actions", params=params, timeout=30).status_code == 401
    assert requests.get(f"{url}/health", timeout=30).status_code == 200
    names = requests.get(f"{url}/actions", params={"token": token}, timeout=30).json()
    assert {"name": "action_bill_amount"} in names  # control: the token opens it


def test_with_the_token_a_mobile_in_metadata_still_names_nobody(stack: Stack, victim: str) -> None:
    answer = requests.post(
        f"{stack.actions.url}/webhook",
        params={"token": stack.env["ACTIONS_TOKEN"]},
        json=_action_call(victim),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    said = [r.get("response") for r in answer.json()["responses"]]
    assert "utter_bill_details" not in said
    assert DUES not in answer.text and VICTIM_ACCOUNT not in answer.text


# --------------------------------------------------------------------------- a failed turn


def _row(stack: Stack, sid: str) -> InboundMessage | None:
    with session_scope(stack.engine) as session:
        return session.execute(
            select(InboundMessage).where(InboundMessage.message_sid == sid)
        ).scalar_one_or_none()


def _dead_letter(stack: Stack, inbound_id: int) -> DeadLetter | None:
    with session_scope(stack.engine) as session:
        return session.execute(
            select(DeadLetter).where(DeadLetter.inbound_message_id == inbound_id)
        ).scalar_one_or_none()


def test_action_server_killed_retries_dead_letters_and_replay_answers(
    stack: Stack, victim: str
) -> None:
    sender, sid = KILLED_ACTIONS_SENDER, new_sid()
    conn = redis.Redis.from_url(stack.redis_url)
    scheduled = ScheduledJobRegistry(INBOUND, connection=conn)
    stack.actions.kill()
    try:
        assert stack.post_message("mera bill kitna hai", sender, sid=sid).status_code == 200
        row = wait_for(lambda: _row(stack, sid), timeout=30)
        job_id = job_id_for(row.id)
        deadline = time.monotonic() + 300
        while (letter := _dead_letter(stack, row.id)) is None:
            assert time.monotonic() < deadline, "no dead letter"
            current = _row(stack, sid)
            assert current is not None and current.processed_at is None, "taken for answered"
            assert stack.sent(f"whatsapp:{sender}") == []
            if job_id in scheduled.get_job_ids():
                # RQ scheduled the retry after its back-off (5 s to 10 min); run it now.
                try:
                    scheduled.requeue(job_id)
                except InvalidJobOperation:
                    pass  # the worker's scheduler moved it first
            time.sleep(0.3)
        assert "RasaTurnFailed" in letter.error and "action_failed" in letter.error
        assert letter.attempts == 6  # the first try and five retries
        assert job_id in FailedJobRegistry(INBOUND, connection=conn).get_job_ids()
    finally:
        stack.actions.restart()

    replay = subprocess.run(
        bijli("replay-failed", "--id", str(letter.id)),
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replayed 1 dead letter(s)" in replay.stdout
    sent = wait_for(lambda: stack.sent(f"whatsapp:{sender}"), timeout=120)
    assert DUES in " ".join(m["body"] for m in sent)
    assert wait_for(lambda: (_row(stack, sid) or row).processed_at, timeout=30)
