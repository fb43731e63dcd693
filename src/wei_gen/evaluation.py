"""Generation quality over a gold set: every task runs through the real pipeline (``WEIGen`` sessions), any model.

A gold file is a YAML list of tasks (``id``, ``lab``, ``description``, ``values``, ``feasible``,
``missing_capability``, ``expected_actions``, ``order``, ``required_args``). Per task: the feasibility verdict, the
workflow's validity and z3 verdict, (module, action) precision / recall / F1 against the expected multiset, the order
constraints met ("A before B": some A step precedes some B step), the required args present (``$name`` resolved to
the parameter defaults), model calls and tokens from the session's usage, and wall time.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from wei_gen.context import Context
from wei_gen.session import WEIGen
from wei_gen.state import State
from wei_gen.wei_types import Workflow
from wei_gen.yamlio import InputError, load_yaml_file


class GoldError(InputError):
    """The gold file is unusable."""


class GoldTask(BaseModel):
    """One task of a gold set."""

    id: str
    """Task id."""
    lab: str = ""
    """Lab directory (relative to the gold file); ``--lab`` overrides it."""
    description: str
    """What the scientist asks."""
    values: dict[str, Any] = Field(default_factory=dict)
    """The scientist's values."""
    feasible: bool = True
    """Whether the lab can do it."""
    missing_capability: str = ""
    """For infeasible tasks: what the lab lacks (must appear in the reported missing capability)."""
    expected_actions: list[str] = Field(default_factory=list)
    """``module.action`` of the expected workflow (a multiset)."""
    order: list[str] = Field(default_factory=list)
    """"A before B" constraints."""
    required_args: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """``module.action`` → args some such step must have."""


class TaskResult(BaseModel):
    """What one task scored."""

    id: str
    """Task id."""
    expected_feasible: bool
    """Gold verdict."""
    feasible: bool | None = None
    """The pipeline's verdict (None: no verdict, e.g. the run failed before)."""
    missing_capability: str = ""
    """What the pipeline said the lab lacks."""
    verdict_correct: bool = False
    """Feasible as expected; for infeasible tasks also the missing capability named."""
    status: str = ""
    """The session's final status."""
    status_reason: str = ""
    """Why, when not done."""
    workflow_valid: bool = False
    """The workflow passed the validator."""
    z3: str = ""
    """The flow verdict (sat / unsat) or "" without a workflow."""
    precision: float = 0.0
    """(module, action) precision against the expected multiset."""
    recall: float = 0.0
    """Recall."""
    f1: float = 0.0
    """F1."""
    order_met: int = 0
    """Order constraints met."""
    order_total: int = 0
    """Order constraints."""
    args_met: int = 0
    """Required args present with their value."""
    args_total: int = 0
    """Required args."""
    model_calls: int = 0
    """Model calls."""
    prompt_tokens: int = 0
    """Prompt tokens."""
    completion_tokens: int = 0
    """Completion tokens."""
    seconds: float = 0.0
    """Wall time."""
    actions: list[str] = Field(default_factory=list)
    """The workflow's ``module.action`` list."""
    error: str = ""
    """An exception that stopped the task, if any."""


class Summary(BaseModel):
    """The gold set's figures."""

    tasks: int
    """Tasks run."""
    feasible_correct: float
    """Share of feasible tasks judged feasible."""
    infeasible_correct: float
    """Share of infeasible tasks judged infeasible with the missing capability named."""
    valid_rate: float
    """Share of feasible tasks with a valid workflow."""
    z3_sat_rate: float
    """Share of feasible tasks whose workflow is z3-satisfiable."""
    mean_f1: float
    """Mean (module, action) F1 over feasible tasks."""
    order_rate: float
    """Order constraints met / order constraints (feasible tasks)."""
    args_rate: float
    """Required args present / required args (feasible tasks)."""


def load_gold(path: Path) -> list[GoldTask]:
    """Read a gold file; lab paths become absolute (relative to the file)."""
    data = load_yaml_file(path).data
    if not isinstance(data, list) or not data:
        raise GoldError("a gold file must be a non-empty YAML list of tasks", source=str(path))
    tasks = []
    for i, item in enumerate(data):
        try:
            task = GoldTask.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise GoldError(f"task {i + 1}: {where}: {first['msg']}", source=str(path)) from None
        if task.lab:
            task = task.model_copy(update={"lab": str((path.parent / task.lab).resolve())})
        tasks.append(task)
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise GoldError("task ids must be unique", source=str(path))
    return tasks


