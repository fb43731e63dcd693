"""Dry-run an experiment script against the simulated lab: prepare its files, run it in the sandbox, judge the trace.

The script runs in ``wei_gen.tools.sandbox`` (no network, no processes, writes only in its own directory, resource
limits) with a copy of itself, ``workflow.yaml`` (the given workflow), the files the workflow's steps upload (with
their relative paths) and the simulated lab's config, and with ``import wei`` resolving to the simulated package.
The trace it leaves is collected and judged with :func:`wei_gen.simlab.trace_matches`.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from wei_gen.lab import lab_from_dir, lab_from_workcell_and_abouts
from wei_gen.simlab import (
    CONFIG_ENV,
    CONFIG_FILE,
    TRACE_FILE,
    flow_verdicts,
    read_trace,
    simlab_path,
    trace_matches,
    write_config,
)
from wei_gen.simlab.simtrace import Trace
from wei_gen.yamlio import InputError, load_yaml_file

WORKFLOW_FILE = "workflow.yaml"
"""The name the script finds its workflow under, in its working directory."""
TAIL_LINES = 20
"""How many lines of the script's stdout and stderr a result keeps."""
SRC = str(Path(__file__).resolve().parents[2])
"""wei_gen's source root, put on the sandbox's path (the simulated lab validates with wei_gen)."""


class SimulationError(InputError):
    """The script could not be run at all (missing files, an unreadable workflow, no Python)."""


@dataclass
class ScriptResult:
    """How the script process ended."""

    returncode: int | None
    """Exit code (None when it was killed for taking too long)."""
    stdout: str
    """Everything it printed."""
    stderr: str
    """Everything it printed to stderr."""
    timed_out: bool = False
    """True when it was stopped at the timeout."""
    blocked: list[str] = field(default_factory=list)
    """What the sandbox refused the script."""


def _run_script(
    script_path: Path, workdir: Path, env: Mapping[str, str], timeout: float, *, memory_mb: int = 1024
) -> ScriptResult:
    """Run ``script_path`` (a file in ``workdir``) in the sandbox with every file of ``workdir``; collect the trace.

    ``env`` holds extra variables (the simulated lab's config); the sandbox builds the rest of the environment.
    The collected ``trace.json`` is written back into ``workdir``.
    """
    try:
        from wei_gen.tools.sandbox import run_python
    except ImportError as exc:  # never fall back to running generated code unconfined
        raise SimulationError(f"the sandbox is not available: {exc}") from None
    files: dict[str, str] = {}
    for path in sorted(p for p in workdir.rglob("*") if p.is_file()):
        relative = path.relative_to(workdir).as_posix()
        if relative == TRACE_FILE:
            continue
        try:
            files[relative] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SimulationError(f"the sandbox takes text files only; {relative} is binary") from None
    argv = [script_path.relative_to(workdir).as_posix()]
    try:
        done = run_python(
            files,
            argv,
            timeout=timeout,
            memory_mb=memory_mb,
            pythonpath=[simlab_path(), SRC],
            env=dict(env),
            collect=[TRACE_FILE],
        )
    except (OSError, ValueError) as exc:
        raise SimulationError(f"cannot run the script in the sandbox: {exc}") from None
    if TRACE_FILE in done.files:
        (workdir / TRACE_FILE).write_text(done.files[TRACE_FILE], encoding="utf-8")
    return ScriptResult(done.returncode, done.stdout, done.stderr, done.timed_out, list(done.blocked))


class SimulationResult(BaseModel):
    """The verdict of one dry run."""

    script: str
    """The script that ran."""
    workflow: str
    """The workflow it should run."""
    lab: str
    """The lab it ran against."""
    fail_step: int | str | None = None
    """The injected failure, if any."""
    returncode: int | None = None
    """The script's exit code (None after a timeout)."""
    timed_out: bool = False
    """True when the script was stopped at the timeout."""
    stdout_tail: str = ""
    """The last lines of its stdout."""
    stderr_tail: str = ""
    """The last lines of its stderr."""
    blocked: list[str] = Field(default_factory=list)
    """What the sandbox refused the script (network, processes, writes outside its folder...)."""
    trace: Trace = Field(default_factory=Trace)
    """What the simulated lab saw."""
    problems: list[str] = Field(default_factory=list)
    """Everything that went wrong (empty: the script ran its workflow cleanly)."""

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _step_files(data: Any) -> list[str]:
    """Relative local paths the workflow's steps upload (``payload.x`` and absolute paths are left alone)."""
    found = []
    for step in data.get("flowdef") or [] if isinstance(data, dict) else []:
        files = step.get("files") if isinstance(step, dict) else None
        for value in (files or {}).values() if isinstance(files, dict) else []:
            if isinstance(value, str) and not value.startswith("payload.") and "$" not in value:
                path = PurePosixPath(value)
                if not path.is_absolute() and ".." not in path.parts:
                    found.append(value)
    return found


