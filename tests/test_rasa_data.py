"""The Rasa domain, rules and conversation tests: they validate, and the trained bot follows them.

``rasa test core`` only checks predictions: it never runs an action. So the same test stories
are also replayed against a live Rasa server and the real action server on demo data, and every
action and slot the stories name must happen for real.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from secrets import token_hex
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy.engine import Engine

from bot import signing, store
from bot.actions import guard
from bot.rasa_runtime import training as model
from bot.settings import ROOT, Settings
from tests.processes import BIN, bijli, free_port, running

RASA = str(BIN / "rasa")
CONVERSATIONS = ROOT / "tests" / "conversations"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
_UNUSED = re.compile(r"The utterance '(utter_\w+)' is not used in any story or rule")


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _responses_sent_by_actions() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "bot" / "actions").glob("*.py"):
        names |= set(re.findall(r"[\"'](utter_\w+)[\"']", path.read_text()))
    return names


def test_rasa_data_validates() -> None:
    result = _run(
        [
            RASA,
            "data",
            "validate",
            "--domain",
            "bot/intents",
            "--data",
            "data",
            "--config",
            "config.yml",
        ],
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The only warnings allowed: responses no rule mentions because an action sends them.
    warnings = [line for line in output.splitlines() if "UserWarning" in line]
    unexpected = [line for line in warnings if not _UNUSED.search(line)]
    assert not unexpected, "\n".join(unexpected)
    unused = {match.group(1) for line in warnings if (match := _UNUSED.search(line))}
    assert unused <= _responses_sent_by_actions(), unused - _responses_sent_by_actions()


# --------------------------------------------------------------------------- stories


def _story_files() -> list[Path]:
    return sorted(CONVERSATIONS.glob("test_*.yml"))


def _stories() -> list[dict[str, Any]]:
    stories: list[dict[str, Any]] = []
    for path in _story_files():
        stories.extend(yaml.safe_load(path.read_text())["stories"])
    return stories


def _trained_model() -> Path:
    path = model.model_path()
    if not path.exists():
        pytest.fail(f"no trained model at {path}: `make test` trains it (`bijli train`)")
    return path


def _write_endpoints(tmp_path: Path, actions_port: int, token: str = "") -> Path:
    # No tracker or lock store: in memory is what a test needs.
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n"
        + (f"  token: {token}\n" if token else "")
    )
    return endpoints


def test_conversation_files_hold_stories() -> None:
    # rasa test reads only files named test_*.yml; elsewhere stories would be skipped silently.
    assert sorted(CONVERSATIONS.glob("*.yml")) == _story_files()
    assert len(_stories()) >= 25


@pytest.mark.rasa
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_conversation_stories_pass_rasa_test(tmp_path: Path) -> None:
    trained = _trained_model()
    out = tmp_path / "results"
    endpoints = _write_endpoints(tmp_path, free_port())
    result = _run(
        [
            RASA,
            "test",
            "core",
            "--stories",
            str(CONVERSATIONS),
            "--model",
            str(trained),
            "--endpoints",
            str(endpoints),
            "--out",
            str(out),
            "--e2e",
        ],
        timeout=800,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "story_report.json").read_text())["conversation_accuracy"]
    # The failed stories carry "# predicted: ..." comments where the bot went another way.
    failures = (out / "failed_test_stories.yml").read_text()
    assert report["total"] == len(_stories()), report
    assert report["correct"] == report["total"], failures


# --------------------------------------------------------------------------- live replay

#: Demo accounts the stories use; neither belongs to the anonymous test sender.
DEMO_CONSUMERS = [
    dict(
        new_account_no="1234567890",
        old_account_no="456789",
        name="Ramesh Kumar",
        mobile="+919876543210",
        meter_type="postpaid",
        area="Kidwai Nagar",
    ),
    dict(
        new_account_no="2345678901",
        old_account_no="5678901",
        name="Sita Devi",
        mobile="+919812345678",
        meter_type="smart_prepaid",
        area="Govind Nagar",
    ),
]
# Entities in stories: [text](entity) or [text]{"entity": ..., "value": ...}.
_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def _load_demo_data(engine: Engine) -> None:
    with store.session_scope(engine) as session:
        for row in DEMO_CONSUMERS:
            session.add(store.Consumer(discom="KESCO", category="domestic", language="hi", **row))
        session.flush()  # no ORM relationships: the consumers must exist before their rows
        session.add(
            store.Bill(
                new_account_no="1234567890",
                bill_month="2026-10",
                amount_due_paise=123450,
                due_date=dt.date(2026, 11, 20),
            )
        )
        session.add(
            store.PrepaidBalance(
                new_account_no="2345678901",
                balance_paise=-1523400,
                as_of=dt.datetime(2026, 11, 5, 9, 0),
            )
        )
        session.add(
            store.DisconnectionNotice(
                new_account_no="2345678901",
                amount_to_avoid_paise=1523400,
                listed_on=dt.date(2026, 11, 1),
            )
        )


def _register_accounts(engine: Engine, sender: str, accounts: list[dict[str, str]]) -> None:
    """A story's own accounts (its ``metadata.accounts``), registered to its sender, with bills."""
    with store.session_scope(engine) as session:
        for account in accounts:
            session.add(
                store.Consumer(
                    discom="KESCO",
                    new_account_no=account["new"],
                    old_account_no=account.get("old"),
                    name="Ram Kumar",
                    mobile=sender.partition(":")[2],
                    category=account.get("category", "domestic"),
                    meter_type="postpaid",
                    area=account.get("area"),
                    language="hi",
                )
            )
        session.flush()
        for account in accounts:
            session.add(
                store.Bill(
                    new_account_no=account["new"],
                    bill_month="2026-10",
                    amount_due_paise=184500,
                    due_date=dt.date(2026, 11, 20),
                )
            )


