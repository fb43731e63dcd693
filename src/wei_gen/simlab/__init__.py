"""A simulated WEI lab for dry runs of experiment scripts.

The folder of this package holds a fake ``wei`` package (``wei/``) with WEI 0.7.4's ``ExperimentClient`` API. A
script run with :func:`simlab_path` on its ``sys.path`` and ``$WEI_GEN_SIMLAB`` naming a config written by
:func:`write_config` talks to a simulated lab instead of a WEI server: workflows are checked as WEI would check them
(plus wei-gen's validator and labware-flow check), "executed" step by step, and every call is written to a trace.
The parent reads it back with :func:`read_trace` and compares it with the workflow the script should run with
:func:`trace_matches`. ``wei_gen.simlab.runner`` runs a script that way (``wei-gen simulate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wei_gen.simlab.params import substitute
from wei_gen.simlab.simtrace import CONFIG_ENV, FlowVerdict, RunRecord, SimConfig, Trace, load_trace
from wei_gen.wei_types import Workflow
from wei_gen.yamlio import load_yaml_file

if TYPE_CHECKING:
    from wei_gen.lab import Lab

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "TRACE_FILE",
    "Trace",
    "flow_problems",
    "flow_verdicts",
    "read_trace",
    "simlab_path",
    "trace_matches",
    "write_config",
]

CONFIG_FILE = "simlab.json"
"""Name of the config file :func:`write_config` writes."""
TRACE_FILE = "trace.json"
"""Name of the trace file, in the script's working directory."""


def simlab_path() -> str:
    """The directory to put first on ``sys.path`` (``PYTHONPATH``) so that ``import wei`` is the simulated one."""
    return str(Path(__file__).resolve().parent)


def write_config(
    dir: str | Path,  # noqa: A002 - the name the callers use
    lab_dir: str | Path | None,
    fail_step: int | str | None = None,
    results: Mapping[str, Any] | None = None,
    *,
    workcell: str | Path | None = None,
    abouts: str | Path | None = None,
    fail_message: str | None = None,
    flow_verdicts: Mapping[str, FlowVerdict] | None = None,
    missing_files_ok: bool = False,
) -> Path:
    """Write a simulated-lab config into ``dir``; return its path (the value for ``$WEI_GEN_SIMLAB``).

    The lab is ``lab_dir`` or ``workcell`` + ``abouts``. ``fail_step`` (a 0-based step index, as WEI's
    ``step_index``, or a step name) makes that step fail in every run; ``results`` gives datapoint values by label;
    ``missing_files_ok`` lets steps upload files that do not exist yet (e.g. configs generated later), with a warning.
    The trace goes to ``trace.json`` in the script's working directory (where a sandbox collects its files); the
    config itself may live elsewhere.
    """
    folder = Path(dir)
    folder.mkdir(parents=True, exist_ok=True)
    if lab_dir is None and (workcell is None or abouts is None):
        raise ValueError("write_config needs lab_dir, or workcell and abouts")
    config = SimConfig(
        lab_dir=str(Path(lab_dir).resolve()) if lab_dir is not None else None,
        workcell=str(Path(workcell).resolve()) if workcell is not None else None,
        abouts=str(Path(abouts).resolve()) if abouts is not None else None,
        trace=TRACE_FILE,
        fail_step=fail_step,
        fail_message=fail_message,
        results=dict(results or {}),
        flow_verdicts=dict(flow_verdicts or {}),
        missing_files_ok=missing_files_ok,
    )
    path = folder / CONFIG_FILE
    path.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    return path


def read_trace(path: str | Path) -> Trace:
    """Read a trace file (or the trace in a simulation folder).

    A script that never used ``wei`` leaves none, which reads as an empty trace.
    """
    target = Path(path)
    if target.is_dir():
        target = target / TRACE_FILE
    return load_trace(target)