def prepare_workdir(workdir: Path, script: Path, workflow: Path) -> Path:
    """Copy the script, the workflow (as ``workflow.yaml``) and its step files into ``workdir``; return the script."""
    if not script.is_file():
        raise SimulationError("script not found", source=str(script))
    if not workflow.is_file():
        raise SimulationError("workflow file not found", source=str(workflow))
    try:
        data = load_yaml_file(workflow).data
    except InputError as exc:
        raise SimulationError(f"cannot read the workflow: {exc}", source=str(workflow)) from None
    workdir.mkdir(parents=True, exist_ok=True)
    name = script.name if script.name not in ("wei.py", WORKFLOW_FILE) else "experiment.py"
    target = workdir / name
    shutil.copyfile(script, target)
    shutil.copyfile(workflow, workdir / WORKFLOW_FILE)
    for relative in _step_files(data):
        source = workflow.parent / relative
        if source.is_file():
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, workdir / relative)
    return target


def script_env(config_name: str = CONFIG_FILE) -> dict[str, str]:
    """The variables the script needs on top of the sandbox's environment: where the simulated lab's config is."""
    return {CONFIG_ENV: config_name}


def _outcome_problems(result: SimulationResult, timeout: float) -> list[str]:
    """What the script's exit says, given what its runs did."""
    problems: list[str] = []
    injected = any(run.failure_injected for run in result.trace.runs)
    stderr = f"; stderr ends with:\n{_tail(result.stderr_tail, 8)}" if result.stderr_tail.strip() else ""
    if result.timed_out:
        problems.append(f"the script did not finish within {timeout:g} s")
    elif injected and result.returncode == 0:
        problems.append(
            "the run failed (injected fail_step) but the script exited with code 0: it does not stop with an error "
            "when a run fails"
        )
    elif not injected and result.returncode != 0:
        problems.append(f"the script exited with code {result.returncode}{stderr}")
    problems += [f"the sandbox refused the script: {what}" for what in result.blocked]
    if result.fail_step is not None and result.trace.runs and not injected:
        problems.append(f"fail_step {result.fail_step!r} matched no step that ran, so no failure was injected")
    return problems


def simulate_script(
    script: Path,
    workflow: Path,
    *,
    lab_dir: Path | None = None,
    workcell: Path | None = None,
    abouts: Path | None = None,
    timeout: float = 60.0,
    fail_step: int | str | None = None,
    fail_message: str | None = None,
    results: Mapping[str, Any] | None = None,
    workdir: Path | None = None,
    memory_mb: int = 1024,
) -> SimulationResult:
    """Run ``script`` against the simulated lab and judge it against ``workflow``.

    When the script's process cannot check the labware flow (z3 in the sandbox) and the flow of a submitted run is
    broken, the script runs a second time with the verdicts in its config, so that run fails where the real lab
    would. ``workdir`` keeps the run's folder (script, workflow.yaml, simlab.json, the trace); by default a temporary
    one is used and removed. Raises :class:`SimulationError` when the script cannot be run at all.
    """
    lab_text = str(lab_dir) if lab_dir is not None else f"{workcell} + {abouts}"
    try:
        lab = lab_from_dir(lab_dir, strict=False) if lab_dir is not None else None
        if lab is None and workcell is not None and abouts is not None:
            lab = lab_from_workcell_and_abouts(workcell, abouts, strict=False)
    except InputError as exc:
        raise SimulationError(f"cannot load the lab: {exc}") from None
    if lab is None:
        raise SimulationError("no lab: give lab_dir, or workcell and abouts")
    with tempfile.TemporaryDirectory(prefix="wei-gen-simulate-") as tmp:
        folder = workdir or Path(tmp)
        target = prepare_workdir(folder, script, workflow)
        settings: dict[str, Any] = {
            "workcell": workcell,
            "abouts": abouts,
            "fail_message": fail_message,
        }
        config = write_config(folder, lab_dir, fail_step, results, **settings)
        ran, trace = _one_pass(target, folder, config, timeout, memory_mb)
        verdicts = flow_verdicts(trace, lab)
        if any(v.verdict == "unsat" for v in verdicts.values()):
            config = write_config(folder, lab_dir, fail_step, results, **settings, flow_verdicts=verdicts)
            ran, trace = _one_pass(target, folder, config, timeout, memory_mb)
    result = SimulationResult(
        script=str(script),
        workflow=str(workflow),
        lab=lab_text,
        fail_step=fail_step,
        returncode=ran.returncode,
        timed_out=ran.timed_out,
        stdout_tail=_tail(ran.stdout),
        stderr_tail=_tail(ran.stderr),
        blocked=ran.blocked,
        trace=trace,
    )
    problems = trace_matches(trace, workflow, lab=lab) + _outcome_problems(result, timeout)
    result.problems = list(dict.fromkeys(problems))
    return result


def _one_pass(target: Path, folder: Path, config: Path, timeout: float, memory_mb: int) -> tuple[ScriptResult, Trace]:
    """Run the script once from a clean trace; return how it ended and the trace it left."""
    trace_path = folder / TRACE_FILE
    trace_path.unlink(missing_ok=True)
    shutil.rmtree(folder / f"{trace_path.stem}_data", ignore_errors=True)
    ran = _run_script(target, folder, script_env(config.name), timeout, memory_mb=memory_mb)
    return ran, read_trace(trace_path)
