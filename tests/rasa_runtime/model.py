"""The cached trained model's predict graph, loaded in this process as the Rasa server loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.engine.graph import GraphNode
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


#: The marks of a test that loads the model in this process (the ``predict_graph`` fixture). Rasa
#: warns on every domain load that slot auto-fill is gone (it lists it as expected).
MODEL_MARKS = [
    pytest.mark.model,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Slot auto-fill has been removed:UserWarning"),
]


def nodes_of(runner: DaskGraphRunner, kind: type) -> dict[str, GraphNode]:
    """The runner's nodes whose component is a ``kind``, by node name."""
    nodes = runner._instantiated_nodes
    return {name: node for name, node in nodes.items() if isinstance(node._component, kind)}


def provided(runner: DaskGraphRunner, node: str) -> Any:
    """What a node without inputs (the domain, the rule-only data) provides."""
    return runner.run(targets=[node])[node]


__all__ = ["MODEL_MARKS", "load_predict_graph", "nodes_of", "provided"]
