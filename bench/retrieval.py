"""Benchmark: the example index at 1k and 10k workflows - indexing throughput and search latency.

Generates ``--sizes`` synthetic but varied WEI workflows over the modules and actions of the example lab
``examples/labs/rpl_like`` - names, descriptions and step names drawn from experiment vocabularies, real
module/action pairs, as many steps as the corpus workflows have (1 to 17, median 2) - writes them as YAML files to a
temporary folder and indexes them with ``ExampleIndex.index`` into a fresh embedded chroma store per size: real
MiniLM embeddings (``wei_gen.tools.embeddings``), the real document text (``describe_workflow``). ``index()`` is
called on ``--batch`` files at a time (0 = all files in one call). Timing proxies around the embedder and the chroma
collection split the indexing time into embedding, chroma upsert, the per-document replace check (chroma
``get``/``delete``) and the rest (reading and describing the files).

Then ``--queries`` searches (after a few untimed warm-up searches) as the retrieve node calls it:
``search(text, 3, modules=..., actions=..., lab=lab)`` with experiment descriptions written with different words from
the documents - query embedding, chroma ``query`` and the re-rank, end to end with
``time.perf_counter``; p50/p95 overall and per part. The same queries are also timed with a candidate pool of
``--wide`` (default 50) instead of the default 20, the cost of a wider re-rank. Goal: p50 < 20 ms at 10k documents.

Run from the repository root::

    .venv/bin/python bench/retrieval.py [--sizes 1000,10000] [--queries 200] [--batch 1000] [--wide 50]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools.embeddings import MiniLMEmbedder, embedder_available
from wei_gen.tools.retriever import ExampleIndex

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "examples" / "labs" / "rpl_like"
GOAL_P50_MS = 20.0

console = Console(highlight=False)
if not console.is_terminal:  # piped or redirected: do not squeeze the tables into 80 columns
    console = Console(highlight=False, width=160)


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic workflows and queries
# ---------------------------------------------------------------------------------------------------------------------

EXPERIMENTS = [
    "PCR amplification", "colour mixing round", "absorbance time course", "seal integrity check", "growth curve",
    "enzyme kinetics assay", "DNA quantification", "cell viability assay", "dye dilution series", "plate reset",
    "protein expression screen", "bacterial culture passage", "buffer preparation", "primer optimisation",
    "fluorescence calibration", "overnight incubation", "library normalisation", "plate imaging survey",
]  # fmt: skip
SAMPLES = [
    "E. coli cultures", "yeast strains", "plasmid DNA", "cyan and magenta dyes", "cell lysate", "serum samples",
    "primer mixes", "a 96-well PCR plate", "a deep-well block", "reference standards", "enzyme substrate",
    "food colouring", "genomic DNA", "competent cells", "a fresh lidded plate",
]  # fmt: skip
GOALS = [
    "to compare conditions across the plate", "for the weekly quality control", "as part of an optimisation loop",
    "before the samples go to sequencing", "so the results can be photographed", "to get a baseline reading",
    "for a student practical", "in duplicate", "at three temperatures", "with a negative control column",
]  # fmt: skip
STEP_NAMES: dict[str, list[str]] = {
    "transfer": ["Move plate to {target}", "Carry the plate to {target}", "Transfer to {target}"],
    "remove_lid": ["Take the lid off", "Delid the plate"],
    "replace_lid": ["Put the lid back", "Relid the plate"],
    "get_plate": ["Get a fresh plate", "Fetch a plate from the tower"],
    "home": ["Home the plate crane"],
    "seal": ["Heat-seal the plate", "Seal at {temp} C"],
    "peel": ["Peel the seal", "Remove the foil"],
    "run_protocol": ["Run the {what} protocol", "Pipette the {what} reactions"],
    "open_lid": ["Open the thermocycler lid"],
    "close_lid": ["Close the thermocycler lid"],
    "open": ["Open the reader drawer"],
    "close": ["Close the reader drawer"],
    "run_assay": ["Measure {what}", "Read the plate ({what})"],
    "take_picture": ["Photograph the plate", "Take a picture of the wells"],
}
STEP_COUNTS = {1: 43, 2: 10, 3: 10, 4: 6, 5: 3, 6: 3, 7: 4, 8: 2, 9: 8, 10: 3, 17: 1}
"""How many corpus workflows have how many steps (the 93 of ../shared/wei-corpus): the synthetic ones follow it."""
WHAT = ["absorbance at 600 nm", "fluorescence", "PCR setup", "colour mix", "dilution", "normalisation", "luminescence"]

QUERY_VERBS = ["amplify", "grow", "stain", "dilute", "blend", "quantify", "screen", "incubate", "image", "cover"]
QUERY_OBJECTS = [
    "bacteria overnight", "a DNA fragment", "coloured inks", "protein samples", "a reagent series", "the cultures",
    "microplates", "enzyme reactions", "a calibration set", "patient samples",
]  # fmt: skip
QUERY_TAILS = [
    "then check how cloudy they get", "and snap a photo of the result", "then heat-cycle them sealed",
    "and read the optical density", "then put everything back", "and measure the glow", "then throw the plate away",
]  # fmt: skip


def lab_actions(lab: Lab) -> list[tuple[str, str]]:
    """Every (module, action) pair the lab's abouts declare."""
    return [(name, a.name) for name, mod in lab.modules.items() if mod.about for a in mod.about.actions]


