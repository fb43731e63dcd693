"""langgraph.json names importable graphs (compiled without a checkpointer) and an async checkpointer factory."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph

from wei_gen.context import Context
from wei_gen.index_graph import index_graph

ROOT = Path(__file__).resolve().parents[2]
CONFIG = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))


def load(spec: str) -> Any:
    path, _, attr = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location(f"lg_{Path(path).stem}", ROOT / path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return getattr(module, attr)


@pytest.mark.parametrize("name", sorted(CONFIG["graphs"]))
def test_graphs_load_without_a_checkpointer(name: str) -> None:
    entry = CONFIG["graphs"][name]
    graph = load(entry["path"] if isinstance(entry, dict) else entry)
    assert isinstance(graph, CompiledStateGraph)
    assert graph.checkpointer is None  # the LangGraph server refuses graphs compiled with their own


def test_checkpointer_factory_is_an_async_context_manager() -> None:
    factory = load(CONFIG["checkpointer"]["path"])
    assert isinstance(factory(), contextlib.AbstractAsyncContextManager)


def test_index_graph_indexes_the_lab_examples_idempotently(tmp_path: Path) -> None:
    compiled = index_graph.builder.compile(checkpointer=InMemorySaver())
    ctx = Context(data_dir=str(tmp_path))
    lab = str(ROOT / "examples" / "labs" / "minimal")
    first = compiled.invoke(
        {"lab_dir": lab, "paths": [str(tmp_path / "nope.yaml")]}, {"configurable": {"thread_id": "a"}}, context=ctx
    )
    assert len(first["added"]) == 1 and any("not found" in s for s in first["skipped"])
    again = compiled.invoke({"lab_dir": lab}, {"configurable": {"thread_id": "b"}}, context=ctx)
    assert again["added"] == [] and len(again["unchanged"]) == 1
