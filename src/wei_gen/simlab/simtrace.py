"""The simulated lab's configuration and its trace: what a script asked of the fake WEI and what happened.

Both are plain JSON files shared by the parent (``wei-gen simulate``, tests) and the child process that runs the
experiment script, so the models here import nothing but pydantic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

CONFIG_ENV = "WEI_GEN_SIMLAB"
"""Environment variable holding the path of the simulated lab's JSON configuration."""


class DiagnosticRecord(BaseModel):
    """A validator or flow-check finding about a run's workflow."""

    source: str
    """``validator`` or ``flow``."""
    code: str
    """The diagnostic's code."""
    severity: str
    """error, warning or info."""
    message: str
    """What is wrong."""
    step_index: int | None = None
    """0-based step index, when it concerns one step."""
    step_name: str | None = None
    """That step's name."""
    hint: str | None = None
    """How to fix it."""

    @classmethod
    def of(cls, source: str, diag: Any) -> DiagnosticRecord:
        """The record of a validator or flow-check ``Diagnostic`` (duck-typed: this module stays import-light)."""
        return cls(
            source=source,
            code=diag.code,
            severity=diag.severity,
            message=diag.message,
            step_index=diag.step_index,
            step_name=diag.step_name,
            hint=diag.hint,
        )


class FlowVerdict(BaseModel):
    """The labware-flow verdict of one submitted step sequence."""

    verdict: str
    """sat or unsat."""
    fail_at: int | None = None
    """0-based index of the first step that cannot run (unsat)."""
    reason: str = ""
    """Why it cannot run."""
    diagnostics: list[DiagnosticRecord] = Field(default_factory=list)
    """The flow errors."""


class SimConfig(BaseModel):
    """What the simulated lab is: the lab to check against, where to write the trace, which failure to inject."""

    lab_dir: str | None = None
    """Lab directory (workcell.yaml + abouts/); relative paths are relative to the config file."""
    workcell: str | None = None
    """Workcell file, with ``abouts``, instead of ``lab_dir``."""
    abouts: str | None = None
    """Folder of ``<module>.json`` abouts (with ``workcell``)."""
    trace: str = "trace.json"
    """Trace file; a relative path is relative to the script's working directory (where a sandbox collects it)."""
    fail_step: int | str | None = None
    """Step to fail: a 0-based index into ``flowdef`` (WEI's ``step_index``) or a step name."""
    fail_message: str | None = None
    """Error message of the injected failure."""
    results: dict[str, Any] = Field(default_factory=dict)
    """Datapoint values by label (the ``data_labels`` name, else the action's result label)."""
    missing_files_ok: bool = False
    """Let a step upload a file that does not exist (yet), with a warning; the real client raises
    ``FileNotFoundError``, so a simulation meant to judge a finished script leaves this off."""
    flow_verdicts: dict[str, FlowVerdict] = Field(default_factory=dict)
    """Labware-flow verdicts computed by the parent, by ``flowcheck.flow_key`` of the submitted steps."""


class PlannedStep(BaseModel):
    """A step of a run as submitted (after parameter substitution), whether or not it ran."""

    name: str
    """Step name."""
    module: str
    """Workcell module."""
    action: str
    """Action."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Args as submitted (parameters and payload substituted)."""


class StepRecord(BaseModel):
    """One step the simulated lab executed."""

    index: int
    """0-based position in the workflow."""
    name: str
    """Step name (after substitution)."""
    module: str
    """Workcell module."""
    action: str
    """Action."""
    args: dict[str, Any] = Field(default_factory=dict)
    """Args as the module would receive them (parameters and payload substituted; location names kept)."""
    files: dict[str, str] = Field(default_factory=dict)
    """File parameters: key -> the local file the client uploaded."""
    status: str = "succeeded"
    """WEI StepStatus value: succeeded or failed."""
    error: str | None = None
    """Error message of a failed step."""
    data: dict[str, str] = Field(default_factory=dict)
    """Datapoint label -> datapoint id, as in ``step.result.data``."""
    duration: float = 0.0
    """Seconds (always 0 in the simulation)."""


