"""The NLU gate: the trained model meets the targets on the held-out set, which stays held out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.rasa_runtime import training as model

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "bench" / "nlu_eval.py"


@pytest.mark.nlu_eval
@pytest.mark.slow
def test_held_out_accuracy_and_entity_f1_meet_the_targets(tmp_path: Path):
    path = model.model_path()
    if not path.exists():
        pytest.fail(f"no trained model at {path}: `make test` trains it first (`bijli train`)")
    result = subprocess.run(
        [sys.executable, str(EVAL), "--model", str(path), "--out", str(tmp_path / "results")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(result.stdout[-4000:])
    assert result.returncode == 0, (
        "NLU below target (intent accuracy >= 0.95, account_number F1 >= 0.98):\n"
        + result.stdout[-3000:]
        + result.stderr[-2000:]
    )


@pytest.mark.nlu_eval
def test_held_out_set_shares_no_text_with_training():
    result = subprocess.run(
        [sys.executable, str(EVAL), "--check-overlap"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
