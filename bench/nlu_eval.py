"""Evaluate the NLU model on the held-out sets and gate on the targets.

Runs ``rasa test nlu`` on each held-out set (``tests/nlu/test_nlu.yml``, the clean
phrasings; ``tests/nlu/test_regional.yml``, regional and messy language), or only reads
existing results, and prints intent accuracy, macro F1, the most confused intent pairs,
the same figures per register, the precision, recall and F1 of the ``account_number``
entity per extractor, and how well the other facts (date, amount, utr, mobile, time,
area) are found. Exits 1 when a set misses a target (intent accuracy, account_number F1
or precision), 2 on a usage or input error.

    python bench/nlu_eval.py --model models/nlu.tar.gz --out var/nlu-results
    python bench/nlu_eval.py --model models/nlu.tar.gz --out var/r --nlu tests/nlu/test_nlu.yml
    python bench/nlu_eval.py --results var/nlu-results
    python bench/nlu_eval.py --check-overlap

With ``--out DIR`` every set writes to ``DIR/<set name>``. ``--check-overlap`` checks
that no test text equals or nearly equals a training text (the held-out sets must stay
held out) and exits 1 if one does.
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
DEFAULT_TRAIN = ROOT / "data" / "nlu"
DEFAULT_CONFIG = ROOT / "config.yml"

MIN_INTENT_ACCURACY = 0.95
"""Gate: share of held-out messages whose predicted intent (after fallback) is right."""

MIN_ENTITY_F1 = 0.98
"""Gate: F1 of account_number, for every extractor and for their union."""

MIN_ENTITY_PRECISION = 1.0
"""Gate: precision of account_number, for every extractor and for their union: a date, an
amount, a UTR or a phone number taken for an account number is never acceptable."""

ENTITY = "account_number"
FALLBACK_INTENT = "nlu_fallback"

FACT_EXTRACTORS = frozenset({"FactExtractor", "SafetyFirst"})
"""Extractors of the other facts (date, amount, ...): reported per entity, not gated on
account_number, which they never produce."""


@dataclass(frozen=True)
class HeldOutSet:
    """A held-out test file, the registers it is written in, and how full it must be."""

    path: Path
    registers: tuple[str, ...]
    min_per_intent: int
    min_per_register: int
    """Per intent and register; 0 when a register belongs to some intents only."""

    @property
    def name(self) -> str:
        return self.path.stem


HELD_OUT = (
    HeldOutSet(
        ROOT / "tests" / "nlu" / "test_nlu.yml",
        ("devanagari", "roman_hinglish", "english"),
        min_per_intent=15,
        min_per_register=5,
    ),
    HeldOutSet(
        ROOT / "tests" / "nlu" / "test_regional.yml",
        (
            "regional_devanagari",
            "regional_roman",
            "sms",
            "caps",
            "long",
            "forwarded",
            "devanagari_english",
        ),
        min_per_intent=10,
        min_per_register=0,
    ),
)
DEFAULT_TEST = HELD_OUT[0].path

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


def ratio_if_near(matcher: difflib.SequenceMatcher, threshold: float, wanted: bool) -> float:
    """``matcher.ratio()``, or 0.0 when it is not ``wanted`` and cannot reach ``threshold``.

    ``real_quick_ratio`` and ``quick_ratio`` are difflib's cheap upper bounds of ``ratio``: a
    pair below the threshold on either is below it on ``ratio`` too, so the full comparison
    (most of this check's time) runs only for pairs that may be near copies.
    """
    if not wanted and (matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold):
        return 0.0
    return matcher.ratio()


def check_overlap(test: list[Example], train: list[Example]) -> int:
    """Report test texts that equal or nearly equal a training text; return their count.

    A near match with a training text of the same intent is a leak and counts as a
    problem; one with another intent is a hard negative and is only listed, unless
    the texts are equal (then the labels contradict each other).
    """
    train_norm = [(normalise(e.text), set(normalise(e.text).split()), e) for e in train]
    # One matcher per training text: SequenceMatcher indexes its second sequence once.
    matchers = [difflib.SequenceMatcher(None, "", text) for text, _, _ in train_norm]
    problems = 0
    for example in test:
        norm = normalise(example.text)
        tokens = set(norm.split())
        if tokens <= {"#"}:
            # A bare account number has no phrasing to copy.
            continue
        for (train_text, train_tokens, match), matcher in zip(train_norm, matchers, strict=True):
            score = jaccard(tokens, train_tokens)
            equal = norm == train_text
            matcher.set_seq1(norm)
            ratio = ratio_if_near(matcher, NEAR_RATIO, equal or score >= NEAR_JACCARD)
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
            matcher = difflib.SequenceMatcher(None, text_a, text_b)
            ratio = ratio_if_near(matcher, NEAR_RATIO, equal or score >= 0.8)
            if equal or score >= 0.8 or ratio >= NEAR_RATIO:
                problems += 1
                log(
                    f"TRAINING NEAR DUPLICATE jaccard={score:.2f} ratio={ratio:.2f} "
                    f"{a.text!r} ({a.intent}) ~ {b.text!r} ({b.intent})"
                )
    return problems


def held_out_set(path: Path) -> HeldOutSet:
    """The held-out set stored at ``path`` (any other file: registers from its metadata)."""
    for held in HELD_OUT:
        if held.path.resolve() == path.resolve():
            return held
    registers = tuple(dict.fromkeys(e.register for e in read_nlu_examples(path)))
    return HeldOutSet(path, registers, min_per_intent=1, min_per_register=0)


def check_test_set(test: list[Example], held: HeldOutSet) -> int:
    """Report duplicate test texts, unknown registers and intents with too few examples."""
    problems = 0
    seen: Counter[str] = Counter(normalise(e.text) for e in test if normalise(e.text) != "#")
    for text, count in seen.items():
        if count > 1:
            problems += 1
            log(f"DUPLICATE in test set: {text!r} x{count}")
    for example in test:
        if example.register not in held.registers:
            problems += 1
            log(f"UNKNOWN register {example.register!r} in test set: {example.text!r}")
    per = Counter((e.intent, e.register) for e in test)
    for intent in sorted({e.intent for e in test}):
        counts = {r: per[(intent, r)] for r in held.registers}
        if sum(counts.values()) < held.min_per_intent or min(counts.values()) < (
            held.min_per_register
        ):
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


def spans(
    entities: list[dict[str, Any]], extractor: str | None = None, entity: str = ENTITY
) -> set[tuple[int, int]]:
    """The (start, end) spans of one entity type, from one extractor or from all."""
    return {
        (e["start"], e["end"])
        for e in entities
        if e.get("entity") == entity and (extractor is None or e.get("extractor") == extractor)
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


# ------------------------------------------------------------------ before the filter


def raw_account_tags(model: Path, sets: list[HeldOutSet]) -> None:
    """Print account_number precision per extractor as tagged, before FactExtractor's filter.

    FactExtractor drops account_number tags that fall on a date, an amount, a UTR or a phone
    number, so the figures above show each extractor after that filter. These show what DIET
    and the account regex tagged on their own: the model's predict graph is run up to the node
    that feeds FactExtractor.
    """
    from rasa.core.agent import Agent
    from rasa.core.channels import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.training_data.loading import load_data

    processor = Agent.load(str(model)).processor
    assert processor is not None
    nodes = processor.model_metadata.predict_schema.nodes
    fact_nodes = [n for n, node in nodes.items() if node.uses.__name__ in FACT_EXTRACTORS]
    if not fact_nodes:
        log("no FactExtractor in the model: the figures above are already before any filter")
        return
    feeding = nodes[fact_nodes[0]].needs["messages"]
    print()
    print(f"{ENTITY} as tagged before FactExtractor's filter (output of {feeding}):")
    for held in sets:
        scores: dict[str, EntityScores] = {}
        for example in load_data(str(held.path)).intent_examples:
            text = example.get("text")
            gold = spans(example.get("entities") or [])
            result = processor.graph_runner.run(
                inputs={
                    PLACEHOLDER_MESSAGE: [UserMessage(text)],
                    PLACEHOLDER_TRACKER: DialogueStateTracker("raw", []),
                },
                targets=[feeding],
            )[feeding][0]
            tagged = result.get("entities") or []
            for name in {e.get("extractor") for e in tagged} | set(scores):
                if name:
                    scores.setdefault(name, EntityScores()).add(gold, spans(tagged, name))
            for entity in tagged:
                if entity.get("entity") == ENTITY and (entity["start"], entity["end"]) not in gold:
                    span = text[entity["start"] : entity["end"]]
                    print(f"    fp [{entity.get('extractor')}] {span!r} in {text[:90]!r}")
        for name, extracted in sorted(scores.items()):
            print(
                f"  {held.name:14s} {name:22s} P={extracted.precision:.4f} "
                f"R={extracted.recall:.4f} (tp={extracted.tp} fp={extracted.fp} fn={extracted.fn})"
            )


# ------------------------------------------------------------------ report


def print_confusions(
    confusions: list[tuple[tuple[str, str], int]], limit: int, indent: str
) -> None:
    """Print the most frequent (gold -> predicted) pairs."""
    if not confusions:
        print(f"{indent}(none)")
    for (gold, predicted), count in confusions[:limit]:
        print(f"{indent}{count:3d}  {gold} -> {predicted}")


@dataclass
class Verdict:
    """What the gate looks at for one held-out set."""

    name: str
    accuracy: float
    entity_f1: float
    entity_precision: float


def evaluate(
    results: Path, held: HeldOutSet, top: int, threshold: float | None, min_accuracy: float
) -> Verdict:
    """Print the report for a results directory; return the figures the gate looks at."""
    test_file = held.path
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
    account_extractors = [name for name in extractors if name not in FACT_EXTRACTORS]
    messages = entity_messages(results, extractors)
    per_extractor = {name: EntityScores() for name in account_extractors}
    union = EntityScores()
    union_by_register: dict[str, EntityScores] = {r: EntityScores() for r in held.registers}
    facts: dict[str, EntityScores] = {}
    for text, record in messages.items():
        gold_entities = record.get("entities") or []
        predicted = record.get("predicted_entities") or []
        gold = spans(gold_entities)
        for name in account_extractors:
            per_extractor[name].add(gold, spans(predicted, name))
        union.add(gold, spans(predicted))
        register = registers.get(text.strip(), detect_register(text))
        union_by_register.setdefault(register, EntityScores()).add(gold, spans(predicted))
        kinds = {e["entity"] for e in gold_entities + predicted} - {ENTITY}
        for kind in kinds:
            found = set().union(*(spans(predicted, n, kind) for n in FACT_EXTRACTORS))
            facts.setdefault(kind, EntityScores()).add(spans(gold_entities, None, kind), found)

    print()
    print(f"== NLU held-out evaluation: {held.name} ==")
    print(f"test set     : {test_file} ({overall.n} messages)")
    print(f"results      : {results}")
    print(f"intent accuracy : {overall.accuracy:.4f}   (target >= {min_accuracy})")
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
    for register in held.registers:
        subset = [(g, p) for g, p, r, _ in rows if r == register]
        scores = score_intents(subset)
        ent = union_by_register.get(register, EntityScores())
        print(
            f"  {register:19s} n={scores.n:3d}  accuracy={scores.accuracy:.4f}  "
            f"macro F1={scores.macro_f1:.4f}  {ENTITY} P={ent.precision:.4f} F1={ent.f1:.4f} "
            f"(tp={ent.tp} fp={ent.fp} fn={ent.fn})"
        )
        print_confusions(scores.confusions, 3, "      ")
    others = {r for _, _, r, _ in rows} - set(held.registers)
    if others:
        print(f"  (unknown registers in test file: {sorted(others)})")
    misses = [(p["text"], p["intent"], p["intent_prediction"]) for p in predictions]
    misses = [(t, g, pr) for t, g, pr in misses if g != pr["name"]]
    if misses:
        print("misclassified messages (gold -> predicted, confidence):")
        for text, gold_intent, prediction in misses:
            print(
                f"  {gold_intent} -> {prediction['name']} "
                f"{float(prediction['confidence'] or 0):.2f}  {text[:110]!r}"
            )

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
        for name in account_extractors:
            predicted_spans = spans(record.get("predicted_entities") or [], name)
            if gold != predicted_spans:
                print(
                    f"    miss [{name}] {text!r} gold={sorted(gold)} got={sorted(predicted_spans)}"
                )
    if facts:
        print()
        print("other facts (span level, FactExtractor; not gated):")
        for kind, scores in sorted(facts.items()):
            print(
                f"  {kind:8s} P={scores.precision:.4f} R={scores.recall:.4f} F1={scores.f1:.4f} "
                f"(tp={scores.tp} fp={scores.fp} fn={scores.fn})"
            )

    if not account_extractors:
        log(f"no entity reports in {results}")
        return Verdict(held.name, overall.accuracy, 0.0, 0.0)
    scores_gated = [union, *per_extractor.values()]
    return Verdict(
        held.name,
        overall.accuracy,
        min(e.f1 for e in scores_gated),
        min(e.precision for e in scores_gated),
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run or read the evaluation, and apply the gate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="trained model .tar.gz to test")
    source.add_argument("--results", type=Path, help="existing `rasa test nlu` output to read")
    source.add_argument(
        "--check-overlap",
        action="store_true",
        help="check the test sets against the training data and exit",
    )
    parser.add_argument("--out", type=Path, help="where `rasa test nlu` writes (with --model)")
    parser.add_argument(
        "--nlu",
        type=Path,
        action="append",
        help="held-out test file (repeatable; default: every held-out set)",
    )
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN, help="training data folder")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="pipeline config, for the fallback threshold",
    )
    parser.add_argument("--top", type=int, default=10, help="confused pairs to list")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="with --model: also show account_number as tagged before FactExtractor's filter",
    )
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
    parser.add_argument(
        "--min-entity-precision",
        type=float,
        default=float(os.environ.get("NLU_MIN_ENTITY_PRECISION", MIN_ENTITY_PRECISION)),
    )
    args = parser.parse_args(argv)
    sets = [held_out_set(path) for path in args.nlu] if args.nlu else list(HELD_OUT)

    if args.check_overlap:
        train = read_training_examples(args.train)
        problems = check_training_duplicates(train)
        for held in sets:
            test = read_nlu_examples(held.path)
            log(f"checking {len(test)} texts of {held.name} against {len(train)} training texts")
            problems += check_test_set(test, held) + check_overlap(test, train)
        log("overlap check: " + ("OK" if not problems else f"{problems} problem(s)"))
        return 1 if problems else 0

    if args.model:
        if not args.out:
            parser.error("--model needs --out")
        if not args.model.exists():
            parser.error(f"model {args.model} not found")
    base = args.out if args.model else args.results
    verdicts = []
    for held in sets:
        # One results folder per set; a single set may also be read from a plain folder.
        results = base / held.name
        if args.results and len(sets) == 1 and (base / "intent_report.json").exists():
            results = base
        if args.model:
            run_rasa_test(args.model.resolve(), held.path.resolve(), results.resolve())
        verdicts.append(
            evaluate(results, held, args.top, fallback_threshold(args.config), args.min_accuracy)
        )

    if args.model and args.raw:
        raw_account_tags(args.model.resolve(), sets)

    print()
    failed = []
    for verdict in verdicts:
        if verdict.accuracy < args.min_accuracy:
            failed.append(
                f"{verdict.name}: intent accuracy {verdict.accuracy:.4f} < {args.min_accuracy}"
            )
        if verdict.entity_f1 < args.min_entity_f1:
            failed.append(
                f"{verdict.name}: {ENTITY} F1 {verdict.entity_f1:.4f} < {args.min_entity_f1}"
            )
        if verdict.entity_precision < args.min_entity_precision:
            failed.append(
                f"{verdict.name}: {ENTITY} precision {verdict.entity_precision:.4f} "
                f"< {args.min_entity_precision}"
            )
        log(
            f"{verdict.name}: intent accuracy {verdict.accuracy:.4f}, {ENTITY} F1 "
            f"{verdict.entity_f1:.4f}, precision {verdict.entity_precision:.4f} "
            "(lowest of the union and each extractor)"
        )
    if failed:
        log("GATE FAILED: " + "; ".join(failed))
        return 1
    log(
        f"gate passed: intent accuracy >= {args.min_accuracy}, {ENTITY} F1 >= "
        f"{args.min_entity_f1} and precision >= {args.min_entity_precision} on "
        + ", ".join(v.name for v in verdicts)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
