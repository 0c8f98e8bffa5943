"""bench/nlu_eval.py's gate fails when an account_number is found on a date or a phone number."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bot.settings import ROOT


def _nlu_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nlu_eval", ROOT / "bench" / "nlu_eval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    sys.modules.setdefault("nlu_eval", module)
    spec.loader.exec_module(module)
    return module


TEST_SET = """version: "3.1"
nlu:
- intent: payment_not_reflected
  metadata: {register: sms}
  examples: |
    - maine 20-11-2026 ko 1500 rs bhara tha
- intent: inform_account_number
  metadata: {register: sms}
  examples: |
    - a/c 2300000001 hai
"""
DATE_TEXT = "maine 20-11-2026 ko 1500 rs bhara tha"
ACCOUNT_TEXT = "a/c 2300000001 hai"


def _results(folder: Path, diet_on_the_date: bool) -> None:
    """A `rasa test nlu` output: both intents right; DIET perhaps tags the date as an account."""
    folder.mkdir(parents=True)
    intents = [
        {"text": DATE_TEXT, "intent": "payment_not_reflected"},
        {"text": ACCOUNT_TEXT, "intent": "inform_account_number"},
    ]
    successes = [
        {**i, "intent_prediction": {"name": i["intent"], "confidence": 0.9}} for i in intents
    ]
    (folder / "intent_report.json").write_text(json.dumps({"macro avg": {"f1-score": 1.0}}))
    (folder / "intent_successes.json").write_text(json.dumps(successes))
    account = {"entity": "account_number", "start": 4, "end": 14, "value": "2300000001"}
    date = {"entity": "date", "start": 6, "end": 16, "value": "2026-11-20"}
    # Each record carries every extractor's predictions, as Rasa writes them.
    both = [{**account, "extractor": e} for e in ("FastLoadDIETClassifier", "RegexEntityExtractor")]
    records: dict[str, list[dict[str, Any]]] = {
        "successes": [{"text": ACCOUNT_TEXT, "entities": [account], "predicted_entities": both}],
        "errors": [],
    }
    predicted = [{**date, "extractor": "FactExtractor"}]
    if diet_on_the_date:
        predicted.append(
            {
                **date,
                "entity": "account_number",
                "value": "20-11-2026",
                "extractor": "FastLoadDIETClassifier",
            }
        )
    records["errors" if diet_on_the_date else "successes"].append(
        {"text": DATE_TEXT, "entities": [date], "predicted_entities": predicted}
    )
    for extractor in ("FastLoadDIETClassifier", "RegexEntityExtractor", "FactExtractor"):
        (folder / f"{extractor}_report.json").write_text("{}")
    for extractor in ("FastLoadDIETClassifier", "RegexEntityExtractor", "FactExtractor"):
        for kind, rows in records.items():
            (folder / f"{extractor}_{kind}.json").write_text(json.dumps(rows))


@pytest.mark.parametrize(("diet_on_the_date", "code"), [(False, 0), (True, 1)])
def test_the_gate_counts_an_account_number_on_a_date_as_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], diet_on_the_date: bool, code: int
) -> None:
    test_file = tmp_path / "test_set.yml"
    test_file.write_text(TEST_SET, encoding="utf-8")
    _results(tmp_path / "results", diet_on_the_date)
    argv = ["--results", str(tmp_path / "results"), "--nlu", str(test_file)]
    assert _nlu_eval().main(argv) == code
    out = capsys.readouterr().out
    assert "date     P=1.0000 R=1.0000" in out
    if diet_on_the_date:
        assert "account_number precision 0.5000 < 1.0" in out


# The held-out sets' overlap check -------------------------------------------------------------


def _example(text: str, intent: str) -> Any:
    return _nlu_eval().Example(text, intent, "hinglish", "data/nlu/test.yml")


def test_the_overlap_check_finds_near_copies_and_lets_other_texts_be(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nlu_eval = _nlu_eval()
    train = [
        _example("mera bijli ka bill kitna baki hai", "ask_bill"),
        _example("light kab aayegi bhaiya", "report_power_cut"),
        _example("mera naya account number kya hai", "ask_new_account_number"),
    ]
    test = [
        _example("mera bijli ka bil kitna baki hai", "ask_bill"),  # one letter off: a leak
        _example("mera naya account numbr kya hai", "ask_new_account_number"),  # by ratio only
        _example("kab aayegi light bhaiya", "ask_bill"),  # near, another intent: listed only
        _example("receipt chahiye", "ask_receipt"),  # nothing like any training text
        _example("1234567890", "inform_account_number"),  # a bare number: no phrasing
    ]

    assert nlu_eval.check_overlap(test, train) == 2
    out = capsys.readouterr().out
    assert out.count("NEAR COPY") == 2 and "mera bijli ka bil kitna" in out
    assert "jaccard=0.71 ratio=0.98 test='mera naya account numbr kya hai'" in out
    assert out.count("info: similar, other intent") == 1 and "kab aayegi light" in out
    assert "receipt" not in out

    train.append(_example("mera bijli ka bill kitna baaki hai", "ask_bill"))
    assert nlu_eval.check_training_duplicates(train) == 1
    assert "TRAINING NEAR DUPLICATE" in capsys.readouterr().out


def test_ratio_if_near_skips_only_pairs_that_cannot_reach_the_threshold() -> None:
    import difflib

    from hypothesis import given, settings
    from hypothesis import strategies as st

    ratio_if_near = _nlu_eval().ratio_if_near
    texts = st.text(alphabet="abcdeh kमरा", max_size=40)

    @settings(max_examples=500, deadline=None)
    @given(texts, texts, st.sampled_from([0.5, 0.8, 0.92]))
    def agrees(a: str, b: str, threshold: float) -> None:
        full = difflib.SequenceMatcher(None, a, b).ratio()
        assert ratio_if_near(difflib.SequenceMatcher(None, a, b), threshold, True) == full
        quick = ratio_if_near(difflib.SequenceMatcher(None, a, b), threshold, False)
        assert (quick >= threshold) == (full >= threshold)
        if full >= threshold:
            assert quick == full

    agrees()
