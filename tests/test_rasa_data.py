"""The Rasa domain, rules and conversation tests: they validate, and the trained bot follows them.

``rasa test core`` only checks predictions: it never runs an action. So the same test stories
are also replayed against a live Rasa server and the real action server on demo data, and every
action and slot the stories name must happen for real.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy.engine import Engine

from bot import store
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


def _write_endpoints(tmp_path: Path, actions_port: int) -> Path:
    # No tracker or lock store: in memory is what a test needs.
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{actions_port}/webhook\n")
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
    trained = _trained_model()
    _load_demo_data(engine)
    actions_port, rasa_port = free_port(), free_port()
    env = {**ENV, "DATABASE_URL": settings.database_url, "REDIS_URL": str(settings.redis_url)}
    endpoints = _write_endpoints(tmp_path, actions_port)
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
            ready_url=f"{rasa}/status",
            timeout=300,
        ),
    ):
        mismatches = []
        for number, story in enumerate(_stories()):
            sender = f"replay-{number}"
            expected = _expected_turns(story)
            for text, _ in expected:
                reply = requests.post(
                    f"{rasa}/webhooks/rest/webhook",
                    json={"sender": sender, "message": text},
                    timeout=60,
                )
                reply.raise_for_status()
                assert reply.json(), f"no reply to {text!r} in {story['story']!r}"
            events = requests.get(f"{rasa}/conversations/{sender}/tracker", timeout=30).json()[
                "events"
            ]
            slots = {item[1] for _, items in expected for item in items if item[0] == "slot"}
            live = _live_turns(events, slots)
            assert len(live) == len(expected), story["story"]
            for (text, want), got in zip(expected, live, strict=True):
                want_actions = [i for i in want if i[0] == "action"]
                got_actions = [i for i in got if i[0] == "action"]
                if want_actions != got_actions or not _is_subsequence(want, got):
                    mismatches.append(f"{story['story']} / {text!r}:\n  want {want}\n  got  {got}")
        assert not mismatches, "\n".join(mismatches)
