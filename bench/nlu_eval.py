"""Evaluate the NLU model on the held-out set and gate on the targets.

Runs ``rasa test nlu`` on ``tests/nlu/test_nlu.yml`` (or only reads an existing
results directory) and prints intent accuracy, macro F1, the most confused intent
pairs, the same figures per register (Devanagari, Roman Hinglish, English), and the
F1 of the ``account_number`` entity. Exits 1 when intent accuracy or entity F1 is
below its target, 2 on a usage or input error.

    python bench/nlu_eval.py --model models/nlu.tar.gz --out var/nlu-results
    python bench/nlu_eval.py --results var/nlu-results
    python bench/nlu_eval.py --check-overlap

``--check-overlap`` checks that no test text equals or nearly equals a training
text (the held-out set must stay held out) and exits 1 if one does.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST = ROOT / "tests" / "nlu" / "test_nlu.yml"
DEFAULT_TRAIN = ROOT / "data" / "nlu"
DEFAULT_CONFIG = ROOT / "config.yml"

MIN_INTENT_ACCURACY = 0.95
"""Gate: share of held-out messages whose predicted intent (after fallback) is right."""

MIN_ENTITY_F1 = 0.98
"""Gate: F1 of account_number, for every extractor and for their union."""

ENTITY = "account_number"
REGISTERS = ("devanagari", "roman_hinglish", "english")
FALLBACK_INTENT = "nlu_fallback"

NEAR_JACCARD = 0.75
"""Token Jaccard at or above which a test text counts as a near copy of a training text."""

NEAR_RATIO = 0.92
"""Character similarity (difflib ratio) at or above which a test text counts as a near copy."""

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_HINGLISH_WORDS = frozenset(
    """
    hai h he hain kya kyaa kia kyu kyon nahi nhi nai nahin na mera meri mere mujhe
    hum aap ap tum karo kar karna karni krna kardo kro batao bata btao bhejo bhej do
    de dena chahiye chaiye kitna kitne kitni kab kb kaise kaha kahan ka ki ke ko me
    mein mai se pe par bhi abhi aur ya ye yeh wo woh wala wali naya nya purana bijli
    bijlee bil paisa pesa paise jama bhara bharna bakaya baki baaki raseed rasid
    light gayi gaya aayegi ji haan haa han bhai nhi thik theek sahi galat dhanyavad
    dhanyawad shukriya namaste namaskar kat kata kaat katega connection wala khata
    """.split()
)


def fallback_threshold(config: Path) -> float | None:
    """The FallbackClassifier threshold in the pipeline config, if there is one."""
    if not config.exists():
        return None
    data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    for component in data.get("pipeline") or []:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return None


def log(message: str) -> None:
    """Print one progress line."""
    print(f"[nlu_eval] {message}", flush=True)


def strip_annotations(text: str) -> str:
    """Turn Rasa's ``[value](entity)`` markup into the plain text a user would type."""
    return _ANNOTATION.sub(r"\1", text).strip()


def detect_register(text: str) -> str:
    """Guess the register of a message from its script and its words."""
    if _DEVANAGARI.search(text):
        return "devanagari"
    words = re.findall(r"[a-z]+", text.lower())
    if words and sum(w in _HINGLISH_WORDS for w in words) / len(words) >= 0.25:
        return "roman_hinglish"
    return "english"


@dataclass
class Example:
    """One example of an NLU YAML file."""

    text: str
    intent: str
    register: str
    source: str


