"""Forwarded texts and scam markers are classified verify_payment_link, whatever DIET said."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.facts import FactExtractor
from bot.nlu.fraud import FraudFirst
from tests.nlu.components import message, trained

VERIFY = "verify_payment_link"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[FactExtractor, FraudFirst]:
    return (
        trained(FactExtractor, tmp_path_factory.mktemp("facts")),
        trained(FraudFirst, tmp_path_factory.mktemp("fraud")),
    )


def classify(pipeline: tuple[FactExtractor, FraudFirst], text: str, intent: str) -> dict:
    """The intent after the fraud check, DIET having said ``intent`` (0.9, then nlu_fallback)."""
    facts, fraud = pipeline
    msg = message(text)
    msg.set("intent", {"name": intent, "confidence": 0.9})
    msg.set(
        "intent_ranking",
        [
            {"name": intent, "confidence": 0.9},
            {"name": "nlu_fallback", "confidence": 0.5},
            {"name": VERIFY, "confidence": 0.05},
        ],
    )
    facts.process([msg])
    fraud.process([msg])
    return msg.as_dict()


@pytest.mark.parametrize(
    ("text", "diet_said"),
    [
        # The observation of issue 10: read as an account number and answered "not found".
        (
            "Dear customer your electricity will be disconnected tonight at 9.30 pm. "
            "Call officer 9876500000 immediately. is this real?",
            "ask_disconnection",
        ),
        ("Fwd: KESCO: aapka naya account number 2300000001 hai", "ask_new_account_number"),
        ("> Your bill is pending. ye msg aaya hai", "ask_bill_amount"),
        (
            "bill bharna hai, aadmi ne UPI id rajesh.k@okaxis di, bola aaj raat kat jayega",
            "pay_bill",
        ),
        ("KYC update karo warna bijli kat jayegi, http://uppcl-kyc.xyz/a", "ask_disconnection"),
        ("बिजली आज रात कट जाएगी, इस नंबर 9988001122 पर कॉल करें", "report_power_cut"),
    ],
)
def test_scams_and_forwards_go_to_verify_payment_link(
    pipeline: tuple[FactExtractor, FraudFirst], text: str, diet_said: str
) -> None:
    result = classify(pipeline, text, diet_said)
    assert result["intent"] == {"name": VERIFY, "confidence": 1.0}
    ranking = [r["name"] for r in result["intent_ranking"]]
    assert ranking[0] == VERIFY and ranking.count(VERIFY) == 1
    assert "nlu_fallback" not in ranking and diet_said in ranking
    assert "account_number" not in {e["entity"] for e in result.get("entities", [])}


@pytest.mark.parametrize(
    ("text", "diet_said"),
    [
        # The writer's own number next to "disconnect" or "officer" is no scam.
        ("mera connection katega kya? mera mobile no 9839012345 hai", "ask_disconnection"),
        ("officer se baat karni hai, mera number 9839067123 hai, call kar lijiye", "human_handoff"),
        # Scam words without anything to pay or call.
        ("kya aaj raat connection kat jayega bakaya hai", "ask_disconnection"),
        # The discom's own site is what the bot recommends.
        ("uppcl.org pe turant pay karu kya warna aaj raat kat jayega", "pay_bill"),
        # A phone number without scam words.
        ("mere papa ke mobile 9415026789 pe naya number nahi aaya", "ask_new_account_number"),
    ],
)
def test_other_messages_keep_their_intent(
    pipeline: tuple[FactExtractor, FraudFirst], text: str, diet_said: str
) -> None:
    assert classify(pipeline, text, diet_said)["intent"]["name"] == diet_said


def test_training_fails_without_the_marker_regexes(tmp_path: Path) -> None:
    component = FraudFirst.create(
        FraudFirst.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("fraud"),
        ExecutionContext(GraphSchema({}), "test"),
    )
    with pytest.raises(ValueError, match="forwarded"):
        component.train(TrainingData())
