"""The cached trained model's predict graph, loaded in this process as the Rasa server loads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.engine.loader import load_predict_graph_runner
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.storage import ModelMetadata

from bot.rasa_runtime import training


def load_predict_graph(
    storage_dir: Path,
) -> tuple[ModelMetadata, DaskGraphRunner, LocalModelStorage]:
    """The model's metadata, its predict graph's runner and the storage it loaded from."""
    path = training.model_path()
    if not path.exists():
        pytest.fail(f"no trained Rasa model at {path}: run `bijli train` (make test does)")
    metadata, runner = load_predict_graph_runner(
        storage_dir, path, LocalModelStorage, DaskGraphRunner
    )
    assert isinstance(runner, DaskGraphRunner)
    return metadata, runner, LocalModelStorage(storage_dir)


__all__ = ["load_predict_graph"]