def synthetic_workflow(rng: random.Random, number: int, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One varied workflow dict: a name, a description and steps of real module/action pairs (corpus-like lengths)."""
    modules = sorted({m for m, _ in pairs})
    steps = []
    for _ in range(rng.choices(list(STEP_COUNTS), weights=list(STEP_COUNTS.values()))[0]):
        module, action = rng.choice(pairs)
        name = rng.choice(STEP_NAMES.get(action, [action.replace("_", " ")])).format(
            target=rng.choice(modules), temp=rng.choice([160, 170, 175, 180]), what=rng.choice(WHAT)
        )
        steps.append({"name": name, "module": module, "action": action, "args": {}})
    experiment = rng.choice(EXPERIMENTS)
    return {
        "name": f"{experiment} {number}",
        "metadata": {
            "author": "bench",
            "info": f"{experiment.capitalize()} with {rng.choice(SAMPLES)} {rng.choice(GOALS)}.",
            "version": "0.1",
        },
        "flowdef": steps,
    }


def write_workflows(folder: Path, count: int, pairs: Sequence[tuple[str, str]], seed: int) -> list[Path]:
    """Write ``count`` synthetic workflows as YAML files (100 per subfolder) and return their paths."""
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        path = folder / f"part{i // 100:04d}" / f"wf_{i:06d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(synthetic_workflow(rng, i, pairs), sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def synthetic_queries(rng: random.Random, count: int, pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Search calls like the retrieve node's: a description, the shortlisted modules and the planned actions."""
    modules = sorted({m for m, _ in pairs})
    out = []
    for _ in range(count):
        chosen = rng.sample(modules, rng.randint(1, 4))
        actions = [f"{m}.{a}" for m, a in pairs if m in chosen and rng.random() < 0.7]
        text = f"{rng.choice(QUERY_VERBS)} {rng.choice(QUERY_OBJECTS)}, {rng.choice(QUERY_TAILS)}"
        out.append({"text": text, "modules": chosen, "actions": actions})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Timing proxies
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Clock:
    """Seconds and calls per operation name."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn``, adding its run time to ``name``."""

        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return run

    def reset(self) -> None:
        """Forget everything timed so far."""
        self.seconds.clear()
        self.calls.clear()


class TimedEmbedder:
    """The real embedder, timed."""

    def __init__(self, inner: MiniLMEmbedder, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def embed(self, texts: Sequence[str]) -> Any:
        """Embed with the real model."""
        return self.clock.timed("embed", self.inner.embed)(texts)


class TimedCollection:
    """A chroma collection whose calls are timed by method name."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.inner, self.clock = inner, clock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        return self.clock.timed(name, attr) if callable(attr) else attr


# ---------------------------------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    """What one size measured (seconds for indexing, milliseconds per search)."""

    size: int
    index_s: float
    embed_s: float
    upsert_s: float
    replace_check_s: float
    rest_s: float
    reindex_s: float
    store_mb: float
    error: str = ""
    total_ms: list[float] = field(default_factory=list)
    parts_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    wide_ms: list[float] = field(default_factory=list)


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def measure_size(
    size: int, embedder: MiniLMEmbedder, lab: Lab, queries: list[dict[str, Any]], batch: int, wide: int, seed: int
) -> SizeResult:
    pairs = lab_actions(lab)
    with tempfile.TemporaryDirectory(prefix=f"wei-gen-bench-retrieval-{size}-") as tmp:
        root = Path(tmp)
        paths = write_workflows(root / "workflows", size, pairs, seed)
        clock = Clock()
        index = ExampleIndex(root / "data", embedder=TimedEmbedder(embedder, clock), collection="bench_examples")  # type: ignore[arg-type]
        index.collection = TimedCollection(index.collection, clock)
        chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)] if batch else [paths]
        gc.collect()
        start = time.perf_counter()
        error = ""
        done = 0
        for chunk in chunks:
            try:
                result = index.index(chunk)
            except Exception as exc:  # report it (e.g. chroma's max batch size) instead of dying mid-benchmark
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                break
            assert not result.skipped, result.skipped[:3]
            done += len(chunk)
            if len(chunks) > 1:
                rate_now = done / (time.perf_counter() - start)
                console.print(f"[dim]  {done:,} of {size:,} indexed, {rate_now:,.0f} docs/s so far[/]")
        index_s = time.perf_counter() - start
        seconds = dict(clock.seconds)
        embed_s, upsert_s = seconds.get("embed", 0.0), seconds.get("upsert", 0.0)
        replace_s = seconds.get("get", 0.0) + seconds.get("delete", 0.0)
        out = SizeResult(
            size=size,
            index_s=index_s,
            embed_s=embed_s,
            upsert_s=upsert_s,
            replace_check_s=replace_s,
            rest_s=max(0.0, index_s - embed_s - upsert_s - replace_s),
            reindex_s=0.0,
            store_mb=0.0,
            error=error,
        )
        if error:
            return out
        assert index.count() == size, (index.count(), size)
        start = time.perf_counter()
        for chunk in chunks:
            again = index.index(chunk)
            assert not again.added and not again.replaced
        out.reindex_s = time.perf_counter() - start
        out.store_mb = sum(p.stat().st_size for p in (root / "data").rglob("*") if p.is_file()) / 1e6

        for q in queries[:5]:  # warm-up: first query paths, caches
            index.search(q["text"], 3, modules=q["modules"], actions=q["actions"], lab=lab)
        for q in queries:
            clock.reset()
            start = time.perf_counter()
            hits = index.search(q["text"], 3, modules=q["modules"], actions=q["actions"], lab=lab)
            total = (time.perf_counter() - start) * 1000
            assert len(hits) == 3
            out.total_ms.append(total)
            parts = {k: v * 1000 for k, v in clock.seconds.items()}
            for name in ("embed", "query"):
                out.parts_ms[name].append(parts.get(name, 0.0))
            out.parts_ms["re-rank"].append(total - sum(parts.values()))
        for q in queries:
            start = time.perf_counter()
            index.search(q["text"], 3, modules=q["modules"], actions=q["actions"], lab=lab, candidates=wide)
            out.wide_ms.append((time.perf_counter() - start) * 1000)
        return out


def label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="indexed workflows per run, comma-separated")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per size (at least 100)")
    parser.add_argument("--batch", type=int, default=1000, help="files per index() call (0 = all in one call)")
    parser.add_argument("--wide", type=int, default=50, help="the wider candidate pool also timed")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.queries < 100:
        parser.error("--queries must be at least 100")

    ok, why = embedder_available()
    if not ok:
        console.print(f"skipped: {why}")
        return 0
    lab = lab_from_dir(LAB_DIR)
    embedder = MiniLMEmbedder()
    embedder.load()
    queries = synthetic_queries(random.Random(args.seed), args.queries, lab_actions(lab))
    console.print(
        f"[bold]Example retrieval[/]: {', '.join(map(label, sizes))} synthetic workflows over "
        f"{len(lab_actions(lab))} module/action pairs of {LAB_DIR.name}; {args.queries} searches per size; "
        f"index() on {args.batch or 'all'} files per call; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )

    results = []
    for size in sizes:
        console.print(f"[dim]indexing {size:,} workflows …[/]")
        results.append(measure_size(size, embedder, lab, queries, args.batch, args.wide, args.seed))

    indexing = Table(title="Indexing (fresh store per size; docs/s of each part over the docs it handled)")
    for col in (
        "docs", "total s", "docs/s", "embed s", "embed docs/s", "chroma upsert s", "upsert docs/s",
        "replace check s", "read+describe s", "re-index unchanged s", "store MB",
    ):  # fmt: skip
        indexing.add_column(col, justify="right")
    for r in results:
        if r.error:
            indexing.add_row(f"{r.size:,}", f"[red]failed after {r.index_s:.1f} s: {r.error}[/]", *[""] * 9)
            continue
        indexing.add_row(
            f"{r.size:,}", f"{r.index_s:.1f}", rate(r.size, r.index_s), f"{r.embed_s:.1f}", rate(r.size, r.embed_s),
            f"{r.upsert_s:.2f}", rate(r.size, r.upsert_s), f"{r.replace_check_s:.2f}", f"{r.rest_s:.2f}",
            f"{r.reindex_s:.2f}", f"{r.store_mb:.1f}",
        )  # fmt: skip
    console.print(indexing)

    search = Table(title=f"search(text, 3, modules, actions, lab) latency, ms ({args.queries} queries per size)")
    for col in (
        "docs", "p50", "p95", "max", "embed p50", "chroma query p50", "re-rank p50",
        f"p50 @{args.wide} cand.", f"p95 @{args.wide} cand.", f"goal p50 < {GOAL_P50_MS:g}",
    ):  # fmt: skip
        search.add_column(col, justify="right")
    for r in results:
        if r.error:
            continue
        p50 = statistics.median(r.total_ms)
        met = "[green]met[/]" if p50 < GOAL_P50_MS else "[red]MISSED[/]"
        search.add_row(
            f"{r.size:,}", f"{p50:.1f}", f"{pct(r.total_ms, 95):.1f}", f"{max(r.total_ms):.1f}",
            *(f"{statistics.median(r.parts_ms[k]):.2f}" for k in ("embed", "query", "re-rank")),
            f"{statistics.median(r.wide_ms):.1f}", f"{pct(r.wide_ms, 95):.1f}", met,
        )  # fmt: skip
    console.print(search)
    console.print(f"[dim]load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs[/]")

    done = [r for r in results if not r.error]
    parts = [
        f"{label(r.size)} docs p50 {statistics.median(r.total_ms):.1f} ms p95 {pct(r.total_ms, 95):.1f} ms"
        for r in done
    ]
    total_docs, total_s = sum(r.size for r in done), sum(r.index_s for r in done)
    embed_s, upsert_s = sum(r.embed_s for r in done), sum(r.upsert_s for r in done)
    console.print(
        f"retrieval: {'; '.join(parts) or 'no size indexed'}; indexing {rate(total_docs, total_s)} docs/s "
        f"(embedding {rate(total_docs, embed_s)} docs/s, chroma upsert {rate(total_docs, upsert_s)} docs/s)",
        soft_wrap=True,
    )
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