def prf(expected: list[str], got: list[str]) -> tuple[float, float, float]:
    """Multiset precision, recall and F1 (both empty: 1.0)."""
    if not expected and not got:
        return 1.0, 1.0, 1.0
    common = sum((Counter(expected) & Counter(got)).values())
    precision = common / len(got) if got else 0.0
    recall = common / len(expected) if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def order_met(constraint: str, actions: list[str]) -> bool:
    """Whether the constraint "A before B" holds: some A step comes before some B step."""
    first, sep, second = constraint.partition(" before ")
    if not sep:
        raise GoldError(f"order constraint {constraint!r} is not 'A before B'")
    a, b = first.strip(), second.strip()
    positions_a = [i for i, x in enumerate(actions) if x == a]
    return any(x == b and i > positions_a[0] for i, x in enumerate(actions)) if positions_a else False


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, int | float) and isinstance(got, int | float) and not isinstance(got, bool):
        return abs(float(want) - float(got)) < 1e-9
    return bool(str(want) == str(got))


def resolved_steps(workflow: Workflow) -> list[tuple[str, dict[str, Any]]]:
    """(module.action, args with ``$name`` replaced by the parameter's default) per step."""
    defaults = {p.name: p.default for p in workflow.parameters}
    out = []
    for step in workflow.flowdef:
        args = {
            k: defaults.get(v[1:], v) if isinstance(v, str) and v.startswith("$") else v for k, v in step.args.items()
        }
        out.append((f"{step.module}.{step.action}", args))
    return out


def args_met(required: dict[str, dict[str, Any]], workflow: Workflow | None) -> tuple[int, int]:
    """Required (action, arg) pairs some step has with the expected value, and how many there are."""
    steps = resolved_steps(workflow) if workflow is not None else []
    total = met = 0
    for key, args in required.items():
        for name, value in args.items():
            total += 1
            met += any(k == key and name in a and _same(value, a[name]) for k, a in steps)
    return met, total


def score_task(task: GoldTask, state: State, seconds: float) -> TaskResult:
    """Score one finished session against its gold task."""
    status = state.get("status")
    feas = state.get("feasibility")
    artifact = state.get("workflow")
    workflow = artifact.workflow if artifact is not None else None
    actions = [f"{s.module}.{s.action}" for s in workflow.flowdef] if workflow is not None else []
    usage = state.get("usage", {}).values()
    result = TaskResult(
        id=task.id,
        expected_feasible=task.feasible,
        feasible=feas.feasible if feas is not None else None,
        missing_capability=feas.missing_capability if feas is not None else "",
        status=status.state if status is not None else "",
        status_reason=status.reason if status is not None else "",
        model_calls=sum(u.calls for u in usage),
        prompt_tokens=sum(u.prompt_tokens for u in usage),
        completion_tokens=sum(u.completion_tokens for u in usage),
        seconds=round(seconds, 2),
        actions=actions,
    )
    if task.feasible:
        result.verdict_correct = result.feasible is True
        report = state.get("reports", {}).get("workflow")
        result.workflow_valid = workflow is not None and report is not None and report.ok
        flow = state.get("flow")
        result.z3 = flow.verdict if flow is not None and workflow is not None else ""
        result.precision, result.recall, result.f1 = (round(x, 4) for x in prf(task.expected_actions, actions))
        result.order_total = len(task.order)
        result.order_met = sum(order_met(c, actions) for c in task.order)
        result.args_met, result.args_total = args_met(task.required_args, workflow)
    else:
        named = task.missing_capability.lower() in result.missing_capability.lower()
        result.verdict_correct = result.feasible is False and named
    return result


