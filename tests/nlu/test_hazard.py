"""Danger words in three registers raise report_power_cut and a hazard; "no power" does not."""

from __future__ import annotations

import pytest

from bot.nlu.hazard import SafetyFirst, find_hazards, negated
from tests.nlu.components import message, trained


@pytest.fixture(scope="module")
def safety(tmp_path_factory: pytest.TempPathFactory) -> SafetyFirst:
    return trained(SafetyFirst, tmp_path_factory.mktemp("hazard"))


def classify(safety: SafetyFirst, text: str, diet_said: str = "ask_bill_amount") -> dict:
    """The message after SafetyFirst, DIET having said ``diet_said`` (0.6, then nlu_fallback)."""
    msg = message(text)
    msg.set("intent", {"name": diet_said, "confidence": 0.6})
    msg.set(
        "intent_ranking",
        [
            {"name": diet_said, "confidence": 0.6},
            {"name": "nlu_fallback", "confidence": 0.5},
            {"name": "report_power_cut", "confidence": 0.1},
        ],
    )
    safety.process([msg])
    return msg.as_dict()


def hazards(parsed: dict) -> list[str]:
    return [e["value"] for e in parsed.get("entities", []) if e["entity"] == "hazard"]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # The observation of issue 10: a cut and sparks, from an unknown number.
        (
            "subah se light nahi hai Kidwai Nagar me, transformer se chingari nikal rahi thi",
            "spark",
        ),
        ("ट्रांसफार्मर से चिंगारी निकल रही है", "spark"),
        ("sparks coming out of the pole", "spark"),
        ("CHINGARI NIKAL RAHI H KHAMBE SE", "spark"),
        ("gali me wire gira hai", "wire"),
        ("सड़क पर तार टूटा पड़ा है", "wire"),
        ("a live wire has fallen on the road", "wire"),
        ("bijli ka taar toot kar latak raha hai", "wire"),
        ("khambe me current aa raha hai", "current"),
        ("दीवार में करंट आ रहा है", "current"),
        ("there is current in the pole", "current"),
        ("gate chhoone par current lag raha hai", "current"),
        ("meter me aag lag gayi", "fire"),
        ("मीटर में आग लग गई है", "fire"),
        ("fire in the transformer", "fire"),
        ("transformer se dhuan nikal raha hai", "fire"),
    ],
)
def test_a_danger_raises_report_power_cut_with_its_kind(
    safety: SafetyFirst, text: str, kind: str
) -> None:
    parsed = classify(safety, text)
    assert parsed["intent"] == {"name": "report_power_cut", "confidence": 1.0}
    assert parsed["intent_ranking"][0]["name"] == "report_power_cut"
    assert "nlu_fallback" not in [r["name"] for r in parsed["intent_ranking"]]
    assert hazards(parsed)[0] == kind


@pytest.mark.parametrize(
    "text",
    [
        # No power is not a danger.
        "current nahi hai",
        "subah se current nahi hai",
        "करंट नहीं है",
        "current nahi aa raha khambe pe",
        "mera current bill kitna hai",
        "करंट बिल कितना है",
        "what is my current balance",
        # Negated dangers.
        "chingari nahi nikli bas light chali gayi",
        "no sparks, just no power",
        "aag nahi lagi, meter band hai",
        # Words that look alike.
        "light jal rahi hai ab",
        "aage wali gali me light nahi",
        "bijli nahi hai 3 ghante se",
        "tar light kab aayegi",
    ],
)
def test_no_danger_leaves_the_message_alone(safety: SafetyFirst, text: str) -> None:
    parsed = classify(safety, text)
    assert parsed["intent"]["name"] == "ask_bill_amount"
    assert hazards(parsed) == []


def test_the_entity_spans_the_danger_words() -> None:
    import re

    text = "transformer se chingari nikal rahi thi"
    [found] = find_hazards(text, {"spark": [re.compile("chingari")]})
    assert text[found["start"] : found["end"]] == "chingari"
    assert (found["entity"], found["value"]) == ("hazard", "spark")


def test_negation_looks_after_the_danger_and_only_just_before_it() -> None:
    text = "light nahi hai, chingari nikal rahi thi"
    start = text.index("chingari")
    assert not negated(text, start, start + len("chingari"))
    text = "chingari nahi nikli"
    assert negated(text, 0, len("chingari"))
    text = "no sparks here"
    assert negated(text, 3, 9)


def test_training_needs_every_kind_of_danger(tmp_path) -> None:
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.training_data import TrainingData

    component = SafetyFirst.create(
        SafetyFirst.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("SafetyFirst"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    with pytest.raises(ValueError, match="hazard_spark"):
        component.train(TrainingData())
