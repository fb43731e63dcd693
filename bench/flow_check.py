"""Benchmark: how long the z3 labware-flow check takes on long workflows, and how it grows.

Builds synthetic but realistic workflows of ``--sizes`` steps (default 10 / 100 / 1,000) on the example lab
``examples/labs/rpl_like``: a prologue that seals, images and discards the plate waiting on the prep OT-2 (so the
check has an initial setup to synthesise), then a two-plate pipeline of PCR cycles - get a plate from the sciclops,
pf400 to the PCR OT-2, set up, seal, thermocycle (while the next plate is being set up), peel, image, every third
plate an absorbance read on the hidex, trash. Three variants per size, the steps built outside the timer:

* ``sat``: the workflow as built; ``check_flow`` must say sat and ask for exactly the prologue's plate;
* ``unsat``: one fault near the end (the last pf400 move into the sealer dropped); ``check_flow`` must say unsat
  and explain the seal step that lost its plate (unsat cores and explanations instead of the setup synthesis);
* ``completion``: ``plan_transfers`` on the same workflow with every pf400 step removed.

The workflows are validated (``validate_data``, no errors) and their verdicts asserted before any timing. Each
variant is then timed ``--repeat`` times (``--repeat-large`` for sizes >= 1,000) with ``time.perf_counter``, round
robin over sizes and variants after one untimed warm-up round (so a burst of load elsewhere does not skew one size's
growth factor). ``check_flow(steps, lab)`` is called as the pipeline calls it, so the timing includes the semantics
lookup, resolve, encode, solve and setup synthesis / explanation. Prints a check_flow table (median, p95, growth per
10x, z3 size: tracked assertions = labels, all solver assertions, ``Solver.check`` calls), a phase split of the sat
check, a plan_transfers table, the goals (< 50 ms at 100 steps, < 1 s at 1,000 steps, growth near linear) and a
summary line. A missed goal (or ``--profile``) adds a cProfile of the largest size.

Run from the repository root::

    .venv/bin/python bench/flow_check.py [--sizes 10,100,1000] [--repeat 7] [--repeat-large 7] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import pstats
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import z3
from rich.console import Console
from rich.table import Table

from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools import flow
from wei_gen.tools.flow import FlowReport, FlowStep, SetupItem, check_flow, plan_transfers, steps_from_workflow
from wei_gen.tools.semantics import LabSemantics
from wei_gen.tools.validator import validate_data

REPO = Path(__file__).resolve().parents[1]
LAB_DIR = REPO / "examples" / "labs" / "rpl_like"

GOAL_100_MS = 50.0
GOAL_1000_MS = 1000.0
LINEAR_LIMIT = 15.0  # growth per 10x at the largest sizes counted as "near linear" (10x is exactly linear)
EXPECTED_SETUP = [SetupItem(location="ot2_prep.deck2", sealed=False, lid=None)]

console = Console(highlight=False)
if not console.is_terminal:  # piped or redirected: do not squeeze the tables into 80 columns
    console = Console(highlight=False, width=150)


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic workflows
# ---------------------------------------------------------------------------------------------------------------------

PARAMETERS = [
    {"name": "tower", "default": "tower1"},
    {"name": "seal_temperature", "default": 175},
    {"name": "seal_time", "default": 3.0},
    {"name": "pcr_program", "default": 3},
    {"name": "plate_type", "default": 1},
    {"name": "assay_name", "default": "Abs_600nm"},
]


def _move(source: str, target: str, what: str) -> dict[str, Any]:
    wide = ("ot2", "biometra")
    return {
        "name": f"Move {what} from {source} to {target}",
        "module": "pf400",
        "action": "transfer",
        "args": {
            "source": source,
            "target": target,
            "source_plate_rotation": "wide" if source.startswith(wide) else "narrow",
            "target_plate_rotation": "wide" if target.startswith(wide) else "narrow",
        },
    }


def _step(name: str, module: str, action: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "module": module, "action": action, "args": args}


def _prologue() -> list[dict[str, Any]]:
    """Seal, image and discard the plate left on the prep OT-2 (the one plate the setup must ask for)."""
    what = "the prep plate"
    return [
        _move("ot2_prep.deck2", "sealer.default", what),
        _step("Seal the prep plate", "sealer", "seal", temperature="$seal_temperature", time="$seal_time"),
        _move("sealer.default", "camera.plate_station", what),
        _step("Photograph the prep plate", "camera", "take_picture", file_name="prep_plate.jpg"),
        _move("camera.plate_station", "wc.trash", what),
    ]


def _start(k: int) -> list[dict[str, Any]]:
    what = f"plate {k}"
    return [
        _step(f"Get {what} from a tower", "sciclops", "get_plate", pos="$tower", lid=False),
        _move("sciclops.exchange", "ot2_pcr.deck1", what),
        {
            **_step(f"Set up PCR reactions in {what}", "ot2_pcr", "run_protocol", use_existing_resources=False),
            "files": {"protocol": "protocols/pcr_setup.yaml"},
        },
    ]


def _prepare(k: int) -> list[dict[str, Any]]:
    what = f"plate {k}"
    return [
        _move("ot2_pcr.deck1", "sealer.default", what),
        _step(f"Seal {what}", "sealer", "seal", temperature="$seal_temperature", time=2.5 + (k % 3) * 0.5),
        _step("Open the thermocycler lid", "biometra", "open_lid", plate_type="$plate_type"),
        _move("sealer.default", "biometra.default", what),
        _step("Close the thermocycler lid", "biometra", "close_lid", plate_type="$plate_type"),
    ]


def _finish(k: int) -> list[dict[str, Any]]:
    what = f"plate {k}"
    steps = [
        _step(f"Thermocycle {what}", "biometra", "run_protocol", program="$pcr_program", plate_type="$plate_type"),
        _step("Open the thermocycler lid after the run", "biometra", "open_lid", plate_type="$plate_type"),
        _move("biometra.default", "peeler.default", what),
        _step("Close the empty thermocycler", "biometra", "close_lid", plate_type="$plate_type"),
        _step(f"Peel {what}", "peeler", "peel"),
        _move("peeler.default", "camera.plate_station", what),
        _step(f"Photograph {what}", "camera", "take_picture", file_name=f"pcr_plate_{k}.jpg"),
    ]
    last = "camera.plate_station"
    if k % 3 == 2:  # every third plate: an absorbance read
        steps += [
            _step("Open the reader drawer", "hidex", "open"),
            _move("camera.plate_station", "hidex.drawer", what),
            _step("Close the reader drawer", "hidex", "close"),
            _step(f"Read the absorbance of {what}", "hidex", "run_assay", assay_name="$assay_name"),
            _step("Open the reader drawer to unload", "hidex", "open"),
        ]
        last = "hidex.drawer"
    return [*steps, _move(last, "wc.trash", what)]


def build_workflow(n: int) -> dict[str, Any]:
    """A sat workflow of exactly ``n`` steps (the pipeline cut after ``n`` steps; a cut never breaks the flow)."""
    flowdef = [*_prologue(), *_start(0), *_prepare(0)]
    k = 0
    while len(flowdef) < n:
        # plate k+1 is set up while plate k thermocycles; plate k leaves before k+1 needs the thermocycler
        flowdef += [*_start(k + 1), *_finish(k), *_prepare(k + 1)]
        k += 1
    return {
        "name": f"PCR pipeline ({n} steps)",
        "metadata": {"author": "bench/flow_check.py", "info": "synthetic two-plate PCR pipeline", "version": "0.1"},
        "parameters": PARAMETERS,
        "flowdef": flowdef[:n],
    }


def with_fault(n: int) -> tuple[dict[str, Any], int]:
    """``n`` steps with the last pf400 move into the sealer dropped; returns the index of the seal that lost it."""
    data = build_workflow(n + 1)
    flowdef = data["flowdef"]
    dropped = max(
        i for i, s in enumerate(flowdef) if s["module"] == "pf400" and s["args"]["target"] == "sealer.default"
    )
    del flowdef[dropped]
    data["name"] = f"PCR pipeline ({n} steps, transfer to the sealer dropped at step {dropped + 1})"
    return data, dropped  # the seal step now sits where the move was


def without_arm(data: dict[str, Any]) -> dict[str, Any]:
    """The workflow with every pf400 step removed (what transfer completion must put back)."""
    return {**data, "flowdef": [s for s in data["flowdef"] if s["module"] != "pf400"]}


# ---------------------------------------------------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; the single value for a list of one."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def time_round_robin(rows: list[Row]) -> None:
    """Time every row's jobs, one run each per round, so a burst of load elsewhere hits all sizes alike.

    Round 0 is an untimed warm-up; a row takes part in its first ``repeat`` timed rounds; a full collection
    precedes each run.
    """
    for round_ in range(max(row.repeat for row in rows) + 1):
        for row in rows:
            if round_ > row.repeat:
                continue
            for name, fn in row.jobs.items():
                gc.collect()
                started = time.perf_counter()
                fn()
                elapsed = (time.perf_counter() - started) * 1000
                if round_:
                    row.times[name].append(elapsed)


@dataclass
class Z3Size:
    """How big the encoding is: tracked assertions (one label each), all solver assertions, ``check`` calls."""

    labels: int
    assertions: int
    checks: int


def z3_size(steps: list[FlowStep], lab: Lab) -> Z3Size:
    """Encode once (as ``check_flow`` does, untimed) and count; count ``Solver.check`` calls of one full check."""
    enc = flow._Encoder(flow.resolve_ops(steps, LabSemantics(lab)), lab)
    enc.run()
    calls = 0
    original = z3.Solver.check

    def counting(self: z3.Solver, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args)

    z3.Solver.check = counting  # type: ignore[method-assign]
    try:
        check_flow(steps, lab)
    finally:
        z3.Solver.check = original  # type: ignore[method-assign]
    return Z3Size(len(enc.labels), len(enc.solver.assertions()), calls)


def phase_split(steps: list[FlowStep], lab: Lab, repeat: int) -> dict[str, float]:
    """Median ms of each phase of a sat check, run the way ``check_flow`` runs them."""
    phases: dict[str, list[float]] = {"semantics": [], "resolve": [], "encode": [], "solve": [], "setup": []}
    for _ in range(repeat + 1):
        gc.collect()
        t0 = time.perf_counter()
        sem = LabSemantics(lab)
        t1 = time.perf_counter()
        ops = flow.resolve_ops(steps, sem)
        t2 = time.perf_counter()
        enc = flow._Encoder(ops, lab)
        enc.run()
        t3 = time.perf_counter()
        assert not flow._cores(enc)
        t4 = time.perf_counter()
        flow._setup(enc)
        t5 = time.perf_counter()
        for name, (a, b) in zip(phases, [(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)], strict=True):
            phases[name].append((b - a) * 1000)
    return {name: statistics.median(times[1:]) for name, times in phases.items()}  # the first run is a warm-up


@dataclass
class Row:
    """One size: its workflows and the timings of the three variants."""

    n: int
    repeat: int
    jobs: dict[str, Callable[[], Any]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=lambda: {"sat": [], "unsat": [], "plan": []})
    sat_size: Z3Size | None = None
    unsat_size: Z3Size | None = None
    bare_steps: int = 0
    moves_removed: int = 0
    moves_needed: int = 0
    moves_planned: int = 0
    moves_same_route: int = 0
    fault_step: int = 0
    reasons: int = 0
    phases: dict[str, float] = field(default_factory=dict)


def check_sat(report: FlowReport, n: int) -> None:
    assert report.verdict == "sat", f"{n} steps: expected sat, got {[d.message for d in report.diagnostics]}"
    assert not report.unchecked, f"{n} steps: unchecked steps {report.unchecked}"
    assert report.setup == EXPECTED_SETUP, f"{n} steps: setup {report.setup}"


def prepare(n: int, lab: Lab, repeat: int) -> Row:
    """Build the three variants of ``n`` steps, check their verdicts, count the z3 size; the jobs to time."""
    row = Row(n, repeat)
    data = build_workflow(n)
    assert len(data["flowdef"]) == n
    validation = validate_data(data, lab, source=f"<synthetic {n}>")
    assert validation.ok, f"{n} steps: not a valid workflow: {[d.message for d in validation.errors][:3]}"
    steps = steps_from_workflow(data)
    check_sat(check_flow(steps, lab), n)
    row.jobs["sat"] = lambda: check_flow(steps, lab)
    row.sat_size = z3_size(steps, lab)
    row.phases = phase_split(steps, lab, repeat)

    faulty, seal_index = with_fault(n)
    assert len(faulty["flowdef"]) == n
    bad_steps = steps_from_workflow(faulty)
    report = check_flow(bad_steps, lab)
    assert report.verdict == "unsat", f"{n} steps with a fault: expected unsat"
    errors = [d for d in report.diagnostics if d.severity == "error"]
    assert any(d.step_index == seal_index and "sealer.default" in d.message for d in errors), (
        f"{n} steps: the seal at step {seal_index + 1} is not explained: {[d.message for d in errors]}"
    )
    row.fault_step, row.reasons = seal_index + 1, len(errors)
    row.jobs["unsat"] = lambda: check_flow(bad_steps, lab)
    row.unsat_size = z3_size(bad_steps, lab)

    bare = steps_from_workflow(without_arm(data))
    removed = [s for s in steps if s.module == "pf400"]
    planned = plan_transfers(bare, lab)
    # same route (source and target) as a removed move, counted as multisets; moves into the trash are never needed
    wanted = Counter((s.args["source"], s.args["target"]) for s in removed if s.args["target"] != "wc.trash")
    got = Counter((t.source, t.target) for t in planned)
    row.bare_steps, row.moves_removed, row.moves_needed = len(bare), len(removed), sum(wanted.values())
    row.moves_planned, row.moves_same_route = len(planned), sum((wanted & got).values())
    row.jobs["plan"] = lambda: plan_transfers(bare, lab)
    return row


def growth(rows: list[Row], job: str) -> list[float | None]:
    """Median time growth per 10x steps against the previous size (None for the first)."""
    out: list[float | None] = [None]
    for prev, cur in zip(rows, rows[1:], strict=False):
        a, b = statistics.median(prev.times[job]), statistics.median(cur.times[job])
        out.append((b / a) ** (1 / math.log10(cur.n / prev.n)) if a > 0 and cur.n > prev.n else None)
    return out


def profile(steps: list[FlowStep], lab: Lab, title: str, top: int = 15) -> None:
    """Profile one ``check_flow``: the top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    check_flow(steps, lab)
    profiler.disable()
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(key).print_stats(top)
        console.print(f"[bold]cProfile of {title}, sorted by {key}[/bold]")
        console.print(out.getvalue().split("\n", 4)[-1].rstrip(), markup=False)


