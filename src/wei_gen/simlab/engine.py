"""The simulated WEI lab: what the fake ``wei`` package's ``ExperimentClient`` talks to instead of a server.

It runs in the process of the experiment script. Configured by the JSON file named in ``$WEI_GEN_SIMLAB``
(:class:`~wei_gen.simlab.simtrace.SimConfig`), it checks a submitted workflow the way WEI 0.7.4 does (client-side
parameters and files, then the server's checks, done here by wei-gen's validator against the lab), runs wei-gen's z3
labware-flow check, "executes" the steps in order, produces datapoints for the actions' result labels and appends
everything to the trace file.

The engine speaks plain dicts; the fake client turns them into its pydantic models and turns :class:`ClientError`
into the exception type the real 0.7.4 client raises in the same situation.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from wei_gen.lab import Lab, lab_from_dir, lab_from_workcell_and_abouts
from wei_gen.simlab import params as wei_params
from wei_gen.simlab.flowcheck import flow_key, flow_problem_text, flow_verdict
from wei_gen.simlab.simtrace import (
    CONFIG_ENV,
    CallRecord,
    DatapointRecord,
    DiagnosticRecord,
    EventRecord,
    ExperimentRecord,
    PlannedStep,
    RunRecord,
    SimConfig,
    StepRecord,
    Trace,
    jsonable,
    load_config,
    load_trace,
    resolve,
    save_trace,
)
from wei_gen.tools.validator import STEP_KEYS, Diagnostic, validate_data

SIMULATE_BUG = "not enough values to unpack (expected 4, got 3)"
"""What WEI 0.7.4 reports for every step of a ``simulate=True`` run (its simulate interface returns 3 values)."""
_REFERENCE = re.compile(r"(?<!\$)\$\{?([A-Za-z0-9_\-]+)")
_PARAMETER_CODES = {"undeclared-parameter", "param-in-list", "unused-parameter"}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """A ULID (48-bit millisecond time + 80 random bits, Crockford base32), like WEI's ids."""
    number = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def _now() -> str:
    return datetime.now().isoformat()


class ClientError(Exception):
    """An error the fake client must raise: the exception type the real client raises, and its message.

    ``kind`` is a builtin exception name, ``HTTPError`` (``requests``' error for a refused request, with
    ``status_code`` and the URL ``path``) or ``WorkflowFailedException``.
    """

    def __init__(self, kind: str, message: str, *, status_code: int = 0, path: str = "") -> None:
        """Record what to raise."""
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.path = path

    def describe(self) -> str:
        """``Type: message`` for the trace."""
        if self.kind == "HTTPError":
            return f"HTTPError: {self.status_code} for {self.path}: {self.message}"
        return f"{self.kind}: {self.message}"