def run_task(task: GoldTask, context: Context, lab_dir: str | None = None) -> TaskResult:
    """Run one task through a fresh session (temporary data directory, SQLite) and score it."""
    ctx = replace(context, lab_dir=lab_dir or task.lab or context.lab_dir)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wei-gen-eval-") as tmp:
        ctx = replace(ctx, data_dir=tmp)
        with WEIGen(context=ctx, data_dir=tmp) as app:
            session = app.new_session()
            try:
                session.execute_experiment(task.description, task.values)
            except Exception as exc:  # one broken task must not end the evaluation; it is reported
                result = score_task(task, session.state(), time.perf_counter() - started)
                result.error = f"{type(exc).__name__}: {exc}"
                return result
            return score_task(task, session.state(), time.perf_counter() - started)


def summarize(results: list[TaskResult]) -> Summary:
    """The summary figures (rates over the relevant tasks; 0.0 when there are none)."""
    feasible = [r for r in results if r.expected_feasible]
    infeasible = [r for r in results if not r.expected_feasible]

    def share(items: list[TaskResult], test: Any) -> float:
        return round(sum(1 for r in items if test(r)) / len(items), 4) if items else 0.0

    order_total = sum(r.order_total for r in feasible)
    args_total = sum(r.args_total for r in feasible)
    return Summary(
        tasks=len(results),
        feasible_correct=share(feasible, lambda r: r.verdict_correct),
        infeasible_correct=share(infeasible, lambda r: r.verdict_correct),
        valid_rate=share(feasible, lambda r: r.workflow_valid),
        z3_sat_rate=share(feasible, lambda r: r.z3 == "sat"),
        mean_f1=round(sum(r.f1 for r in feasible) / len(feasible), 4) if feasible else 0.0,
        order_rate=round(sum(r.order_met for r in feasible) / order_total, 4) if order_total else 1.0,
        args_rate=round(sum(r.args_met for r in feasible) / args_total, 4) if args_total else 1.0,
    )


def evaluate(tasks: list[GoldTask], context: Context, lab_dir: str | None = None) -> dict[str, Any]:
    """Run every task; ``{"tasks": [...], "summary": {...}}``."""
    results = [run_task(task, context, lab_dir) for task in tasks]
    return {"tasks": [r.model_dump() for r in results], "summary": summarize(results).model_dump()}


def render_table(report: dict[str, Any]) -> str:
    """The per-task table and the summary, as text."""
    header = f"{'task':<26} {'verdict':<8} {'status':<10} {'valid':<5} {'z3':<5} {'P':>5} {'R':>5} {'F1':>5} "
    header += f"{'order':>6} {'args':>6} {'calls':>5} {'tokens':>7} {'sec':>6}"
    lines = [header, "-" * len(header)]
    for t in report["tasks"]:
        verdict = ("ok" if t["verdict_correct"] else "WRONG") if t["feasible"] is not None else "none"
        tokens = t["prompt_tokens"] + t["completion_tokens"]
        order = f"{t['order_met']}/{t['order_total']}" if t["expected_feasible"] else "-"
        args = f"{t['args_met']}/{t['args_total']}" if t["expected_feasible"] else "-"
        f1 = (f"{t['precision']:5.2f} {t['recall']:5.2f} {t['f1']:5.2f}" if t["expected_feasible"]
              else f"{'-':>5} {'-':>5} {'-':>5}")  # fmt: skip
        valid = ("yes" if t["workflow_valid"] else "no") if t["expected_feasible"] else "-"
        lines.append(
            f"{t['id'][:26]:<26} {verdict:<8} {t['status']:<10} {valid:<5} {t['z3'] or '-':<5} {f1} "
            f"{order:>6} {args:>6} {t['model_calls']:>5} {tokens:>7} {t['seconds']:>6.1f}"
        )
    s = report["summary"]
    lines += [
        "",
        f"tasks {s['tasks']}: feasible judged feasible {s['feasible_correct']:.0%}, infeasible judged infeasible "
        f"with the missing capability {s['infeasible_correct']:.0%}",
        f"valid workflows {s['valid_rate']:.0%}, z3-satisfiable {s['z3_sat_rate']:.0%}, mean F1 {s['mean_f1']:.3f}, "
        f"order constraints met {s['order_rate']:.0%}, required args present {s['args_rate']:.0%}",
    ]
    return "\n".join(lines)
