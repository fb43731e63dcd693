"""``ExperimentClient`` of the simulated ``wei`` package: WEI 0.7.4's public client API, talking to no server.

Same method names, argument names and defaults as ``wei.experiment_client.ExperimentClient`` 0.7.4, and the same
outcomes where a script can see them, including 0.7.4's surprises (each is also written to the trace as a problem):
``start_run`` without an experiment raises ``AttributeError``; a failed run raises ``WorkflowFailedException``
(``raise_on_failed=True``); a rejected workflow raises ``requests.exceptions.HTTPError``; ``validate_only=True`` is
never sent, so the workflow really runs; ``simulate=True`` runs fail on their first step; ``await_runs`` raises
``AttributeError``; ``get_experiment_datapoints`` returns ``None``; ``get_datapoint_value`` returns ``{"value": ...}``
for a value datapoint. Runs complete at once (``blocking=False`` returns the run as just queued; ask again for the
result), nothing is printed, and there is no check-in thread.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import sys
import warnings
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from ._http import http_error
from .types.base_types import PathLike
from .types.datapoint_types import DataPoint
from .types.event_types import (
    CommentEvent,
    DecisionEvent,
    Event,
    ExperimentEndEvent,
    GladierFlowEvent,
    GlobusComputeEvent,
    LocalComputeEvent,
    LoopStartEvent,
)
from .types.exceptions import WorkflowFailedException
from .types.experiment_types import Campaign, CampaignDesign, Experiment, ExperimentDesign
from .types.step_types import Step
from .types.workflow_types import Workflow, WorkflowRun

try:
    from wei_gen.simlab import engine as _engine
except ImportError:  # the sandbox's Python may only have this folder on its path: find wei_gen next to it
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from wei_gen.simlab import engine as _engine

_BUILTIN_ERRORS: dict[str, type[Exception]] = {
    "ValueError": ValueError,
    "KeyError": KeyError,
    "SyntaxError": SyntaxError,
    "AttributeError": AttributeError,
    "TypeError": TypeError,
    "FileNotFoundError": FileNotFoundError,
    "AssertionError": AssertionError,
    "WorkflowFailedException": WorkflowFailedException,
}


class ExperimentClient:
    """Runs WEI workflows and logs an experiment, against wei-gen's simulated lab."""

    connected = False
    timeout = 10
    experiment_started = False

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def __init__(
        self,
        server_host: str = "localhost",
        server_port: str = "8000",
        experiment: ExperimentDesign | Experiment | str | None = None,
        campaign: CampaignDesign | Campaign | str | None = None,
        working_dir: PathLike | None = None,
        log_experiment_end_on_exit: bool = True,
        timeout: int = 10,
    ) -> None:
        """Set up the client; with ``experiment``, register (design) or continue (id) it right away."""
        self._lab = _engine.get_simlab()
        self.server_host = server_host
        self.server_port = server_port
        self.url = f"http://{self.server_host}:{self.server_port}"
        self.log_experiment_end_on_exit = log_experiment_end_on_exit
        self.timeout = timeout
        self.experiment: ExperimentDesign | Experiment | str | None = experiment
        self.campaign: CampaignDesign | Campaign | str | None = campaign
        self.working_dir = Path(working_dir) if working_dir else Path.cwd()
        details = {
            "server_host": server_host,
            "server_port": server_port,
            "experiment": _describe(experiment),
            "campaign": _describe(campaign),
            "working_dir": str(self.working_dir),
        }
        with self._call("ExperimentClient", details):
            if experiment is None:
                self._lab.problem(
                    "ExperimentClient(...) without experiment=: WEI 0.7.4 cannot start runs or log events for it "
                    "(pass experiment=ExperimentDesign(experiment_name=...))"
                )
        self._ended_on_exit = False
        self._changed: list[Workflow] = []
        # WEI logs the end in __del__, which for a module-level client runs while the interpreter is already tearing
        # modules down; an exit hook does the same while everything still works.
        atexit.register(_end_on_exit, weakref.ref(self))
        if experiment:
            self.start_or_continue_experiment(experiment, campaign)

    def __del__(self) -> None:
        """Log the end of the experiment when the client goes away, if ``log_experiment_end_on_exit``."""
        if getattr(self, "log_experiment_end_on_exit", False) and not getattr(self, "_ended_on_exit", True):
            self._ended_on_exit = True
            with contextlib.suppress(Exception):  # as in WEI, a failure here is only "ignored in __del__"
                self.log_experiment_end()

    def __enter__(self) -> ExperimentClient:
        """Use the client as a context manager."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        """Nothing to clean up (as in 0.7.4)."""

    def _call(self, method: str, details: dict[str, Any] | None = None) -> Any:
        return self._lab.call(method, details)

    def _raise(self, error: _engine.ClientError) -> NoReturn:
        """Raise what the real client raises for this outcome."""
        if error.kind == "HTTPError":
            raise http_error(error.status_code, f"{self.url}{error.path}", error.message) from None
        raise _BUILTIN_ERRORS.get(error.kind, RuntimeError)(error.message) from None

    def _connect_to_server(self) -> None:
        """The simulated server is always up."""
        self.connected = True

    def _experiment_id(self) -> str:
        """``self.experiment.experiment_id``, failing like 0.7.4 when there is no experiment."""
        if not isinstance(self.experiment, Experiment):
            raise AttributeError(f"'{type(self.experiment).__name__}' object has no attribute 'experiment_id'")
        return self.experiment.experiment_id

    def start_or_continue_experiment(
        self,
        experiment: ExperimentDesign | Experiment | str,
        campaign: CampaignDesign | Campaign | str | None = None,
    ) -> None:
        """Register a new experiment (design) or continue one (``Experiment`` or id), optionally in a campaign."""
        details = {"experiment": _describe(experiment), "campaign": _describe(campaign)}
        with self._call("start_or_continue_experiment", details):
            self._connect_to_server()
            if isinstance(campaign, str):
                self.campaign = Campaign.model_validate(self._lab.get_campaign(campaign))
            elif isinstance(campaign, Campaign):
                self.campaign = Campaign.model_validate(self._lab.get_campaign(campaign.campaign_id))
            elif isinstance(campaign, CampaignDesign):
                self.campaign = Campaign.model_validate(self._lab.register_campaign(campaign.model_dump(mode="json")))
            elif campaign is not None:
                raise ValueError("Campaign must be of type Campaign, CampaignDesign, or a ULID campaign_id")
            if isinstance(experiment, str):
                self.experiment = Experiment.model_validate(self._lab.continue_experiment(experiment))
            elif isinstance(experiment, Experiment):
                self.experiment = Experiment.model_validate(self._lab.continue_experiment(experiment.experiment_id))
            elif isinstance(experiment, ExperimentDesign):
                if isinstance(self.campaign, Campaign):
                    experiment.campaign_id = self.campaign.campaign_id
                self.experiment = Experiment.model_validate(
                    self._lab.register_experiment(experiment.model_dump(mode="json"))
                )
            else:
                raise ValueError("Experiment must be of type Experiment, ExperimentDesign, or a ULID experiment_id")
            if self.experiment.campaign_id:
                self.campaign = Campaign.model_validate(self._lab.get_campaign(self.experiment.campaign_id))
            self.experiment_started = True
            self.check_in()

    def check_in(self) -> None:
        """The real client starts a thread that checks in every 10 s; the simulated lab needs none."""

    def _check_experiment(self) -> None:
        """As in 0.7.4: only acts when ``experiment_started`` is None, which it never is."""
        if self.experiment_started is None:
            if self.experiment is None:
                raise ValueError(
                    "Experiment has not been set. Please assign a valid experiment before performing this action."
                )
            self.start_or_continue_experiment(self.experiment, self.campaign)

    # -- workflows -----------------------------------------------------------------------------------------------

    def start_run(
        self,
        workflow: Workflow | PathLike,
        payload: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = {},  # noqa: B006 - WEI 0.7.4's default (never mutated here)
        simulate: bool = False,
        blocking: bool = True,
        validate_only: bool = False,
        raise_on_failed: bool = True,
        raise_on_cancelled: bool = True,
    ) -> WorkflowRun:
        """Submit a workflow (a ``Workflow`` or a YAML path) and, with ``blocking``, wait for it; return the run."""
        flags = {
            "parameters": parameters,
            "payload": payload,
            "simulate": simulate,
            "blocking": blocking,
            "validate_only": validate_only,
        }
        source = str(workflow) if isinstance(workflow, str | Path) else f"<{type(workflow).__name__} object>"
        with self._call("start_run", {"workflow": source, **flags, "raise_on_failed": raise_on_failed}):
            self._connect_to_server()
            self._check_experiment()
            if payload is not None:
                warnings.warn(
                    message="Payload is deprecated, use parameters and $ insertion syntax instead",
                    category=UserWarning,
                    stacklevel=2,
                )
            if any(changed is workflow for changed in self._changed):
                self._lab.problem(
                    "the script passes the same Workflow object to start_run again: WEI 0.7.4 wrote the first run's "
                    "parameter values (and bare file names) into that object, so later runs ignore their parameters; "
                    "pass the YAML path (or a fresh copy) each time"
                )
            loaded = self._load_workflow(workflow, source, flags)
            experiment_id = self.experiment.experiment_id if isinstance(self.experiment, Experiment) else None
            try:
                run = self._lab.start_run(
                    loaded.model_dump(mode="json"),
                    source=source,
                    experiment_id=experiment_id,
                    parameters=parameters,
                    payload=payload,
                    simulate=simulate,
                    blocking=blocking,
                    validate_only=validate_only,
                    raise_on_failed=raise_on_failed,
                    working_dir=str(self.working_dir),
                )
            except _engine.ClientError as error:
                self._raise(error)
            if isinstance(workflow, Workflow):
                self._modify_in_place(workflow, run["flowdef"])
            return WorkflowRun.model_validate(run)

    def _modify_in_place(self, workflow: Workflow, flowdef: list[dict[str, Any]]) -> None:
        """0.7.4 substitutes parameters (and file names) into the very ``Workflow`` object it is given."""
        before = workflow.model_dump(mode="json", include={"flowdef"})
        workflow.flowdef = [Step.model_validate(step) for step in flowdef]
        if workflow.model_dump(mode="json", include={"flowdef"}) != before:
            self._changed.append(workflow)

    def _load_workflow(self, workflow: Any, source: str, flags: dict[str, Any]) -> Workflow:
        """Load the workflow as 0.7.4's client does: a path to YAML, or a ``Workflow`` model (not a dict)."""
        try:
            if isinstance(workflow, str | Path):
                path = Path(workflow).expanduser().resolve()
                if not path.exists():
                    raise AssertionError(f"Workflow file {path} does not exist")
                return Workflow.from_yaml(path)
            validated = Workflow.model_validate(workflow)
            if isinstance(workflow, dict):
                raise AttributeError("'dict' object has no attribute 'parameters'")
            return validated.model_copy(deep=True)
        except Exception as exc:
            if isinstance(exc, AttributeError):
                problem = "start_run got a dict: WEI 0.7.4 takes a Workflow object or a YAML path, not a dict"
            elif isinstance(exc, AssertionError):
                problem = f"start_run: the workflow file {source} does not exist (relative to the script's CWD)"
            else:
                problem = f"start_run: the workflow {source} does not load as a WEI Workflow: {exc}"
            self._lab.record_rejection(source, problem, exc, **flags)
            raise

    def validate_workflow(self, workflow: Workflow | PathLike, payload: dict[str, Any] | None = None) -> WorkflowRun:
        """Meant to validate without running; 0.7.4's client never sends ``validate_only``, so the workflow runs."""
        self._connect_to_server()
        self._check_experiment()
        return self.start_run(workflow=workflow, payload=payload, validate_only=True)

    def await_runs(self, run_ids: list[str]) -> dict[str, WorkflowRun]:
        """Wait for several runs (in 0.7.4 this raises ``AttributeError`` as soon as there is a run id)."""
        with self._call("await_runs", {"run_ids": [str(r) for r in run_ids]}):
            self._connect_to_server()
            self._check_experiment()
            results: dict[str, WorkflowRun] = {}
            for run_id in run_ids:
                run = self.query_run(run_id)
                self._lab.problem(
                    "await_runs() raises AttributeError in WEI 0.7.4 (it calls .is_active on the run's status, "
                    "which is a plain string); use wait_for_workflow() or query_run() per run"
                )
                raise AttributeError(f"'{type(run.status).__name__}' object has no attribute 'is_active'")
            return results

    def query_run(self, run_id: str) -> WorkflowRun:
        """The run with this id, as it is now."""
        with self._call("query_run", {"run_id": str(run_id)}):
            try:
                return WorkflowRun.model_validate(self._lab.get_run(str(run_id)))
            except _engine.ClientError as error:
                self._raise(error)

    get_run = query_run

    def get_run_log(self, run_id: str) -> Any:
        """The run's log."""
        with self._call("get_run_log", {"run_id": str(run_id)}):
            try:
                return self._lab.run_log(str(run_id))
            except _engine.ClientError as error:
                self._raise(error)

    def wait_for_workflow(self, workflow: WorkflowRun | str, polling_interval: float = 1.0) -> WorkflowRun:
        """Wait until the run is completed, failed or cancelled (simulated runs already are)."""
        self._connect_to_server()
        self._check_experiment()
        if isinstance(workflow, WorkflowRun):
            run_id = workflow.run_id
        elif isinstance(workflow, str):
            run_id = str(workflow)
        else:
            raise ValueError("Invalid workflow type. Expected WorkflowRun, str, or ULID.")
        return self.query_run(run_id)

    # -- datapoints ----------------------------------------------------------------------------------------------

    def create_datapoint(self, datapoint: DataPoint) -> Any:
        """Attach a datapoint to the experiment."""
        with self._call("create_datapoint", {"label": datapoint.label, "type": datapoint.type}):
            if datapoint.experiment_id is None:
                datapoint.experiment_id = self._experiment_id()
            if datapoint.campaign_id is None and isinstance(self.experiment, Experiment):
                datapoint.campaign_id = self.experiment.campaign_id
            try:
                return self._lab.create_datapoint(datapoint.model_dump(mode="json"))
            except _engine.ClientError as error:
                self._raise(error)

    def get_datapoint_info(self, datapoint_id: str) -> DataPoint:
        """The metadata of a datapoint."""
        with self._call("get_datapoint_info", {"datapoint_id": str(datapoint_id)}):
            try:
                record = self._lab.get_datapoint(str(datapoint_id))
            except _engine.ClientError as error:
                self._raise(error)
            return DataPoint.model_validate(record.model_dump(exclude_none=True))

    def get_datapoint_value(self, datapoint_id: str) -> dict[str, Any] | bytes:
        """A datapoint's value: ``{"value": ...}`` for a value datapoint, the bytes of a file datapoint."""
        with self._call("get_datapoint_value", {"datapoint_id": str(datapoint_id)}):
            try:
                return self._lab.datapoint_value(str(datapoint_id))
            except _engine.ClientError as error:
                self._raise(error)

    def save_datapoint_value(self, datapoint_id: str, output_filepath: str) -> None:
        """Save a datapoint's value to a file (a value as text, a file as its bytes)."""
        with self._call("save_datapoint_value", {"datapoint_id": str(datapoint_id), "output": str(output_filepath)}):
            try:
                value = self._lab.datapoint_value(str(datapoint_id))
            except _engine.ClientError as error:
                self._raise(error)
            target = Path(output_filepath)
            if isinstance(value, dict):
                try:
                    target.write_text(str(value["value"]))
                    return
                except OSError:
                    value = json.dumps(value).encode()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(value)

    def get_experiment_datapoints(self) -> dict[str, DataPoint] | None:
        """In 0.7.4 this requests a URL the server does not serve, and so returns ``None``."""
        with self._call("get_experiment_datapoints"):
            self._experiment_id()
            self._lab.problem(
                "get_experiment_datapoints() returns None in WEI 0.7.4 (it requests /<experiment_id>/data instead "
                "of /experiments/<experiment_id>/data); read datapoints by id from run.steps[].result.data"
            )
            return None

    # -- events --------------------------------------------------------------------------------------------------

    def log_event(self, event: Event) -> Event:
        """Log an event in the experiment log."""
        with self._call("log_event", {"event_type": event.event_type, "event_name": event.event_name}):
            event.experiment_id = self._experiment_id()
            return Event.model_validate(self._lab.log_event(event.model_dump(mode="json")))

    def log_experiment_end(self) -> Event:
        """Log the end of the experiment."""
        experiment = self.experiment if isinstance(self.experiment, Experiment) else None
        return self.log_event(ExperimentEndEvent(experiment=experiment))

    def log_decision(self, decision_name: str, decision_value: bool) -> Event:
        """Log a decision."""
        return self.log_event(DecisionEvent(decision_name=decision_name, decision_value=decision_value))

    def log_comment(self, comment: str) -> Event:
        """Log a comment."""
        return self.log_event(CommentEvent(comment=comment))

    def log_local_compute(
        self,
        function_name: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        result: Any | None = None,
    ) -> Event:
        """Log a local computation."""
        return self.log_event(LocalComputeEvent(function_name=function_name, args=args, kwargs=kwargs, result=result))

    def log_globus_compute(
        self,
        function_name: str,
        args: list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        result: Any | None = None,
    ) -> Event:
        """Log a Globus computation."""
        return self.log_event(GlobusComputeEvent(function_name=function_name, args=args, kwargs=kwargs, result=result))

    def log_gladier_flow(self, flow_name: str, flow_id: Any) -> Event:
        """Log a Gladier flow."""
        return self.log_event(GladierFlowEvent(flow_name=flow_name, flow_id=flow_id))

    def log_loop_start(self, loop_name: str) -> Event:
        """Log the start of a loop."""
        return self.log_event(LoopStartEvent(loop_name=loop_name))

    # -- workcell and deprecated methods -------------------------------------------------------------------------

    def get_workcell_state(self) -> dict[str, Any]:
        """The state of the workcell: modules (all ready), locations, runs."""
        with self._call("get_workcell_state"):
            self._connect_to_server()
            return self._lab.workcell_state()

    def list_wf_files(self, run_id: str) -> Any:
        """Deprecated: the result files of a run."""
        warnings.warn(
            "The method list_wf_files is deprecated. Please use the new datapoints functionality instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        with self._call("list_wf_files", {"run_id": str(run_id)}):
            try:
                return sorted(self._lab.run_files(str(run_id)))
            except _engine.ClientError as error:
                self._raise(error)

    def get_wf_result_file(self, run_id: str, filename: str, output_filepath: str) -> Any:
        """Deprecated: save one result file of a run."""
        warnings.warn(
            "The method get_wf_result_file is deprecated. Please use save_datapoint_value instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        details = {"run_id": str(run_id), "filename": filename, "output": str(output_filepath)}
        with self._call("get_wf_result_file", details):
            try:
                files = self._lab.run_files(str(run_id))
            except _engine.ClientError as error:
                self._raise(error)
            Path(output_filepath).parent.mkdir(parents=True, exist_ok=True)
            if filename not in files:
                self._lab.problem(f"get_wf_result_file: run {run_id} has no result file '{filename}'")
                Path(output_filepath).write_bytes(b"Internal Server Error")
            else:
                Path(output_filepath).write_bytes(files[filename].read_bytes())
            return output_filepath


def _end_on_exit(ref: weakref.ref[ExperimentClient]) -> None:
    """At interpreter exit: what ``__del__`` does, for a client that is still alive."""
    client = ref()
    if client is not None:
        client.__del__()


def _describe(value: Any) -> Any:
    """A JSON-friendly summary of a constructor argument."""
    if value is None or isinstance(value, str):
        return value
    dump = getattr(value, "model_dump", None)
    return {"type": type(value).__name__, **dump(mode="json")} if callable(dump) else repr(value)