class SimLab:
    """One simulated lab (per configuration file) and its trace."""

    def __init__(self, config_path: Path) -> None:
        """Load the configuration and any existing trace (a second script appends to it)."""
        self.config_path = config_path.resolve()
        self.base = self.config_path.parent
        self.config: SimConfig = load_config(self.config_path)
        self.trace_path = resolve(Path.cwd(), self.config.trace)
        self.data_dir = self.trace_path.parent / f"{self.trace_path.stem}_data"
        self.trace: Trace = load_trace(self.trace_path)
        self.lab: Lab = self._load_lab()
        self.trace.lab, self.trace.workcell = self.lab.source, self.lab.workcell.name
        self._semantics: Any = None
        self._runs: dict[str, dict[str, Any]] = {}
        self.save()

    def _load_lab(self) -> Lab:
        cfg = self.config
        if cfg.lab_dir:
            self.trace.lab_dir = str(resolve(self.base, cfg.lab_dir).resolve())
            return lab_from_dir(Path(self.trace.lab_dir), strict=False)
        if cfg.workcell and cfg.abouts:
            self.trace.lab_workcell = str(resolve(self.base, cfg.workcell).resolve())
            self.trace.lab_abouts = str(resolve(self.base, cfg.abouts).resolve())
            workcell, abouts = Path(self.trace.lab_workcell), Path(self.trace.lab_abouts)
            return lab_from_workcell_and_abouts(workcell, abouts, strict=False)
        raise RuntimeError(f"{self.config_path}: the simulated lab needs 'lab_dir' or 'workcell' with 'abouts'")

    def save(self) -> None:
        """Write the trace file."""
        save_trace(self.trace, self.trace_path)

    # -- calls ---------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def call(self, method: str, details: dict[str, Any] | None = None) -> Iterator[CallRecord]:
        """Record one client call; an exception escaping it is recorded as the call's error."""
        record = CallRecord(method=method, details=jsonable(details or {}))
        self.trace.calls.append(record)
        try:
            yield record
        except ClientError as exc:
            record.error = exc.describe()
            raise
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self.save()

    def problem(self, text: str) -> None:
        """Record a problem not tied to one run (once)."""
        if text not in self.trace.problems:
            self.trace.problems.append(text)

    # -- experiments and campaigns -------------------------------------------------------------------------------

    def register_experiment(self, design: dict[str, Any]) -> dict[str, Any]:
        """Create an experiment from a design; return the ``Experiment`` fields."""
        experiment = {**design, "experiment_id": new_ulid(), "experiment_directory": None, "check_in_timestamp": None}
        self.trace.experiments.append(
            ExperimentRecord(
                experiment_id=experiment["experiment_id"],
                experiment_name=design.get("experiment_name"),
                campaign_id=design.get("campaign_id"),
            )
        )
        self.log_event({"event_type": "EXPERIMENT", "event_name": "START", "experiment": experiment})
        return experiment

    def continue_experiment(self, experiment_id: str) -> dict[str, Any]:
        """Continue an experiment by id (any id is accepted: the simulated lab has no history)."""
        known = next((e for e in self.trace.experiments if e.experiment_id == experiment_id), None)
        if known is None:
            known = ExperimentRecord(experiment_id=experiment_id, continued=True)
            self.trace.experiments.append(known)
        experiment = {
            "experiment_name": known.experiment_name or f"experiment {experiment_id}",
            "campaign_id": known.campaign_id,
            "experiment_id": experiment_id,
        }
        self.log_event({"event_type": "EXPERIMENT", "event_name": "CONTINUE", "experiment": experiment})
        return experiment

    def register_campaign(self, design: dict[str, Any]) -> dict[str, Any]:
        """Create a campaign; return the ``Campaign`` fields."""
        return {**design, "campaign_id": new_ulid(), "experiment_ids": []}

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """Any campaign id exists in the simulated lab."""
        return {"campaign_name": f"campaign {campaign_id}", "campaign_id": campaign_id, "experiment_ids": []}

    def log_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Record an event; return it as the server would."""
        stored = {"event_id": new_ulid(), "event_timestamp": _now(), **jsonable(event)}
        info = {k: v for k, v in stored.items() if k not in ("event_type", "event_name", "experiment_id")}
        self.trace.events.append(
            EventRecord(
                event_type=str(stored.get("event_type", "")),
                event_name=str(stored.get("event_name", "")),
                experiment_id=stored.get("experiment_id"),
                info=info,
            )
        )
        if stored.get("event_type") == "EXPERIMENT" and stored.get("event_name") == "END":
            for exp in self.trace.experiments:
                if exp.experiment_id == stored.get("experiment_id"):
                    exp.ended = True
        return stored

    # -- runs ----------------------------------------------------------------------------------------------------

    def record_rejection(self, source: str, problem: str, error: BaseException, **flags: Any) -> None:
        """A ``start_run`` the client refused before the workflow was even loaded (bad path, bad YAML, a dict)."""
        record = RunRecord(workflow_source=source, status="rejected", error=f"{type(error).__name__}: {error}")
        for key, value in flags.items():
            if key in ("parameters", "payload"):
                setattr(record, key, jsonable(value) if value is not None else None)
            elif key in ("simulate", "blocking", "validate_only"):
                setattr(record, key, bool(value))
        record.problems.append(problem)
        self.trace.runs.append(record)
        self.save()

    def start_run(
        self,
        workflow: dict[str, Any],
        *,
        source: str,
        experiment_id: str | None,
        parameters: dict[str, Any] | None,
        payload: dict[str, Any] | None,
        simulate: bool = False,
        blocking: bool = True,
        validate_only: bool = False,
        raise_on_failed: bool = True,
        working_dir: str = ".",
    ) -> dict[str, Any]:
        """Submit a workflow (a ``Workflow`` model dump, not yet substituted); return the ``WorkflowRun`` fields.

        Raises :class:`ClientError` wherever WEI 0.7.4's client would raise.
        """
        declared = [p for p in workflow.get("parameters") or [] if isinstance(p, dict)]
        record = RunRecord(
            workflow_name=str(workflow.get("name", "")),
            workflow_source=source,
            experiment_id=experiment_id,
            parameters=jsonable(parameters) if parameters is not None else None,
            payload=jsonable(payload) if payload is not None else None,
            simulate=simulate,
            blocking=blocking,
            validate_only=validate_only,
            declared_parameters=[str(p.get("name")) for p in declared],
        )
        self.trace.runs.append(record)
        try:
            return self._start_run(
                record, workflow, declared, parameters, payload, Path(working_dir), raise_on_failed=raise_on_failed
            )
        except ClientError as exc:
            record.error = exc.describe()
            if record.status != "failed":
                record.status = "rejected"
            raise
        finally:
            self.save()

    def _start_run(
        self,
        record: RunRecord,
        workflow: dict[str, Any],
        declared: list[dict[str, Any]],
        parameters: dict[str, Any] | None,
        payload: dict[str, Any] | None,
        working_dir: Path,
        *,
        raise_on_failed: bool,
    ) -> dict[str, Any]:
        if payload is not None:
            record.warnings.append("payload= is deprecated since WEI 0.7.2 (the client warns); use parameters")
        referenced = set(_REFERENCE.findall(json.dumps(workflow.get("flowdef") or [], default=str)))
        for name in parameters or {}:
            # an undeclared name the workflow does use is substituted by WEI; the validator reports it
            if name not in record.declared_parameters and name not in referenced:
                record.problems.append(
                    f"the script passes parameter '{name}', which the workflow does not declare "
                    f"(declared: {', '.join(record.declared_parameters) or 'none'}); WEI ignores it, "
                    "so that value never reaches the workflow"
                )
        steps = self._client_side(record, workflow, declared, parameters)
        uploads = self._client_files(record, steps, payload or {}, working_dir)
        if record.experiment_id is None:
            record.problems.append(
                "the ExperimentClient has no experiment: WEI 0.7.4's start_run needs one "
                "(pass experiment=ExperimentDesign(experiment_name=...) to the constructor)"
            )
            raise ClientError("AttributeError", "'NoneType' object has no attribute 'experiment_id'")
        self._check_uploads(record, steps, uploads)
        flowdef = copy.deepcopy(steps)  # what the client sent: substituted, file paths replaced by file names
        # -- the server from here on --
        if not all(isinstance(k, str) for k in (payload or {})):
            message = "Payload must be a dictionary with string keys"
            raise ClientError("HTTPError", message, status_code=400, path="/runs/start")
        for step in steps:
            if payload and isinstance(step.get("args"), dict):
                step["args"] = wei_params.inject_payload(step["args"], payload)
        record.planned = [
            PlannedStep(
                name=str(s["name"]),
                module=str(s["module"]),
                action=str(s["action"]),
                args=jsonable(s.get("args") or {}),
            )
            for s in steps
        ]
        submitted = {"name": workflow.get("name"), "flowdef": [_step_data(s) for s in steps]}
        self._server_validation(record, workflow, submitted)
        run_id = new_ulid()
        record.run_id = run_id
        if record.validate_only:
            record.problems.append(
                "validate_only=True: WEI 0.7.4's client never sends this flag, so the server queues the workflow and "
                "it really runs (validate_workflow() too); check workflows with 'wei-gen validate' instead"
            )
        run = self._execute(record, workflow, steps, submitted, uploads, payload or {})
        run["flowdef"] = flowdef
        self._runs[run_id] = run
        if run["status"] == "failed" and record.blocking and raise_on_failed:
            failed = run["steps"][run["step_index"]]
            raise ClientError(
                "WorkflowFailedException",
                f"Workflow {run['name']} ({run_id}) failed on step {run['step_index']}: '{failed['name']}'.",
            )
        return run if record.blocking else _queued_view(run)

    def _client_side(
        self,
        record: RunRecord,
        workflow: dict[str, Any],
        declared: list[dict[str, Any]],
        parameters: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """Parameters as the 0.7.4 client inserts them (it raises before anything is sent)."""
        notes: list[str] = []
        try:
            values = wei_params.effective_parameters(declared, parameters)
            record.effective_parameters = jsonable(values)
            steps = wei_params.insert_parameters(list(workflow.get("flowdef") or []), values, notes)
        except (ValueError, KeyError, SyntaxError, AttributeError, TypeError) as exc:
            message = str(exc)
            if isinstance(exc, AttributeError) and parameters is None:
                record.problems.append("parameters=None: WEI 0.7.4's client needs a dict (its default is {})")
            elif isinstance(exc, KeyError):
                message = f"{exc} (an unknown ${{...}} parameter)"
            record.problems.append(f"the WEI client refuses the workflow before sending it: {message}")
            raise ClientError(type(exc).__name__, str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)) from None
        record.problems += notes
        self._parameter_diagnostics(record, workflow, values)
        return steps

    def _parameter_diagnostics(self, record: RunRecord, workflow: dict[str, Any], values: dict[str, Any]) -> None:
        """What wei-gen's validator says about the parameters of the workflow as written."""
        original = {
            "name": workflow.get("name"),
            "parameters": [
                {"name": p.get("name"), "default": p.get("default")} for p in workflow.get("parameters") or []
            ],
            "flowdef": [_step_data(s) for s in workflow.get("flowdef") or []],
        }
        report = validate_data(original, self.lab, source=record.workflow_source, parameters=values)
        for diag in report.diagnostics:
            if diag.code in _PARAMETER_CODES:
                self._diagnostic(record, "validator", diag)

    def _client_files(
        self, record: RunRecord, steps: list[dict[str, Any]], payload: dict[str, Any], working_dir: Path
    ) -> list[dict[str, str]]:
        """Resolve and "upload" step files as the client does: ``payload.x`` values, paths relative to working_dir."""
        uploads: list[dict[str, str]] = []
        for step in steps:
            files = step.get("files") or {}
            local: dict[str, str] = {}
            for key, value in files.items():
                text = str(value)
                if text.startswith("payload."):
                    short = text.split(".")[1]
                    if short in payload:
                        text = str(payload[short])
                    elif text in payload:
                        text = str(payload[text])
                    else:
                        message = f"File '{key}' looks like a payload entry, but payload does not contain {value}"
                        record.problems.append(message)
                        raise ClientError("KeyError", message)
                path = Path(text) if Path(text).is_absolute() else working_dir / text
                local[str(key)] = str(path)
                files[key] = path.name
            uploads.append(local)
        return uploads

    def _check_uploads(self, record: RunRecord, steps: list[dict[str, Any]], uploads: list[dict[str, str]]) -> None:
        """The client opens every file to upload it: a missing one is a ``FileNotFoundError``."""
        for step, local in zip(steps, uploads, strict=True):
            for key, path in local.items():
                if not Path(path).is_file() and self.config.missing_files_ok:
                    record.warnings.append(
                        f"step '{step.get('name')}' uploads files.{key} from {path}, which does not exist yet "
                        "(the real client would raise FileNotFoundError)"
                    )
                elif not Path(path).is_file():
                    record.problems.append(
                        f"step '{step.get('name')}' uploads files.{key} from {path}, which does not exist "
                        "(relative paths are resolved against the client's working_dir)"
                    )
                    raise ClientError("FileNotFoundError", f"[Errno 2] No such file or directory: '{path}'")

    def _server_validation(self, record: RunRecord, workflow: dict[str, Any], submitted: dict[str, Any]) -> None:
        """The server's checks, done by wei-gen's validator against the lab: any error rejects the run."""
        report = validate_data(submitted, self.lab, source=record.workflow_source)
        for diag in report.diagnostics:
            self._diagnostic(record, "validator", diag)
        if report.errors:
            for diag in report.errors:
                where = f"step {diag.step_index + 1} '{diag.step_name}': " if diag.step_index is not None else ""
                hint = f" ({diag.hint})" if diag.hint else ""
                record.problems.append(f"WEI rejects the workflow: {where}{diag.message} [{diag.code}]{hint}")
            first = report.errors[0]
            more = f" (+{len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
            raise ClientError(
                "HTTPError",
                f"the simulated WEI server rejected workflow '{workflow.get('name')}': {first.message}{more}",
                status_code=500,
                path="/runs/start",
            )

    def _diagnostic(self, record: RunRecord, source: str, diag: Diagnostic) -> None:
        record.diagnostics.append(DiagnosticRecord.of(source, diag))
        if diag.severity == "warning":
            record.warnings.append(f"{diag.message} [{diag.code}]")
        elif diag.severity == "error" and source == "validator" and diag.code in _PARAMETER_CODES:
            record.problems.append(f"{diag.message} [{diag.code}]" + (f" ({diag.hint})" if diag.hint else ""))

    def _flow_failure(self, record: RunRecord, submitted: dict[str, Any]) -> tuple[int, str] | None:
        """The z3 labware-flow check; an unsat verdict becomes a step failing on the simulated lab.

        In a sandbox z3 cannot load (it needs ctypes): a verdict the parent computed for these very steps is used,
        else the run is marked ``flow_checked=False`` for the parent to check from the trace.
        """
        steps = submitted["flowdef"]
        verdict = self.config.flow_verdicts.get(flow_key(steps))
        if verdict is None:
            try:
                if self._semantics is None:
                    from wei_gen.tools.semantics import LabSemantics

                    self._semantics = LabSemantics(self.lab)
                verdict = flow_verdict(steps, self.lab, self._semantics)
            except ImportError as exc:
                record.flow_checked = False
                record.warnings.append(
                    f"the labware-flow check cannot run inside this process ({exc}); it is checked from the trace"
                )
                return None
            except Exception as exc:  # the simulation goes on; the report says the flow was not checked
                record.flow_checked = False
                record.warnings.append(f"the labware-flow check failed: {type(exc).__name__}: {exc}")
                return None
        record.diagnostics += verdict.diagnostics
        if verdict.verdict != "unsat":
            return None
        record.problems += [flow_problem_text(d) for d in verdict.diagnostics]
        return int(verdict.fail_at or 0), "simulated lab: " + verdict.reason

    def _matches_fail_step(self, index: int, step: dict[str, Any], original: dict[str, Any]) -> bool:
        wanted = self.config.fail_step
        if wanted is None:
            return False
        if isinstance(wanted, int):
            return index == wanted
        return wanted in (step.get("name"), original.get("name"))

    def _execute(
        self,
        record: RunRecord,
        workflow: dict[str, Any],
        steps: list[dict[str, Any]],
        submitted: dict[str, Any],
        uploads: list[dict[str, str]],
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        """Run the steps in order; the first failing one stops the run, as in WEI."""
        run_id = str(record.run_id)
        flow = self._flow_failure(record, submitted)
        originals = list(workflow.get("flowdef") or [])
        if self.config.fail_step is not None and not any(
            self._matches_fail_step(i, s, originals[i] if i < len(originals) else {}) for i, s in enumerate(steps)
        ):
            record.warnings.append(f"fail_step {self.config.fail_step!r} matches no step of this run")
        run_steps = [self._run_step_skeleton(s) for s in steps]
        status, index, started = "completed", max(len(steps) - 1, 0), _now()
        for i, step in enumerate(steps):
            error: str | None = None
            if record.simulate and i == 0:
                error = SIMULATE_BUG
                record.problems.append(
                    "simulate=True: WEI 0.7.4's simulate interface returns 3 values where the engine unpacks 4, so "
                    "a simulated run fails on its first step; use simulate=False"
                )
            elif self._matches_fail_step(i, step, originals[i] if i < len(originals) else {}):
                error = self.config.fail_message or f"simulated failure of step '{step.get('name')}' (fail_step)"
                record.warnings.append(f"step {i} '{step.get('name')}' failed as injected (fail_step)")
                record.failure_injected = True
            elif flow is not None and flow[0] == i:
                error = flow[1]
            result: dict[str, Any] = (
                {"status": "failed", "error": error, "data": None, "files": None}
                if error is not None
                else self._results(run_id, record.experiment_id, step, run_steps[i]["id"])
            )
            run_steps[i].update(start_time=_now(), end_time=_now(), duration=0.0, result=result)
            record.steps.append(
                StepRecord(
                    index=i,
                    name=str(step.get("name")),
                    module=str(step.get("module")),
                    action=str(step.get("action")),
                    args=jsonable(step.get("args") or {}),
                    files=uploads[i] if i < len(uploads) else {},
                    status=result["status"],
                    error=error,
                    data=dict(result["data"] or {}),
                )
            )
            if error is not None:
                status, index = "failed", i
                break
        record.status, record.step_index = status, index
        return {
            **{k: copy.deepcopy(workflow.get(k)) for k in ("name", "metadata", "parameters", "modules")},
            "flowdef": copy.deepcopy(steps),
            "label": workflow.get("name"),
            "run_id": run_id,
            "payload": payload,
            "status": status,
            "steps": run_steps,
            "experiment_id": record.experiment_id,
            "step_index": index,
            "simulate": record.simulate,
            "start_time": started,
            "end_time": _now(),
            "duration": 0.0,
        }

    def _run_step_skeleton(self, step: dict[str, Any]) -> dict[str, Any]:
        """The step as the server keeps it: a fresh id, location names replaced by coordinates (``locations``)."""
        out = copy.deepcopy(step)
        out["id"] = new_ulid()
        table = self.lab.locations(str(step.get("module")))
        locations: dict[str, Any] = {}
        for key, value in list((out.get("args") or {}).items()):
            if isinstance(value, str | int | float) and str(value) in table:
                out["args"][key] = copy.deepcopy(table[str(value)])
                locations[key] = value
        out["locations"] = locations
        for key in ("start_time", "end_time", "duration", "result"):
            out[key] = None
        return out

    def _results(self, run_id: str, experiment_id: str | None, step: dict[str, Any], step_id: str) -> dict[str, Any]:
        """A succeeded StepResponse with one datapoint per result label of the action (from the about)."""
        action = self.lab.action(str(step.get("module")), str(step.get("action")))
        labels = step.get("data_labels") or {}
        data: dict[str, str] = {}
        files: dict[str, str] = {}
        for result in action.results if action else []:
            label = str(labels.get(result.label, result.label))
            configured = self.config.results.get(label, self.config.results.get(result.label))
            has_value = label in self.config.results or result.label in self.config.results
            dp_id = new_ulid()
            common = {"id": dp_id, "label": label, "step_id": step_id, "workflow_id": run_id}
            if result.type == "local_file":
                self.data_dir.mkdir(parents=True, exist_ok=True)
                path = self.data_dir / f"{dp_id}{_suffix(label)}"
                content = _file_content(configured, has_value, label, str(step.get("name")))
                path.write_bytes(content)
                dp = DatapointRecord(**common, type="local_file", experiment_id=experiment_id, path=str(path))
                files[result.label] = path.name
            else:
                value = jsonable(configured) if has_value else _dummy_value(label)
                dp = DatapointRecord(**common, type="data_value", experiment_id=experiment_id, value=value)
            self.trace.datapoints[dp_id] = dp
            data[label] = dp_id
        return {"status": "succeeded", "error": None, "data": data or None, "files": files or None}

    def get_run(self, run_id: str) -> dict[str, Any]:
        """A run by id (404 when unknown)."""
        if run_id not in self._runs:
            raise ClientError("HTTPError", f"Workflow run {run_id} not found", status_code=404, path=f"/runs/{run_id}")
        return copy.deepcopy(self._runs[run_id])

    def run_log(self, run_id: str) -> str:
        """The run's log text."""
        run = self.get_run(run_id)
        lines = [f"{run['name']} ({run_id}): {run['status']}"]
        for i, step in enumerate(run["steps"]):
            lines.append(f"  [{i}] {step['name']}: {(step['result'] or {}).get('status', 'not run')}")
        return "\n".join(lines) + "\n"

    def run_files(self, run_id: str) -> dict[str, Path]:
        """File datapoints of a run: file name -> path."""
        self.get_run(run_id)
        return {
            Path(dp.path).name: Path(dp.path)
            for dp in self.trace.datapoints.values()
            if dp.workflow_id == run_id and dp.type == "local_file" and dp.path
        }

    # -- datapoints ----------------------------------------------------------------------------------------------

    def get_datapoint(self, datapoint_id: str) -> DatapointRecord:
        """A datapoint by id; unknown ids fail like the real server (500)."""
        dp = self.trace.datapoints.get(str(datapoint_id))
        if dp is None:
            self.problem(f"the script asked for datapoint '{datapoint_id}', which does not exist")
            raise ClientError(
                "HTTPError", f"no datapoint {datapoint_id}", status_code=500, path=f"/data/{datapoint_id}"
            )
        return dp

    def datapoint_value(self, datapoint_id: str) -> dict[str, Any] | bytes:
        """What ``GET /data/<id>`` returns: ``{"value": ...}`` for a value, the bytes for a file."""
        dp = self.get_datapoint(datapoint_id)
        if dp.type == "local_file" and dp.path:
            return Path(dp.path).read_bytes()
        return {"value": copy.deepcopy(dp.value)}

    def create_datapoint(self, datapoint: dict[str, Any]) -> dict[str, Any]:
        """Store a datapoint the script made (a file's content is copied into the lab's data folder)."""
        if datapoint.get("experiment_id") is None:
            raise ClientError(
                "HTTPError", "Experiment ID is required when uploading datapoints.", status_code=400, path="/data/"
            )
        dp_id = str(datapoint.get("id") or new_ulid())
        fields = {k: datapoint.get(k) for k in ("label", "type", "step_id", "workflow_id", "experiment_id")}
        if datapoint.get("type") == "local_file":
            source = Path(str(datapoint.get("path")))
            self.data_dir.mkdir(parents=True, exist_ok=True)
            target = self.data_dir / f"{dp_id}{source.suffix}"
            target.write_bytes(source.read_bytes())
            record = DatapointRecord(id=dp_id, **fields, path=str(target))
        else:
            record = DatapointRecord(id=dp_id, **fields, value=jsonable(datapoint.get("value")))
        self.trace.datapoints[dp_id] = record
        return {"status": "success"}

    def workcell_state(self) -> dict[str, Any]:
        """``GET /wc/state``: the workcell, ready modules, locations and the runs so far."""
        workcell = self.lab.workcell.model_dump(mode="json")
        tables = self.lab.workcell.locations
        ready = {"READY": True, "BUSY": False, "IDLE": True, "ERROR": False, "LOCKED": False, "PAUSED": False}
        return {
            "status": ready,
            "error": "",
            "locations": {
                name: {"name": name, "coordinates": {m: t[name] for m, t in tables.items() if name in t}}
                for name in sorted(self.lab.all_location_names())
            },
            "modules": {
                m.name: {**m.model_dump(mode="json"), "state": {"status": ready}} for m in self.lab.workcell.modules
            },
            "workflows": copy.deepcopy(self._runs),
            "workcell": workcell,
            "paused": False,
            "locked": False,
            "shutdown": False,
        }


def _queued_view(run: dict[str, Any]) -> dict[str, Any]:
    """A non-blocking start_run returns the run as just submitted: status new, nothing run yet."""
    view = copy.deepcopy(run)
    view.update(status="new", step_index=0, start_time=None, end_time=None, duration=None)
    for step in view["steps"]:
        step.update(start_time=None, end_time=None, duration=None, result=None)
    return view


def _step_data(step: dict[str, Any]) -> dict[str, Any]:
    """The definition keys of a step (what a workflow file holds), without empty optional ones."""
    return {
        key: step[key]
        for key in STEP_KEYS
        if key in step and (key in ("name", "module", "action") or step[key] not in (None, {}, []))
    }


def _dummy_value(label: str) -> float:
    """A deterministic plausible measurement in [0, 1) for a label."""
    digest = hashlib.sha256(label.encode()).hexdigest()
    return round(int(digest[:8], 16) / 0x100000000, 4)


def _suffix(label: str) -> str:
    lowered = label.lower()
    if any(w in lowered for w in ("image", "picture", "photo")):
        return ".jpg"
    return ".csv" if any(w in lowered for w in ("data", "assay", "absorbance", "reading")) else ".txt"


def _file_content(configured: Any, has_value: bool, label: str, step: str) -> bytes:
    if has_value:
        if isinstance(configured, bytes):
            return configured
        return (configured if isinstance(configured, str) else json.dumps(configured)).encode()
    return f"simulated {label} from step '{step}'\n".encode()


_INSTANCES: dict[str, SimLab] = {}


def get_simlab() -> SimLab:
    """The simulated lab named by ``$WEI_GEN_SIMLAB`` (one instance per configuration file and process)."""
    value = os.environ.get(CONFIG_ENV)
    if not value:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: this 'wei' package is wei-gen's simulated lab and only runs under "
            "'wei-gen simulate' (or with that variable naming a simulated-lab config)"
        )
    path = Path(value).resolve()
    if str(path) not in _INSTANCES:
        _INSTANCES[str(path)] = SimLab(path)
    return _INSTANCES[str(path)]