def read_nlu_examples(path: Path) -> list[Example]:
    """Read intent examples from a Rasa 3 NLU YAML file, with their register.

    The register comes from ``metadata: {register: ...}`` on the example or on its
    intent block; without one it is detected from the text.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for block in data.get("nlu") or []:
        intent = block.get("intent")
        if not intent:
            continue
        block_register = (block.get("metadata") or {}).get("register")
        raw = block.get("examples") or []
        if isinstance(raw, str):
            items: list[tuple[str, str | None]] = [
                (line[2:], None) for line in raw.splitlines() if line.startswith("- ")
            ]
        else:
            items = [
                (str(item["text"]), (item.get("metadata") or {}).get("register")) for item in raw
            ]
        for text, register in items:
            plain = strip_annotations(text)
            examples.append(
                Example(
                    text=plain,
                    intent=intent,
                    register=register or block_register or detect_register(plain),
                    source=str(path),
                )
            )
    return examples


def read_training_examples(folder: Path) -> list[Example]:
    """Read every intent example under the training data folder."""
    examples: list[Example] = []
    for path in sorted(folder.glob("*.yml")):
        examples.extend(read_nlu_examples(path))
    return examples


# ------------------------------------------------------------------ overlap check


def normalise(text: str) -> str:
    """Lower-case, drop punctuation, squeeze repeated letters, mask digit runs.

    Works on categories rather than ``\\w``, which in ``re`` leaves out the
    Devanagari vowel signs and would split Hindi words apart.
    """
    kept = []
    for char in text.lower():
        category = unicodedata.category(char)
        if category == "Nd":
            kept.append("#")
        elif category[0] in "LM" or char.isspace():
            kept.append(char)
        else:
            kept.append(" ")
    squeezed = re.sub(r"(\S)\1+", r"\1", "".join(kept))
    return " ".join(squeezed.split())


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two token sets."""
    return len(a & b) / len(a | b) if a | b else 1.0


def check_overlap(test: list[Example], train: list[Example]) -> int:
    """Report test texts that equal or nearly equal a training text; return their count.

    A near match with a training text of the same intent is a leak and counts as a
    problem; one with another intent is a hard negative and is only listed, unless
    the texts are equal (then the labels contradict each other).
    """
    train_norm = [(normalise(e.text), set(normalise(e.text).split()), e) for e in train]
    problems = 0
    for example in test:
        norm = normalise(example.text)
        tokens = set(norm.split())
        if tokens <= {"#"}:
            # A bare account number has no phrasing to copy.
            continue
        for train_text, train_tokens, match in train_norm:
            score = jaccard(tokens, train_tokens)
            ratio = difflib.SequenceMatcher(None, norm, train_text).ratio()
            equal = norm == train_text
            if not (equal or score >= NEAR_JACCARD or ratio >= NEAR_RATIO):
                continue
            leak = equal or match.intent == example.intent
            problems += leak
            log(
                f"{'NEAR COPY' if leak else 'info: similar, other intent'} "
                f"jaccard={score:.2f} ratio={ratio:.2f} "
                f"test={example.text!r} ({example.intent}) "
                f"train={match.text!r} ({match.intent}, {Path(match.source).name})"
            )
    return problems


def check_training_duplicates(train: list[Example]) -> int:
    """Report pairs of training texts of one intent that are (near) copies of each other."""
    normalised = [(normalise(e.text), set(normalise(e.text).split()), e) for e in train]
    problems = 0
    for i, (text_a, tokens_a, a) in enumerate(normalised):
        if tokens_a <= {"#"}:
            continue
        for text_b, tokens_b, b in normalised[i + 1 :]:
            equal = text_a == text_b
            if not equal and a.intent != b.intent:
                continue
            score = jaccard(tokens_a, tokens_b)
            ratio = difflib.SequenceMatcher(None, text_a, text_b).ratio()
            if equal or score >= 0.8 or ratio >= NEAR_RATIO:
                problems += 1
                log(
                    f"TRAINING NEAR DUPLICATE jaccard={score:.2f} ratio={ratio:.2f} "
                    f"{a.text!r} ({a.intent}) ~ {b.text!r} ({b.intent})"
                )
    return problems


def check_test_set(test: list[Example]) -> int:
    """Report duplicate test texts and registers with fewer than 5 examples."""
    problems = 0
    seen: Counter[str] = Counter(normalise(e.text) for e in test if normalise(e.text) != "#")
    for text, count in seen.items():
        if count > 1:
            problems += 1
            log(f"DUPLICATE in test set: {text!r} x{count}")
    per = Counter((e.intent, e.register) for e in test)
    for intent in sorted({e.intent for e in test}):
        counts = {r: per[(intent, r)] for r in REGISTERS}
        if sum(counts.values()) < 15 or min(counts.values()) < 5:
            problems += 1
            log(f"TOO FEW test examples for {intent}: {counts}")
    return problems


