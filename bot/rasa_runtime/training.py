"""Where the trained Rasa model lives, and training it only when its inputs changed.

The model is cached outside the clone, under ``BIJLI_CACHE_DIR`` (default ``~/.cache/bijli``),
named by a hash of everything that shapes it, so a fresh clone with the same data reuses it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bot.settings import ROOT, Settings, load

#: Files and folders whose content decides the model.
MODEL_INPUTS = ("config.yml", "bot/intents", "data", "bot/nlu")


def cache_dir(cfg: Settings | None = None) -> Path:
    """The per-user cache that holds virtualenvs and models (BIJLI_CACHE_DIR)."""
    return (cfg or load()).cache_dir


def inputs_hash(root: Path = ROOT) -> str:
    """A short hash of the model's inputs (names and bytes of every file, in a stable order)."""
    digest = hashlib.sha256()
    for entry in MODEL_INPUTS:
        path = root / entry
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix not in {".yml", ".yaml", ".txt", ".json", ".py"}:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(file.read_bytes())
            digest.update(b"\0")
    import rasa

    digest.update(rasa.__version__.encode())
    return digest.hexdigest()[:16]


def model_path(cfg: Settings | None = None, root: Path = ROOT) -> Path:
    """The cached model file for the current inputs (it may not exist yet)."""
    return cache_dir(cfg) / "models" / f"bijli-{inputs_hash(root)}.tar.gz"


def train_if_needed(root: Path = ROOT, force: bool = False) -> Path:
    """Train the Rasa model unless a model for the same inputs is cached; return its path."""
    target = model_path(root=root)
    if target.exists() and not force:
        print(f"model up to date: {target}", flush=True)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"training Rasa model -> {target}", flush=True)
    rasa = Path(sys.executable).with_name("rasa")
    # Train beside the cache and rename, so an interrupted run never leaves a half-written model.
    scratch = Path(tempfile.mkdtemp(prefix="train-", dir=target.parent))
    try:
        subprocess.run(
            [
                str(rasa),
                "train",
                "--config",
                "config.yml",
                "--domain",
                "bot/intents",
                "--data",
                "data",
                "--out",
                str(scratch),
                "--fixed-model-name",
                "model",
            ],
            cwd=root,
            check=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        os.replace(scratch / "model.tar.gz", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prune(target.parent, keep=KEEP_MODELS)
    return target


#: Models kept in the cache: the newest few, so that switching branches rarely retrains.
KEEP_MODELS = 3


def prune(models: Path, keep: int = KEEP_MODELS) -> list[Path]:
    """Delete all but the ``keep`` newest ``bijli-*.tar.gz`` models; return what was deleted.

    Each model is about 20 MB, and every change to the training data or config makes a new one.
    """
    found = sorted(models.glob("bijli-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in found[keep:]:
        old.unlink(missing_ok=True)
    return found[keep:]
