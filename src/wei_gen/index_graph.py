"""The indexing graph: put example workflows into the retrieval index (beside the main graph in langgraph.json).

Input: ``paths`` (files or folders) and optionally ``lab_dir`` (whose ``examples/`` are indexed too and whose
workcell name tags the documents). Indexing is idempotent, so the graph can be re-run at any time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from wei_gen.context import Context, default_data_dir
from wei_gen.lab import lab_from_dir
from wei_gen.tools.retriever import ExampleIndex


class IndexState(TypedDict, total=False):
    """What to index, and what happened."""

    paths: list[str]
    """Workflow files or folders."""
    lab_dir: str
    """A lab directory: its examples are indexed and its name tags the documents."""
    added: list[str]
    """Newly indexed files."""
    replaced: list[str]
    """Files whose content changed."""
    unchanged: list[str]
    """Files already indexed as they are."""
    skipped: list[str]
    """Files that are not workflows, with the reason."""


def index_examples(state: IndexState, runtime: Runtime[Context]) -> dict[str, Any]:
    """Index the given paths (and the lab's examples) into the example index."""
    paths = [Path(p) for p in state.get("paths", [])]
    lab_name = ""
    if state.get("lab_dir"):
        lab = lab_from_dir(Path(state["lab_dir"]))
        lab_name = lab.workcell.name
        paths += lab.example_paths
    ctx = runtime.context
    index = ExampleIndex(Path(ctx.data_dir) if ctx.data_dir else default_data_dir(), chroma_url=ctx.chroma_url)
    result = index.index([p for p in paths if p.exists()], lab=lab_name)
    missing = [f"{p}: not found" for p in paths if not p.exists()]
    return {
        "added": result.added,
        "replaced": result.replaced,
        "unchanged": result.unchanged,
        "skipped": [f"{p}: {why}" for p, why in result.skipped] + missing,
    }


index_graph = (
    StateGraph(IndexState, context_schema=Context)
    .add_node(index_examples)
    .add_edge(START, "index_examples")
    .compile(name="wei-gen-index")
)
