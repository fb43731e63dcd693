"""Benchmark: how long validating a real WEI workflow takes, and how big the lab prompt is.

Loads each corpus lab once (workcell + its abouts, as ``LABS.yaml`` pairs them), then times parse + validate of
every corpus workflow ``--repeat`` times against its lab. Prints per-lab load time and prompt sizes (capability
cards vs the raw JSON dump), per-family (or ``--per-file``) validation times, and a final summary line.

Run from the repository root::

    .venv/bin/python bench/validate_corpus.py [--repeat 20] [--per-file]

The corpus is ``../shared/wei-corpus`` (or ``$WEI_GEN_CORPUS``); without it the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.corpus, the corpus access helpers

from tests import corpus  # noqa: E402

from wei_gen.lab import Lab, lab_from_files, raw_lab_json, render_capability_cards  # noqa: E402
from wei_gen.tools.validator import validate_text  # noqa: E402

console = Console(highlight=False)
if not console.is_terminal:  # piped or redirected: do not squeeze the tables into 80 columns
    console = Console(highlight=False, width=150)

_FAMILY_ROW = re.compile(r"^\| `(workflows/[^`]+)` \|")


@dataclass
class LabStats:
    """One corpus lab: how long it takes to load and how big its prompt renderings are."""

    workcell: str
    modules: int
    abouts: int
    load_ms: float
    cards_chars: int
    raw_chars: int
    workflows: int = 0


@dataclass
class WorkflowTiming:
    """Per-repeat parse + validate times of one workflow (ms) and what the validator found."""

    path: Path
    family: str
    times_ms: list[float]
    errors: int
    warnings: int

    @property
    def median_ms(self) -> float:
        """The median of the repeats."""
        return statistics.median(self.times_ms)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; the single value for a list of one."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def families() -> dict[str, str]:
    """Corpus-relative workflow path -> experiment family, from the MANIFEST.md table."""
    out = {}
    for line in (corpus.CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        if _FAMILY_ROW.match(line):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            out[cells[0].strip("`")] = cells[6] if len(cells) > 6 else "?"
    return out


def load_lab(workcell: Path, repeat: int) -> tuple[Lab, float]:
    """Load a corpus lab ``repeat`` times (uncached) and return it with the median load time in ms."""
    key = str(workcell.relative_to(corpus.CORPUS))
    abouts = {m: (corpus.CORPUS / p if p else None) for m, p in corpus.labs_map().get(key, {}).items()}
    times = []
    lab = None
    for _ in range(repeat):
        started = time.perf_counter()
        lab = lab_from_files(workcell, abouts, strict=True)
        times.append((time.perf_counter() - started) * 1000)
    assert lab is not None
    return lab, statistics.median(times)


def time_workflow(path: Path, lab: Lab, family: str, repeat: int) -> WorkflowTiming:
    """Parse + validate one workflow ``repeat`` times (the text is read once, outside the timing)."""
    text = path.read_text(encoding="utf-8")
    report = validate_text(text, lab, source=str(path))  # warm-up, and the diagnostics to show
    gc.collect()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        validate_text(text, lab, source=str(path))
        times.append((time.perf_counter() - started) * 1000)
    return WorkflowTiming(path, family, times, len(report.errors), len(report.warnings))


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="validations per workflow (default 20)")
    parser.add_argument("--lab-repeat", type=int, default=5, help="loads per lab (default 5)")
    parser.add_argument("--per-file", action="store_true", help="also print one row per workflow")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.lab_repeat < 1:
        parser.error("--repeat and --lab-repeat must be at least 1")

    if not corpus.available():
        print(f"skipped: {corpus.SKIP_REASON}")
        return 0

    workflows = corpus.workflows()
    family_of = families()
    labs: dict[Path, Lab] = {}
    lab_stats: dict[Path, LabStats] = {}
    for wf in workflows:
        if wf.workcell is None or wf.workcell in labs:
            continue
        lab, load_ms = load_lab(wf.workcell, args.lab_repeat)
        labs[wf.workcell] = lab
        cards, raw = render_capability_cards(lab), raw_lab_json(lab)
        lab_stats[wf.workcell] = LabStats(
            workcell=wf.workcell.name,
            modules=len(lab.modules),
            abouts=sum(1 for m in lab.modules.values() if m.about is not None),
            load_ms=load_ms,
            cards_chars=len(cards),
            raw_chars=len(raw),
        )

    timings: list[WorkflowTiming] = []
    skipped = 0
    bench_started = time.perf_counter()
    for wf in workflows:
        if wf.workcell is None:
            skipped += 1
            continue
        lab_stats[wf.workcell].workflows += 1
        family = family_of.get(str(wf.path.relative_to(corpus.CORPUS)), "?")
        timings.append(time_workflow(wf.path, labs[wf.workcell], family, args.repeat))
    bench_seconds = time.perf_counter() - bench_started

    table = Table(title=f"Corpus labs ({len(lab_stats)}): load time (median of {args.lab_repeat}) and prompt size")
    for column in (
        "workcell",
        "modules",
        "abouts",
        "workflows",
        "load ms",
        "cards chars",
        "raw JSON chars",
        "cards/raw",
    ):
        table.add_column(column, justify="left" if column == "workcell" else "right", no_wrap=True)
    for stats in sorted(lab_stats.values(), key=lambda s: -s.raw_chars):
        table.add_row(
            short(stats.workcell.removesuffix(".yaml"), 58), str(stats.modules), str(stats.abouts),
            str(stats.workflows), f"{stats.load_ms:.2f}", f"{stats.cards_chars:,}", f"{stats.raw_chars:,}",
            f"{100 * stats.cards_chars / max(stats.raw_chars, 1):.0f} %",
        )  # fmt: skip
    total_cards = sum(s.cards_chars for s in lab_stats.values())
    total_raw = sum(s.raw_chars for s in lab_stats.values())
    table.add_section()
    table.add_row(
        "all labs", str(sum(s.modules for s in lab_stats.values())), str(sum(s.abouts for s in lab_stats.values())),
        str(sum(s.workflows for s in lab_stats.values())), f"{sum(s.load_ms for s in lab_stats.values()):.2f}",
        f"{total_cards:,}", f"{total_raw:,}", f"{100 * total_cards / max(total_raw, 1):.0f} %",
    )  # fmt: skip
    console.print(table)

    by_family: dict[str, list[WorkflowTiming]] = defaultdict(list)
    for timing in timings:
        by_family[timing.family].append(timing)
    table = Table(title=f"Parse + validate per workflow (ms; each file's median of {args.repeat} runs)")
    for column in ("family", "workflows", "median", "p95", "max", "total", "errors", "warnings"):
        table.add_column(column, justify="left" if column == "family" else "right", no_wrap=True)
    for family, items in sorted(by_family.items(), key=lambda kv: -len(kv[1])):
        medians = [t.median_ms for t in items]
        table.add_row(
            short(family, 64), str(len(items)), f"{statistics.median(medians):.2f}", f"{percentile(medians, 95):.2f}",
            f"{max(medians):.2f}", f"{sum(medians):.1f}", str(sum(t.errors for t in items)),
            str(sum(t.warnings for t in items)),
        )  # fmt: skip
    medians = [t.median_ms for t in timings]
    table.add_section()
    table.add_row(
        "all", str(len(timings)), f"{statistics.median(medians):.2f}", f"{percentile(medians, 95):.2f}",
        f"{max(medians):.2f}", f"{sum(medians):.1f}", str(sum(t.errors for t in timings)),
        str(sum(t.warnings for t in timings)),
    )  # fmt: skip
    console.print(table)

    if args.per_file:
        table = Table(title="Per workflow (ms)")
        for column in ("workflow", "median", "p95", "min", "errors", "warnings"):
            table.add_column(column, justify="left" if column == "workflow" else "right", no_wrap=True)
        for timing in sorted(timings, key=lambda t: -t.median_ms):
            table.add_row(
                short(timing.path.name.removesuffix(".yaml"), 70), f"{timing.median_ms:.2f}",
                f"{percentile(timing.times_ms, 95):.2f}", f"{min(timing.times_ms):.2f}", str(timing.errors),
                str(timing.warnings),
            )  # fmt: skip
        console.print(table)

    all_runs = [t for timing in timings for t in timing.times_ms]
    console.print(
        f"{len(timings)} workflows x {args.repeat} runs = {len(all_runs)} validations in {bench_seconds:.1f} s "
        f"(over all single runs: median {statistics.median(all_runs):.2f} ms, p95 {percentile(all_runs, 95):.2f} ms)"
        + (f"; {skipped} workflow(s) without a workcell skipped" if skipped else "")
    )
    print(
        f"per-workflow validation: median {statistics.median(medians):.2f} ms, "
        f"p95 {percentile(medians, 95):.2f} ms over {len(timings)} workflows"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
