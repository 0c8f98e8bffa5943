"""The model cache keeps only the newest few models."""

from __future__ import annotations

import os
from pathlib import Path

from bot.rasa_runtime import training as model


def test_prune_keeps_the_newest_models_and_nothing_else(tmp_path: Path) -> None:
    paths = []
    for age, name in enumerate(["e", "d", "c", "b", "a"]):
        path = tmp_path / f"bijli-{name}.tar.gz"
        path.write_bytes(b"model")
        os.utime(path, (1_700_000_000 - age * 60, 1_700_000_000 - age * 60))
        paths.append(path)
    other = tmp_path / "rasa-init-3.6.21.tar.gz"
    other.write_bytes(b"not ours")

    deleted = model.prune(tmp_path, keep=3)

    assert sorted(p.name for p in deleted) == ["bijli-a.tar.gz", "bijli-b.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bijli-c.tar.gz",
        "bijli-d.tar.gz",
        "bijli-e.tar.gz",
        "rasa-init-3.6.21.tar.gz",
    ]