Item = tuple[Any, ...]


def _expected_turns(story: dict[str, Any]) -> list[tuple[str, list[Item]]]:
    """(user text, [actions, active loops and slots in order]) per user turn of a story."""
    turns: list[tuple[str, list[Item]]] = []
    for step in story["steps"]:
        if "user" in step:
            turns.append((_ANNOTATION.sub(r"\1", step["user"]).strip(), []))
        elif "action" in step:
            turns[-1][1].append(("action", step["action"]))
        elif "active_loop" in step:
            turns[-1][1].append(("active_loop", step["active_loop"]))
        elif "slot_was_set" in step:
            for slot in step["slot_was_set"]:
                ((name, value),) = slot.items()
                turns[-1][1].append(("slot", name, value))
    return turns


def _live_turns(events: list[dict[str, Any]], slots: set[str]) -> list[list[Item]]:
    turns: list[list[Item]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            turns.append([])
        elif not turns:
            continue  # the session start before the first message
        elif kind == "action" and event["name"] != "action_listen":
            turns[-1].append(("action", event["name"]))
        elif kind == "active_loop":
            turns[-1].append(("active_loop", event.get("name")))
        elif kind == "slot" and event["name"] in slots:
            turns[-1].append(("slot", event["name"], event.get("value")))
    return turns


def _is_subsequence(expected: list[Item], actual: list[Item]) -> bool:
    remaining = iter(actual)
    return all(item in remaining for item in expected)


@pytest.mark.rasa
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_conversation_stories_happen_for_real(
    tmp_path: Path, settings: Settings, engine: Engine, redis_conn: object
) -> None:
    with _live_bot(tmp_path, settings, engine) as bot:
        mismatches = []
        for number, story in enumerate(_stories()):
            # Through the gateway's signed channel, from a mobile no account is registered to.
            sender = f"whatsapp:+91700000{number:04d}"
            _register_accounts(engine, sender, story.get("metadata", {}).get("accounts", []))
            expected = _expected_turns(story)
            for text, _ in expected:
                bot.say(sender, text)
            events = bot.events(sender)
            slots = {item[1] for _, items in expected for item in items if item[0] == "slot"}
            live = _live_turns(events, slots)
            assert len(live) == len(expected), story["story"]
            for (text, want), got in zip(expected, live, strict=True):
                want_actions = [i for i in want if i[0] == "action"]
                got_actions = [i for i in got if i[0] == "action"]
                if want_actions != got_actions or not _is_subsequence(want, got):
                    mismatches.append(f"{story['story']} / {text!r}:\n  want {want}\n  got  {got}")
        assert not mismatches, "\n".join(mismatches)


# --------------------------------------------------------------------------- live checks


class _LiveBot:
    """A conversation client for a live Rasa server: the gateway's signed channel, the API."""

    def __init__(self, url: str, secret: str, api_token: str) -> None:
        self.url = url
        self.secret = secret
        self.params = {"token": api_token}

    def say(self, sender: str, text: str, role: str = "consumer") -> None:
        """Post ``text`` as the gateway would, claiming ``role`` (its reading of staff.csv)."""
        channel, _, mobile = sender.partition(":")
        message = signing.new_message(channel, mobile, role, text)
        body, headers = signing.signed_request(self.secret, message)
        reply = requests.post(
            self.url + signing.WEBHOOK_PATH, data=body, headers=headers, timeout=60
        )
        reply.raise_for_status()
        assert reply.json(), f"no reply to {text!r}"

    def tracker(self, sender: str) -> dict[str, Any]:
        got = requests.get(
            f"{self.url}/conversations/{sender}/tracker", params=self.params, timeout=30
        )
        got.raise_for_status()
        return dict(got.json())

    def events(self, sender: str) -> list[dict[str, Any]]:
        return list(self.tracker(sender)["events"])

    def replace_events(self, sender: str, events: list[dict[str, Any]]) -> None:
        requests.put(
            f"{self.url}/conversations/{sender}/tracker/events",
            json=events,
            params=self.params,
            timeout=30,
        ).raise_for_status()


@contextlib.contextmanager
def _live_bot(tmp_path: Path, settings: Settings, engine: Engine) -> Iterator[_LiveBot]:
    """Real Rasa (the cached model) and the real action server, on the demo data."""
    trained = _trained_model()
    _load_demo_data(engine)
    actions_port, rasa_port = free_port(), free_port()
    secrets = {name: token_hex(16) for name in ("BIJLI_GATEWAY_SECRET", "ACTIONS_TOKEN", "API")}
    env = {
        **ENV,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": str(settings.redis_url),
        "BIJLI_GATEWAY_SECRET": secrets["BIJLI_GATEWAY_SECRET"],
        "ACTIONS_TOKEN": secrets["ACTIONS_TOKEN"],
    }
    endpoints = _write_endpoints(tmp_path, actions_port, secrets["ACTIONS_TOKEN"])
    rasa = f"http://127.0.0.1:{rasa_port}"
    with (
        running(
            "actions",
            bijli("actions-server", "--port", str(actions_port)),
            env=env,
            log_dir=tmp_path,
            ready_url=f"http://127.0.0.1:{actions_port}/health",
        ),
        running(
            "rasa",
            [
                RASA,
                "run",
                "--enable-api",
                "--auth-token",
                secrets["API"],
                "--model",
                str(trained),
                "--endpoints",
                str(endpoints),
                "--credentials",
                str(ROOT / "credentials.yml"),
                "--port",
                str(rasa_port),
            ],
            env=env,
            log_dir=tmp_path,
            ready_url=f"{rasa}/",
            timeout=300,
        ),
    ):
        yield _LiveBot(rasa, secrets["BIJLI_GATEWAY_SECRET"], secrets["API"])


def _bot_responses(events: list[dict[str, Any]]) -> list[str]:
    """The domain responses the bot sent, in order."""
    return [e["metadata"].get("utter_action") for e in events if e.get("event") == "bot"]


@pytest.mark.rasa
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_question_does_not_outlive_its_session(
    tmp_path: Path, settings: Settings, engine: Engine, redis_conn: object
) -> None:
    """pending_query (issue 9): Rasa carries every slot into a new session; the question must not.

    The session is made to expire for real: the conversation's events are moved back two hours
    (the domain's session_expiration_time is 60 minutes) through Rasa's own tracker API.
    """
    with _live_bot(tmp_path, settings, engine) as bot:
        same, later = "whatsapp:+919811110001", "whatsapp:+919811110002"
        for sender in (same, later):
            # An unregistered sender asks for a bill; the account form asks for the number.
            bot.say(sender, "bill kitna hai")
            assert _bot_responses(bot.events(sender))[-1] == "utter_ask_account_number"
        # The one who answers within the session gets the bill question answered.
        bot.say(same, "456789")
        assert _bot_responses(bot.events(same))[-1] == "utter_registered_mobile_only"

        two_hours_ago = [
            {**event, "timestamp": event["timestamp"] - 2 * 3600} for event in bot.events(later)
        ]
        bot.replace_events(later, two_hours_ago)
        bot.say(later, "456789")
        events = bot.events(later)
        latest = events[max(i for i, e in enumerate(events) if e["event"] == "session_started") :]
        assert [e["text"] for e in latest if e["event"] == "user"] == ["456789"]
        # The bare number asks its own question (its new number), not the expired bill question.
        assert _bot_responses(latest) == ["utter_new_number_lookup"]
        slots = bot.tracker(later)["slots"]
        assert slots["pending_query"] is None and slots["account_number"] == "1234567890"


#: Issue 9's messages, none of which gives an account number.
NOT_ACCOUNTS = [
    "maine 20-11-2026 ko 1500 rs bhara",
    "paid 150000 par bill me nahi dikha",
    "mobile 9876543210 pe call karo",
]


@pytest.mark.rasa
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_dates_amounts_and_mobiles_are_not_looked_up_as_accounts(
    tmp_path: Path, settings: Settings, engine: Engine, redis_conn: Any
) -> None:
    """Through the real NLU (whose regex tags any 6-8 or 10 digit run), Rasa and the actions."""
    registered = f"whatsapp:{DEMO_CONSUMERS[0]['mobile']}"
    with _live_bot(tmp_path, settings, engine) as bot:
        for number, text in enumerate(NOT_ACCOUNTS):
            for sender in (registered, f"whatsapp:+9198111111{number:02d}"):
                bot.say(sender, text)
                said = _bot_responses(bot.events(sender))
                assert "utter_account_not_found" not in said, (sender, text, said)
        # The control: a real account number does spend a stranger's lookup.
        bot.say("whatsapp:+919811111199", "khata 456789 ka naya number kya hai")
    lookups = [key.decode() for key in redis_conn.keys(f"{guard.KEY_PREFIX}:*")]
    assert lookups == [guard.day_key("+919811111199", dt.datetime.now(dt.timezone.utc))]