# ---------------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.1f}{unit}" if value < 100 else f"{value:,.0f}{unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000", help="comma-separated step counts (default 10,100,1000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per variant (default 7)")
    parser.add_argument("--repeat-large", type=int, default=7, help="timed runs for sizes >= 1000 (default 7)")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest size even if the goals are met")
    args = parser.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if not sizes or sizes[0] < 10 or args.repeat < 1 or args.repeat_large < 1:
        parser.error("need sizes >= 10 (a prologue, a plate and its seal) and --repeat / --repeat-large >= 1")

    lab = lab_from_dir(LAB_DIR)
    started = time.perf_counter()
    rows = [prepare(n, lab, args.repeat_large if n >= 1000 else args.repeat) for n in sizes]
    time_round_robin(rows)
    seconds = time.perf_counter() - started

    table = Table(
        title=f"check_flow on {LAB_DIR.name}, two-plate PCR pipeline: wall ms, median / p95 of R runs after a warm-up"
    )
    for column in (
        "steps",
        "R",
        "sat median",
        "sat p95",
        "sat x/10x",
        "unsat median",
        "unsat p95",
        "unsat x/10x",
        "labels (sat / unsat)",
        "z3 assertions",
        "checks",
        "fault at → errors",
    ):
        table.add_column(column, justify="right")
    for row, g_sat, g_unsat in zip(rows, growth(rows, "sat"), growth(rows, "unsat"), strict=True):
        s, u = row.sat_size, row.unsat_size
        assert s is not None and u is not None
        table.add_row(
            f"{row.n:,}", str(row.repeat),
            fmt(statistics.median(row.times["sat"])), fmt(percentile(row.times["sat"], 95)), fmt(g_sat, "x"),
            fmt(statistics.median(row.times["unsat"])), fmt(percentile(row.times["unsat"], 95)), fmt(g_unsat, "x"),
            f"{s.labels:,} / {u.labels:,}", f"{s.assertions:,} / {u.assertions:,}", f"{s.checks} / {u.checks}",
            f"step {row.fault_step:,} → {row.reasons}",
        )  # fmt: skip
    console.print(table)
    console.print(
        "[dim]sat: the workflow as built (asserted sat, setup = the prologue's unsealed plate on ot2_prep.deck2); "
        "unsat: the last pf400 move into the sealer dropped (asserted unsat, the seal that lost its plate explained). "
        "labels: tracked preconditions, one assumption literal each; z3 assertions: everything added to the solver; "
        "checks: Solver.check calls in one check_flow (sat: the model + the setup's forced-fact checks; unsat: one "
        "per unsat core + the final sat one).[/dim]"
    )

    phases = Table(title="Phases of the sat check (median ms): where the time goes")
    for column in ("steps", "semantics", "resolve", "encode", "solve", "setup", "sum"):
        phases.add_column(column, justify="right")
    for row in rows:
        values = list(row.phases.values())
        phases.add_row(f"{row.n:,}", *[f"{v:.2f}" for v in values], f"{sum(values):.2f}")
    console.print(phases)

    completion = Table(title="plan_transfers (transfer completion) on the same workflow with every pf400 step removed")
    for column in (
        "steps",
        "without pf400",
        "R",
        "median ms",
        "p95 ms",
        "x/10x",
        "pf400 removed",
        "needed (no trash)",
        "planned",
        "same route",
    ):
        completion.add_column(column, justify="right")
    for row, g_plan in zip(rows, growth(rows, "plan"), strict=True):
        plan = row.times["plan"]
        completion.add_row(
            f"{row.n:,}", f"{row.bare_steps:,}", str(row.repeat),
            f"{statistics.median(plan):.2f}", f"{percentile(plan, 95):.2f}", fmt(g_plan, "x"),
            f"{row.moves_removed:,}", f"{row.moves_needed:,}", f"{row.moves_planned:,}", f"{row.moves_same_route:,}",
        )  # fmt: skip
    console.print(completion)
    console.print(
        "[dim]needed: the removed moves other than into the trash (nothing needs those); same route: planned moves "
        "whose source and target match a needed one (multiset). With every arm step gone, plan_transfers cannot "
        "tell which of two interleaved plates a step means (it takes the latest that fits the step's needs); the "
        f"flow check reports the result. Total benchmark time {seconds:.1f} s.[/dim]"
    )

    by_n = {row.n: row for row in rows}
    goals: list[tuple[str, bool | None, str]] = []
    for variant in ("sat", "unsat"):
        for n, limit in ((100, GOAL_100_MS), (1000, GOAL_1000_MS)):
            row = by_n.get(n)
            value = statistics.median(row.times[variant]) if row else None
            goals.append(
                (
                    f"{variant}: < {limit:g} ms at {n:,} steps",
                    None if value is None else value < limit,
                    "not measured" if value is None else f"{value:.1f} ms",
                )
            )
        last = growth(rows, variant)[-1]
        goals.append(
            (
                f"{variant}: growth near linear (<= {LINEAR_LIMIT:g}x per 10x, largest sizes)",
                None if last is None else last <= LINEAR_LIMIT,
                "one size only" if last is None else f"{last:.1f}x per 10x ({rows[-2].n:,} → {rows[-1].n:,})",
            )
        )
    for label, met, detail in goals:
        verdict = "[dim]n/a[/dim]" if met is None else "[green]met[/green]" if met else "[red]MISSED[/red]"
        console.print(f"goal {label}: {verdict} ({detail})")

    if args.profile or any(met is False for _, met, _ in goals):
        n = sizes[-1]
        profile(steps_from_workflow(build_workflow(n)), lab, f"check_flow, sat, {n:,} steps")
        profile(steps_from_workflow(with_fault(n)[0]), lab, f"check_flow, unsat, {n:,} steps")

    def at(n: int) -> str:
        return f"{statistics.median(by_n[n].times['sat']):.1f} ms" if n in by_n else "not measured"

    print(f"flow check: 10 steps {at(10)}, 100 steps {at(100)}, 1000 steps {at(1000)} (goals: <50 ms @100, <1 s @1000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
