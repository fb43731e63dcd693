"""Example retrieval: 2-3 example workflows like this experiment, from the persistent chromadb index.

The lab's own ``examples/`` are indexed on the way (idempotent); ``wei-gen index`` adds more. Without the offline
embedding weights the lab's examples are ranked by module and action overlap instead.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from wei_gen.context import Context, default_data_dir
from wei_gen.nodes.common import lab_and_cards
from wei_gen.state import Example, State
from wei_gen.tools.embeddings import EmbeddingUnavailable
from wei_gen.tools.retriever import ExampleIndex
from wei_gen.yamlio import InputError, parse_yaml

MAX_EXAMPLES = 3


def summarize_workflow(path: Path) -> tuple[str, list[tuple[str, str]]] | None:
    """Name and (module, action) steps of a workflow file, or None when it cannot be read."""
    try:
        return _summary(str(path), path.stat().st_mtime)
    except OSError:
        return None


@lru_cache(maxsize=512)
def _summary(path: str, mtime: float) -> tuple[str, list[tuple[str, str]]] | None:
    """Parse each example once per version of the file (``mtime``): retrieval runs in every session."""
    try:
        data = parse_yaml(Path(path).read_text(encoding="utf-8"), path).data
    except (OSError, InputError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("flowdef"), list):
        return None
    steps = [
        (str(s.get("module")), str(s.get("action")))
        for s in data["flowdef"]
        if isinstance(s, dict) and s.get("module") and s.get("action")
    ]
    return str(data.get("name") or Path(path).stem), steps


def rank_examples(paths: list[Path], modules: set[str], actions: set[tuple[str, str]]) -> list[Example]:
    """Score = shared modules + 2 x shared (module, action) pairs, normalised by the example's size."""
    ranked: list[Example] = []
    for path in paths:
        summary = summarize_workflow(path)
        if summary is None:
            continue
        name, steps = summary
        used_modules, used_actions = {m for m, _ in steps}, set(steps)
        overlap = len(used_modules & modules) + 2 * len(used_actions & actions)
        score = overlap / (len(used_modules) + 2 * len(used_actions) or 1)
        text = " -> ".join(f"{m}.{a}" for m, a in steps)
        ranked.append(Example(source=str(path), name=name, summary=text, score=round(score, 4)))
    ranked.sort(key=lambda e: (-e.score, e.name))
    return [e for e in ranked if e.score > 0][:MAX_EXAMPLES]


def retrieve_examples(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The example workflows closest to this experiment: the chromadb index (with the lab's examples in it)."""
    lab, _ = lab_and_cards(state, runtime)
    modules = {e.module for e in state["shortlist"].modules} if state.get("shortlist") is not None else set()
    actions = {(s.instrument, s.action) for s in state["plan"].steps} if state.get("plan") is not None else set()
    plan = state.get("plan")
    query = " ".join([state.get("description", ""), plan.title if plan else "", plan.summary if plan else ""])
    ctx = runtime.context
    try:
        index = ExampleIndex(Path(ctx.data_dir) if ctx.data_dir else default_data_dir(), chroma_url=ctx.chroma_url)
        index.index(lab.example_paths, lab=lab.workcell.name)  # a no-op when they are indexed already
        hits = index.search(query, 3, modules=modules, actions={f"{m}.{a}" for m, a in actions}, lab=lab)
    except EmbeddingUnavailable:
        # Without the offline embedding weights, rank the lab's own examples by module and action overlap.
        return {"examples": rank_examples(lab.example_paths, modules, actions)}
    return {
        "examples": [Example(source=h.doc.source, name=h.doc.name, summary=h.doc.steps, score=h.score) for h in hits]
    }