def _workflow_data(workflow: Workflow | Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(workflow, Workflow):
        return workflow.model_dump(mode="json")
    if isinstance(workflow, Mapping):
        return dict(workflow)
    data = load_yaml_file(Path(workflow)).data
    if not isinstance(data, dict):
        raise ValueError(f"{workflow}: not a workflow mapping")
    return data


def _expected(steps: list[Any], values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, module, action) of each step with the run's parameter values substituted where possible."""

    def text(value: Any) -> str:
        if isinstance(value, str):
            try:
                return str(substitute(value, values))
            except (ValueError, KeyError, SyntaxError):
                return value
        return str(value)

    return [(text(s.get("name")), text(s.get("module")), text(s.get("action"))) for s in steps if isinstance(s, dict)]


def _step_difference(run: RunRecord, steps: list[Any]) -> str | None:
    expected = _expected(steps, run.effective_parameters)
    ran = [(p.name, p.module, p.action) for p in run.planned]
    for i, (want, got) in enumerate(zip(expected, ran, strict=False)):
        if want != got:
            return (
                f"step {i + 1} differs from the workflow: expected '{want[0]}' ({want[1]}.{want[2]}), "
                f"submitted '{got[0]}' ({got[1]}.{got[2]})"
            )
    if len(expected) != len(ran):
        return f"submitted {len(ran)} step(s), the workflow has {len(expected)}"
    executed = [(s.name, s.module, s.action) for s in run.steps]
    if run.status == "completed" and executed != ran:
        return "the executed steps differ from the submitted ones"
    return None


def _lab_of(trace: Trace) -> Lab:
    from wei_gen.lab import lab_from_dir, lab_from_workcell_and_abouts

    if trace.lab_dir:
        return lab_from_dir(Path(trace.lab_dir), strict=False)
    if trace.lab_workcell and trace.lab_abouts:
        return lab_from_workcell_and_abouts(Path(trace.lab_workcell), Path(trace.lab_abouts), strict=False)
    raise ValueError("the trace does not say which lab it ran against")


def flow_problems(trace: Trace, lab: Lab | None = None) -> list[str]:
    """Labware-flow problems of the runs whose flow the script's process could not check (z3 in a sandbox).

    The submitted steps (parameters and payload substituted) are checked here, against ``lab`` or the lab the
    trace names. Such a problem did not make the simulated run fail; on the real lab it would.
    """
    unchecked = [(n, run) for n, run in enumerate(trace.runs, 1) if not run.flow_checked and run.planned]
    if not unchecked:
        return []
    from wei_gen.simlab.flowcheck import flow_problem_text

    try:
        verdicts = flow_verdicts(trace, lab)
    except Exception as exc:  # report, never crash: the rest of the verdict still stands
        return [f"the labware flow of the runs could not be checked: {type(exc).__name__}: {exc}"]
    problems = []
    for n, run in unchecked:
        verdict = verdicts[_planned_key(run)]
        problems += [
            f"run {n} of '{run.workflow_name}': {flow_problem_text(d)} "
            "[found from the trace: on the real lab the run would fail there]"
            for d in verdict.diagnostics
        ]
    return problems


def _planned_key(run: RunRecord) -> str:
    from wei_gen.simlab.flowcheck import flow_key

    return flow_key([p.model_dump() for p in run.planned])


def flow_verdicts(trace: Trace, lab: Lab | None = None) -> dict[str, FlowVerdict]:
    """Flow verdicts of the runs the script's process could not check, by ``flow_key`` (for :func:`write_config`)."""
    from wei_gen.simlab.flowcheck import flow_verdict
    from wei_gen.tools.semantics import LabSemantics

    runs = [run for run in trace.runs if not run.flow_checked and run.planned]
    if not runs:
        return {}
    the_lab = lab if lab is not None else _lab_of(trace)
    semantics = LabSemantics(the_lab)
    return {_planned_key(run): flow_verdict([p.model_dump() for p in run.planned], the_lab, semantics) for run in runs}


def trace_matches(
    trace: Trace, workflow: Workflow | Mapping[str, Any] | str | Path, *, lab: Lab | None = None
) -> list[str]:
    """Problems with how the script ran ``workflow`` on the simulated lab (empty: it ran it cleanly).

    Reported: no run at all; runs of another workflow or with other steps; parameters the workflow does not
    declare; runs WEI would refuse or that failed (an injected ``fail_step`` failure is expected, not a problem);
    labware-flow errors the script's process could not check (see :func:`flow_problems`; ``lab`` defaults to the
    lab the trace names); everything the simulated lab recorded as a problem.
    """
    data = _workflow_data(workflow)
    name = str(data.get("name", ""))
    steps = data.get("flowdef") if isinstance(data.get("flowdef"), list) else []
    declared = [str(p.get("name")) for p in data.get("parameters") or [] if isinstance(p, dict)]
    problems: list[str] = []
    if not trace.runs:
        calls = f" ({len(trace.calls)} call(s) to the client)" if trace.calls else " (it never used the WEI client)"
        problems.append(f"the script started no workflow run{calls}")
    good = 0
    for n, run in enumerate(trace.runs, 1):
        label = f"run {n} of '{run.workflow_name or run.workflow_source}'"
        problems += [f"{label}: {p}" for p in run.problems]
        if run.status == "rejected" and not run.problems:
            problems.append(f"{label}: refused: {run.error}")
        if run.workflow_name and run.workflow_name != name:
            problems.append(f"{label}: the script ran workflow '{run.workflow_name}', not '{name}'")
            continue
        for param in run.parameters or {}:
            if param not in declared and not any(param in p for p in run.problems):
                problems.append(f"{label}: parameter '{param}' is not declared by the workflow")
        if run.planned and (diff := _step_difference(run, list(steps or []))):
            problems.append(f"{label}: {diff}")
            continue
        if run.status == "completed" or (run.status == "failed" and run.failure_injected):
            good += 1
        elif run.status == "failed" and not run.problems:
            failed = run.steps[-1] if run.steps else None
            where = f" at step {failed.index + 1} '{failed.name}': {failed.error}" if failed else ""
            problems.append(f"{label}: the run failed{where}")
    if trace.runs and not good:
        problems.append(f"no run of workflow '{name}' went through its steps on the simulated lab")
    problems += flow_problems(trace, lab)
    problems += trace.problems
    return list(dict.fromkeys(problems))