# ------------------------------------------------------------------ metrics


@dataclass
class IntentScores:
    """Intent accuracy, macro F1 over the gold intents, and confused pairs."""

    n: int
    accuracy: float
    macro_f1: float
    confusions: list[tuple[tuple[str, str], int]] = field(default_factory=list)
    per_intent_f1: dict[str, float] = field(default_factory=dict)


def score_intents(rows: list[tuple[str, str]]) -> IntentScores:
    """Score (gold, predicted) intent pairs; macro F1 averages over gold intents only."""
    if not rows:
        return IntentScores(0, 0.0, 0.0)
    correct = sum(g == p for g, p in rows)
    gold = sorted({g for g, _ in rows})
    f1s: dict[str, float] = {}
    for intent in gold:
        tp = sum(g == intent and p == intent for g, p in rows)
        fp = sum(g != intent and p == intent for g, p in rows)
        fn = sum(g == intent and p != intent for g, p in rows)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1s[intent] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    confusions = Counter((g, p) for g, p in rows if g != p).most_common()
    return IntentScores(
        n=len(rows),
        accuracy=correct / len(rows),
        macro_f1=sum(f1s.values()) / len(f1s),
        confusions=confusions,
        per_intent_f1=f1s,
    )


@dataclass
class EntityScores:
    """Span-level precision, recall and F1 of one entity type."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, gold: set[tuple[int, int]], predicted: set[tuple[int, int]]) -> None:
        self.tp += len(gold & predicted)
        self.fp += len(predicted - gold)
        self.fn += len(gold - predicted)


def load_json(path: Path) -> Any:
    """Load a JSON file, or an empty list when Rasa did not write it (nothing to report)."""
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def entity_messages(results: Path, extractors: list[str]) -> dict[str, dict[str, Any]]:
    """Collect, per message text, gold and predicted entities from Rasa's files.

    Rasa writes a message to ``X_successes.json`` and/or ``X_errors.json`` when it
    has a gold or predicted entity, and each record carries every extractor's
    predictions, so together they cover every message that matters for F1.
    """
    messages: dict[str, dict[str, Any]] = {}
    for extractor in extractors:
        for suffix in ("successes", "errors"):
            for record in load_json(results / f"{extractor}_{suffix}.json"):
                messages.setdefault(record["text"], record)
    return messages


def spans(entities: list[dict[str, Any]], extractor: str | None = None) -> set[tuple[int, int]]:
    """The (start, end) spans of account_number, from one extractor or from all."""
    return {
        (e["start"], e["end"])
        for e in entities
        if e.get("entity") == ENTITY and (extractor is None or e.get("extractor") == extractor)
    }


# ------------------------------------------------------------------ running rasa


def find_rasa() -> str:
    """The rasa executable: $RASA_BIN, the one beside this Python, or the one on PATH."""
    if os.environ.get("RASA_BIN"):
        return os.environ["RASA_BIN"]
    beside = Path(sys.executable).parent / "rasa"
    if beside.exists():
        return str(beside)
    found = shutil.which("rasa")
    if not found:
        raise SystemExit("rasa not found: set RASA_BIN or run with the project's Python")
    return found


def run_rasa_test(model: Path, test_file: Path, out: Path) -> None:
    """Run ``rasa test nlu`` writing successes and errors to ``out``; log in out/rasa_test.log."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        find_rasa(),
        "test",
        "nlu",
        "--nlu",
        str(test_file),
        "--model",
        str(model),
        "--out",
        str(out),
        "--successes",
        "--no-plot",
    ]
    log_path = out / "rasa_test.log"
    log(f"running: {' '.join(command)}")
    log(f"rasa output goes to {log_path}")
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            handle.write(line)
            if "Loading model" in line or "Running model" in line or "Evaluation for" in line:
                log(f"  {time.monotonic() - started:5.0f}s {line.strip()[-100:]}")
        code = process.wait()
    log(f"rasa test nlu finished in {time.monotonic() - started:.0f}s with exit code {code}")
    if code != 0:
        raise SystemExit(f"rasa test nlu failed (exit {code}); see {log_path}")