class RunRecord(BaseModel):
    """One ``start_run`` call: what was submitted, how WEI would have treated it, and what the script got back."""

    run_id: str | None = None
    """WEI run id (None when the run was refused before it existed)."""
    workflow_name: str = ""
    """The workflow's ``name``."""
    workflow_source: str = ""
    """The file the script passed, or ``<Workflow object>``."""
    experiment_id: str | None = None
    """The experiment the run belongs to."""
    parameters: dict[str, Any] | None = None
    """``parameters=`` exactly as the script passed it."""
    effective_parameters: dict[str, Any] = Field(default_factory=dict)
    """Supplied values plus defaults, as substituted."""
    declared_parameters: list[str] = Field(default_factory=list)
    """Names the workflow declares."""
    payload: dict[str, Any] | None = None
    """``payload=`` as passed (deprecated in WEI 0.7.2)."""
    simulate: bool = False
    """``simulate=``."""
    blocking: bool = True
    """``blocking=``."""
    validate_only: bool = False
    """``validate_only=``."""
    status: str = "new"
    """completed or failed (WEI statuses), or rejected (refused by the client or the server before it ran)."""
    step_index: int = 0
    """Index of the last step run (the failed one, if any)."""
    failure_injected: bool = False
    """True when the run failed at the configured ``fail_step``."""
    flow_checked: bool = True
    """False when the labware-flow check could not run in the script's process (z3 needs ctypes, which a sandbox
    refuses); :func:`wei_gen.simlab.trace_matches` then checks the submitted steps."""
    planned: list[PlannedStep] = Field(default_factory=list)
    """Every step of the submitted workflow, in order."""
    steps: list[StepRecord] = Field(default_factory=list)
    """The steps executed, in order."""
    problems: list[str] = Field(default_factory=list)
    """What would go wrong (or went wrong) on the real lab."""
    warnings: list[str] = Field(default_factory=list)
    """Legal but suspicious."""
    diagnostics: list[DiagnosticRecord] = Field(default_factory=list)
    """Validator and flow-check findings."""
    error: str | None = None
    """The exception the script got from ``start_run`` (``Type: message``), if any."""


class DatapointRecord(BaseModel):
    """A datapoint the simulated lab produced (or the script created)."""

    id: str
    """Datapoint id."""
    label: str
    """Label."""
    type: str
    """``data_value`` or ``local_file``."""
    step_id: str | None = None
    """Producing step's id."""
    workflow_id: str | None = None
    """Producing run's id."""
    experiment_id: str | None = None
    """Experiment."""
    value: Any = None
    """Value of a ``data_value`` datapoint."""
    path: str | None = None
    """File of a ``local_file`` datapoint."""


class ExperimentRecord(BaseModel):
    """An experiment registered (or continued) by a client."""

    experiment_id: str
    """Experiment id."""
    experiment_name: str | None = None
    """Name from the design."""
    campaign_id: str | None = None
    """Campaign."""
    continued: bool = False
    """True when the script continued an existing experiment id."""
    ended: bool = False
    """True once ``log_experiment_end`` was called."""


class EventRecord(BaseModel):
    """An event the script logged."""

    event_type: str
    """e.g. EXPERIMENT."""
    event_name: str
    """e.g. END."""
    experiment_id: str | None = None
    """Experiment."""
    info: dict[str, Any] = Field(default_factory=dict)
    """The event's other fields."""


class CallRecord(BaseModel):
    """One call the script made on the fake ``ExperimentClient``."""

    method: str
    """Method name."""
    details: dict[str, Any] = Field(default_factory=dict)
    """Arguments, summarised."""
    error: str | None = None
    """The exception it raised (``Type: message``), if any."""


class Trace(BaseModel):
    """Everything the simulated lab saw, in order."""

    version: int = 1
    """Format version."""
    lab: str = ""
    """Where the lab came from."""
    lab_dir: str | None = None
    """The lab directory of the config (absolute), to reload the lab from the trace."""
    lab_workcell: str | None = None
    """The workcell file of the config (absolute), with ``lab_abouts``."""
    lab_abouts: str | None = None
    """The abouts folder of the config (absolute)."""
    workcell: str = ""
    """The workcell's name."""
    calls: list[CallRecord] = Field(default_factory=list)
    """Every client call, in order."""
    experiments: list[ExperimentRecord] = Field(default_factory=list)
    """Experiments."""
    runs: list[RunRecord] = Field(default_factory=list)
    """Every ``start_run``, in order."""
    datapoints: dict[str, DatapointRecord] = Field(default_factory=dict)
    """Datapoints by id."""
    events: list[EventRecord] = Field(default_factory=list)
    """Logged events."""
    problems: list[str] = Field(default_factory=list)
    """Problems not tied to one run (e.g. a client without an experiment)."""


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (unknown objects become their ``str``)."""
    return json.loads(json.dumps(value, default=str))


def load_trace(path: Path) -> Trace:
    """Load a trace file; a missing or empty file is an empty trace."""
    if not path.is_file() or path.stat().st_size == 0:
        return Trace()
    return Trace.model_validate_json(path.read_text(encoding="utf-8"))


def save_trace(trace: Trace, path: Path) -> None:
    """Write the trace atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".trace-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(trace.model_dump_json(indent=2))
    os.replace(tmp, path)


def load_config(path: Path) -> SimConfig:
    """Load a simulated-lab configuration file."""
    return SimConfig.model_validate_json(path.read_text(encoding="utf-8"))


def resolve(base: Path, value: str) -> Path:
    """``value`` as a path, relative to ``base`` unless absolute."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