# ------------------------------------------------------------------ report


def print_confusions(
    confusions: list[tuple[tuple[str, str], int]], limit: int, indent: str
) -> None:
    """Print the most frequent (gold -> predicted) pairs."""
    if not confusions:
        print(f"{indent}(none)")
    for (gold, predicted), count in confusions[:limit]:
        print(f"{indent}{count:3d}  {gold} -> {predicted}")


def evaluate(
    results: Path, test_file: Path, top: int, threshold: float | None
) -> tuple[float, float]:
    """Print the report for a results directory; return (intent accuracy, entity F1 gate value)."""
    report_path = results / "intent_report.json"
    if not report_path.exists():
        raise SystemExit(f"{report_path} not found: run with --model first")
    rasa_report = load_json(report_path)
    predictions = load_json(results / "intent_successes.json") + load_json(
        results / "intent_errors.json"
    )
    if not predictions:
        raise SystemExit(
            f"no per-message predictions in {results}: rasa test nlu needs --successes"
        )
    registers = {e.text: e.register for e in read_nlu_examples(test_file)}
    rows = [
        (
            p["intent"],
            p["intent_prediction"]["name"] or "None",
            registers.get(p["text"].strip(), detect_register(p["text"])),
            float(p["intent_prediction"]["confidence"] or 0.0),
        )
        for p in predictions
    ]
    overall = score_intents([(g, p) for g, p, _, _ in rows])
    # `rasa test nlu` undoes the FallbackClassifier's prediction before scoring, so
    # the figures above are for the top intent; this one counts low confidence as
    # a miss, as the bot (which then shows the help menu) would.
    low_confidence = [(g == p, c < threshold) for g, p, _, c in rows if threshold is not None]
    below = sum(low for _, low in low_confidence)
    right_but_low = sum(right and low for right, low in low_confidence)
    with_fallback = (
        sum(right and not low for right, low in low_confidence) / len(rows)
        if low_confidence
        else None
    )

    extractors = sorted(
        path.name[: -len("_report.json")]
        for path in results.glob("*_report.json")
        if path.name != "intent_report.json" and not path.name.startswith("response_")
    )
    messages = entity_messages(results, extractors)
    per_extractor = {name: EntityScores() for name in extractors}
    union = EntityScores()
    union_by_register = {r: EntityScores() for r in REGISTERS}
    for text, record in messages.items():
        gold = spans(record.get("entities") or [])
        predicted = record.get("predicted_entities") or []
        for name in extractors:
            per_extractor[name].add(gold, spans(predicted, name))
        union.add(gold, spans(predicted))
        register = registers.get(text.strip(), detect_register(text))
        union_by_register.setdefault(register, EntityScores()).add(gold, spans(predicted))

    print()
    print("== NLU held-out evaluation ==")
    print(f"test set     : {test_file} ({overall.n} messages)")
    print(f"results      : {results}")
    print(f"intent accuracy : {overall.accuracy:.4f}   (target >= {MIN_INTENT_ACCURACY})")
    print(
        f"intent macro F1 : {overall.macro_f1:.4f}   "
        f"(rasa's macro avg incl. {FALLBACK_INTENT} column: "
        f"{rasa_report.get('macro avg', {}).get('f1-score', float('nan')):.4f})"
    )
    if with_fallback is not None:
        print(
            f"below fallback threshold {threshold}: {below} messages "
            f"(correct top intent but low confidence: {right_but_low}); "
            f"accuracy counting those as {FALLBACK_INTENT}: {with_fallback:.4f}"
        )
    print("most confused intent pairs (gold -> predicted):")
    print_confusions(overall.confusions, top, "  ")
    weakest = sorted(overall.per_intent_f1.items(), key=lambda kv: kv[1])[:5]
    print("weakest intents (F1): " + ", ".join(f"{k} {v:.3f}" for k, v in weakest))

    print()
    print("by register:")
    for register in REGISTERS:
        subset = [(g, p) for g, p, r, _ in rows if r == register]
        scores = score_intents(subset)
        ent = union_by_register.get(register, EntityScores())
        print(
            f"  {register:15s} n={scores.n:3d}  accuracy={scores.accuracy:.4f}  "
            f"macro F1={scores.macro_f1:.4f}  {ENTITY} F1={ent.f1:.4f} "
            f"(tp={ent.tp} fp={ent.fp} fn={ent.fn})"
        )
        print_confusions(scores.confusions, 3, "      ")
    others = {r for _, _, r, _ in rows} - set(REGISTERS)
    if others:
        print(f"  (unknown registers in test file: {sorted(others)})")

    print()
    print(f"{ENTITY} entity (span level):")
    for name, extracted in per_extractor.items():
        token_f1 = load_json(results / f"{name}_report.json").get(ENTITY, {}).get("f1-score")
        token = f"  rasa token-level F1={token_f1:.4f}" if token_f1 is not None else ""
        print(
            f"  {name:22s} P={extracted.precision:.4f} R={extracted.recall:.4f} "
            f"F1={extracted.f1:.4f} (tp={extracted.tp} fp={extracted.fp} fn={extracted.fn}){token}"
        )
    print(
        f"  {'union (what slots see)':22s} P={union.precision:.4f} R={union.recall:.4f} "
        f"F1={union.f1:.4f} (tp={union.tp} fp={union.fp} fn={union.fn})"
    )
    for text, record in messages.items():
        gold = spans(record.get("entities") or [])
        for name in extractors:
            predicted = spans(record.get("predicted_entities") or [], name)
            if gold != predicted:
                print(f"    miss [{name}] {text!r} gold={sorted(gold)} got={sorted(predicted)}")

    gate_f1 = min([union.f1] + [e.f1 for e in per_extractor.values()])
    if not extractors:
        log(f"no entity reports in {results}")
        gate_f1 = 0.0
    return overall.accuracy, gate_f1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run or read the evaluation, and apply the gate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="trained model .tar.gz to test")
    source.add_argument("--results", type=Path, help="existing `rasa test nlu` output to read")
    source.add_argument(
        "--check-overlap",
        action="store_true",
        help="check the test set against the training data and exit",
    )
    parser.add_argument("--out", type=Path, help="where `rasa test nlu` writes (with --model)")
    parser.add_argument("--nlu", type=Path, default=DEFAULT_TEST, help="held-out test file")
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="training data folder")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="pipeline config, for the fallback threshold",
    )
    parser.add_argument("--top", type=int, default=10, help="confused pairs to list")
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=float(os.environ.get("NLU_MIN_ACCURACY", MIN_INTENT_ACCURACY)),
    )
    parser.add_argument(
        "--min-entity-f1",
        type=float,
        default=float(os.environ.get("NLU_MIN_ENTITY_F1", MIN_ENTITY_F1)),
    )
    args = parser.parse_args(argv)

    if args.check_overlap:
        test = read_nlu_examples(args.nlu)
        train = read_training_examples(args.train)
        log(f"checking {len(test)} test texts against {len(train)} training texts")
        problems = (
            check_test_set(test) + check_training_duplicates(train) + check_overlap(test, train)
        )
        log("overlap check: " + ("OK" if not problems else f"{problems} problem(s)"))
        return 1 if problems else 0

    if args.model:
        if not args.out:
            parser.error("--model needs --out")
        if not args.model.exists():
            parser.error(f"model {args.model} not found")
        run_rasa_test(args.model.resolve(), args.nlu.resolve(), args.out.resolve())
        results = args.out
    else:
        results = args.results

    accuracy, entity_f1 = evaluate(results, args.nlu, args.top, fallback_threshold(args.config))
    print()
    failed = []
    if accuracy < args.min_accuracy:
        failed.append(f"intent accuracy {accuracy:.4f} < {args.min_accuracy}")
    if entity_f1 < args.min_entity_f1:
        failed.append(f"{ENTITY} F1 {entity_f1:.4f} < {args.min_entity_f1}")
    if failed:
        log("GATE FAILED: " + "; ".join(failed))
        return 1
    log(
        f"gate passed: intent accuracy {accuracy:.4f} >= {args.min_accuracy}, "
        f"{ENTITY} F1 {entity_f1:.4f} >= {args.min_entity_f1}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
