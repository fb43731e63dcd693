"""The simulated WEI lab: experiment scripts written against WEI 0.7's real ``ExperimentClient`` API, run for real.

Each script runs in wei-gen's sandbox (``wei_gen.tools.sandbox``) with the fake ``wei`` package first on its path,
as ``wei-gen simulate`` does, against the example lab ``examples/labs/rpl_like`` and its PCR workflow. The checks
read the trace the simulated lab wrote. Nothing here touches the network; the fake ``wei`` never opens a socket.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from wei_gen.simlab import read_trace, simlab_path, trace_matches, write_config
from wei_gen.simlab.runner import SimulationResult, simulate_script
from wei_gen.simlab.simtrace import PlannedStep, RunRecord, StepRecord, Trace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "examples" / "labs" / "rpl_like"
PCR = LAB / "examples" / "pcr.yaml"
PCR_DATA = yaml.safe_load(PCR.read_text())
PCR_STEPS = [s["name"] for s in PCR_DATA["flowdef"]]

HEADER = """\
import json
import sys
from pathlib import Path

from wei import ExperimentClient
from wei.types import WorkflowStatus
from wei.types.experiment_types import ExperimentDesign
from wei.types.exceptions import WorkflowFailedException

experiment = ExperimentClient(
    "localhost", "8000", experiment=ExperimentDesign(experiment_name="PCR dry run")
)
"""

GOOD_SCRIPT = (
    HEADER
    + """
try:
    run = experiment.start_run(
        workflow=Path("workflow.yaml"),
        parameters={"seal_temperature": 170, "pcr_program": 5},
        simulate=False,
        blocking=True,
    )
except Exception as exc:
    sys.exit(f"the run failed: {exc}")
if run.status != WorkflowStatus.COMPLETED:
    sys.exit(f"the run ended {run.status}")
image_id = run.get_datapoint_id_by_label("pcr_plate_image")
image = experiment.get_datapoint_value(image_id)
info = experiment.get_datapoint_info(image_id)
log_id = run.get_datapoint_id_by_label("pcr_setup_log")
experiment.save_datapoint_value(log_id, "results/pcr_setup_log.txt")
print(json.dumps({
    "status": run.status,
    "steps": len(run.steps),
    "image_bytes": image.decode(),
    "image_label": info.label,
    "image_type": info.type,
    "log": Path("results/pcr_setup_log.txt").read_text(),
    "seal_args": run.get_step_by_name("Seal the plate").args,
    "move": run.get_step_by_name("Move plate to the sealer").model_dump(include={"args", "locations"}),
}))
experiment.log_experiment_end()
"""
)

STATUS_CHECKING_SCRIPT = (
    HEADER
    + """
run = experiment.start_run(Path("workflow.yaml"), parameters={}, raise_on_failed=False)
if run.status == WorkflowStatus.FAILED:
    failed = run.steps[run.step_index]
    sys.exit(f"step {run.step_index} '{failed.name}' failed: {failed.result.error}")
"""
)

FAILURE_IGNORING_SCRIPT = (
    HEADER
    + """
try:
    experiment.start_run(Path("workflow.yaml"))
except WorkflowFailedException as exc:
    print("never mind:", exc)
"""
)


def simulate(tmp_path: Path, script: str, workflow: Path = PCR, **kw: Any) -> SimulationResult:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "experiment.py"
    path.write_text(script)
    return simulate_script(path, workflow, lab_dir=LAB, workdir=tmp_path / "run", **{"timeout": 60, **kw})


def pcr_variant(tmp_path: Path, change: Any) -> Path:
    """A copy of the PCR workflow, changed by ``change(data)``, next to a copy of its protocol file."""
    data = yaml.safe_load(PCR.read_text())
    change(data)
    (tmp_path / "protocols").mkdir(exist_ok=True)
    (tmp_path / "protocols" / "pcr_setup.yaml").write_text((PCR.parent / "protocols" / "pcr_setup.yaml").read_text())
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------------------------------
# A correct script
# ---------------------------------------------------------------------------------------------------------------------


def test_correct_script_runs_every_step_in_order(tmp_path: Path) -> None:
    result = simulate(tmp_path, GOOD_SCRIPT, results={"pcr_setup_log": "protocol ran: 8 wells"})
    assert result.problems == [], result.stderr_tail
    assert result.returncode == 0
    [run] = result.trace.runs
    assert run.status == "completed"
    assert run.workflow_name == "PCR" and run.workflow_source == "workflow.yaml"
    assert [s.name for s in run.steps] == PCR_STEPS
    assert [s.index for s in run.steps] == list(range(len(PCR_STEPS)))
    assert all(s.status == "succeeded" and s.duration == 0 for s in run.steps)
    # parameters: supplied values and defaults, substituted (raw values for exact "$name" references)
    assert run.parameters == {"seal_temperature": 170, "pcr_program": 5}
    assert run.effective_parameters["tower"] == "tower1"
    by_name = {s.name: s for s in run.steps}
    assert by_name["Seal the plate"].args == {"temperature": 170, "time": 3.0}
    assert by_name["Run the PCR program"].args == {"program": 5, "plate_type": 1}
    assert by_name["Get a fresh PCR plate"].args == {"pos": "tower1", "lid": False}
    assert by_name["Set up PCR reactions"].files["protocol"].endswith("protocols/pcr_setup.yaml")
    assert "$" not in json.dumps([s.args for s in run.steps])
    # datapoints: one per result label of the abouts, named by data_labels, readable through the client
    labels = {dp.label: dp for dp in result.trace.datapoints.values()}
    assert set(labels) == {"pcr_setup_log", "pcr_plate_image"}
    assert by_name["Photograph the PCR plate"].data == {"pcr_plate_image": labels["pcr_plate_image"].id}
    out = json.loads(result.stdout_tail.splitlines()[-1])
    assert out["status"] == "completed" and out["steps"] == len(PCR_STEPS)
    assert out["image_label"] == "pcr_plate_image" and out["image_type"] == "local_file"
    assert "pcr_plate_image" in out["image_bytes"]
    assert out["log"] == "protocol ran: 8 wells"  # the configured value, as a file datapoint's content
    assert out["seal_args"] == {"temperature": 170, "time": 3.0}
    # the run's copy of a step holds coordinates for location names (kept in ``locations``), as WEI's engine does
    assert out["move"]["args"]["target"] == [198.3, 4.6, 251.9, 371.2, 77.0, 402.5]
    assert out["move"]["locations"] == {"source": "ot2_pcr.deck1", "target": "sealer.default"}
    assert by_name["Move plate to the sealer"].args["target"] == "sealer.default"  # the trace keeps the names
    methods = [c.method for c in result.trace.calls]
    assert methods[:3] == ["ExperimentClient", "start_or_continue_experiment", "start_run"]
    assert any(e.event_name == "END" for e in result.trace.events)
    assert trace_matches(result.trace, PCR) == []


def test_value_datapoints_and_the_rest_of_the_client(tmp_path: Path) -> None:
    """Value datapoints read as {"value": ...}; non-blocking runs, queries, events and workcell state work."""
    workflow = pcr_variant(
        tmp_path,
        lambda d: d["flowdef"][2]["data_labels"].update(log="setup_log"),
    )
    lab_results = {"setup_log": {"wells": 8}}
    script = (
        HEADER
        + """
from wei.types.datapoint_types import ValueDataPoint
run = experiment.start_run(Path("workflow.yaml"), blocking=False)
assert run.status == "new", run.status
done = experiment.wait_for_workflow(run)
assert done.status == WorkflowStatus.COMPLETED
again = experiment.query_run(run.run_id)
assert [s.name for s in again.steps] == [s.name for s in done.steps]
experiment.log_comment("all good")
experiment.log_decision("keep going", True)
point = ValueDataPoint(label="od600", value=0.42)
experiment.create_datapoint(point)
print(json.dumps({
    "log": experiment.get_datapoint_value(done.get_datapoint_id_by_label("setup_log")).decode(),
    "own": experiment.get_datapoint_value(point.id),
    "modules": sorted(experiment.get_workcell_state()["modules"]),
}))
"""
    )
    result = simulate(tmp_path, script, workflow, results=lab_results)
    assert result.problems == [], result.stderr_tail
    out = json.loads(result.stdout_tail.splitlines()[-1])
    assert json.loads(out["log"]) == {"wells": 8}
    assert out["own"] == {"value": 0.42}
    assert "sealer" in out["modules"]
    assert [e.event_name for e in result.trace.events][:3] == ["START", "COMMENT", "DECISION"]


# ---------------------------------------------------------------------------------------------------------------------
# Scripts and workflows that go wrong
# ---------------------------------------------------------------------------------------------------------------------


def test_undeclared_parameter_is_a_problem(tmp_path: Path) -> None:
    script = HEADER + '\nexperiment.start_run(Path("workflow.yaml"), parameters={"seal_temp": 160})\n'
    result = simulate(tmp_path, script)
    [run] = result.trace.runs
    assert run.status == "completed"  # WEI ignores unknown parameters: the default 175 °C is used silently
    assert run.steps[4].args["temperature"] == 175
    assert not result.ok
    assert any("'seal_temp'" in p and "does not declare" in p for p in result.problems)
    assert any("seal_temp" in p for p in trace_matches(result.trace, PCR))


def test_missing_parameter_value_fails_like_the_wei_client(tmp_path: Path) -> None:
    workflow = pcr_variant(tmp_path, lambda d: d["parameters"].append({"name": "operator"}))
    result = simulate(tmp_path, GOOD_SCRIPT, workflow)
    [run] = result.trace.runs
    assert run.status == "rejected" and run.steps == []
    assert run.error is not None and run.error.startswith("ValueError: Workflow parameter: operator not provided")
    assert result.returncode == 1
    assert any("operator not provided" in p for p in result.problems)


def test_undeclared_reference_in_the_workflow_fails(tmp_path: Path) -> None:
    workflow = pcr_variant(tmp_path, lambda d: d["flowdef"][4]["args"].update(temperature="$seal_temp"))
    result = simulate(tmp_path, GOOD_SCRIPT, workflow)
    [run] = result.trace.runs
    assert run.status == "rejected"
    assert run.error is not None and "Unknown parameter:$seal_temp" in run.error
    # supplied anyway: WEI substitutes it, but the workflow is still wrong
    script = HEADER + '\nexperiment.start_run(Path("workflow.yaml"), parameters={"seal_temp": 160})\n'
    result = simulate(tmp_path / "supplied", script, workflow)
    [run] = result.trace.runs
    assert run.status == "completed" and run.steps[4].args["temperature"] == 160
    assert any("'$seal_temp' is used but not declared" in p for p in result.problems)
    assert not any("WEI ignores it" in p for p in result.problems)


def test_unknown_module_is_rejected_with_the_validators_message(tmp_path: Path) -> None:
    workflow = pcr_variant(tmp_path, lambda d: d["flowdef"][4].update(module="sealr"))
    result = simulate(tmp_path, GOOD_SCRIPT, workflow)
    [run] = result.trace.runs
    assert run.status == "rejected" and run.steps == [] and run.run_id is None
    assert run.error is not None and run.error.startswith("HTTPError: 500")
    assert "HTTPError" in result.stderr_tail or "500 Server Error" in result.stderr_tail
    assert "module 'sealr' is not in workcell" in result.stderr_tail  # the script sees the reason too
    rejected = [p for p in result.problems if "WEI rejects the workflow" in p]
    assert rejected and "module 'sealr' is not in workcell" in rejected[0] and "did you mean 'sealer'" in rejected[0]
    assert any(d.code == "unknown-module" for d in run.diagnostics)


def test_broken_labware_flow_fails_the_run_at_that_step(tmp_path: Path) -> None:
    workflow = pcr_variant(tmp_path, lambda d: d["flowdef"].pop(3))  # drop "Move plate to the sealer"
    result = simulate(tmp_path, GOOD_SCRIPT, workflow)
    [run] = result.trace.runs
    assert run.status == "failed"
    assert run.steps[-1].name == "Seal the plate" and run.steps[-1].status == "failed"
    assert "sealer" in (run.steps[-1].error or "")
    assert run.error is not None and run.error.startswith("WorkflowFailedException")
    assert any(p.startswith("labware flow") for p in run.problems)
    assert result.returncode == 1 and not result.ok


def test_fail_step_stops_the_run_and_a_status_checking_script_exits_nonzero(tmp_path: Path) -> None:
    result = simulate(tmp_path, STATUS_CHECKING_SCRIPT, fail_step=4, fail_message="sealer jammed")
    [run] = result.trace.runs
    assert run.status == "failed" and run.step_index == 4 and run.failure_injected
    assert [s.name for s in run.steps] == PCR_STEPS[:5]
    assert run.steps[-1].status == "failed" and run.steps[-1].error == "sealer jammed"
    assert result.returncode == 1
    assert "step 4 'Seal the plate' failed: sealer jammed" in result.stderr_tail
    assert result.problems == []  # the injected failure was noticed: that is the clean outcome


def test_fail_step_by_name_and_a_script_that_ignores_failures(tmp_path: Path) -> None:
    result = simulate(tmp_path, FAILURE_IGNORING_SCRIPT, fail_step="Peel the seal")
    [run] = result.trace.runs
    assert run.status == "failed" and run.steps[-1].name == "Peel the seal"
    assert run.error is not None and run.error.startswith("WorkflowFailedException: Workflow PCR")
    assert result.returncode == 0
    assert any("does not stop with an error" in p for p in result.problems)


def test_wei_0_7_4_pitfalls_are_reproduced(tmp_path: Path) -> None:
    """No experiment, simulate=True, a dict instead of a Workflow: what the real client does, reported."""
    script = """\
from pathlib import Path
import yaml
from wei import ExperimentClient
from wei.types.experiment_types import ExperimentDesign

bare = ExperimentClient("localhost", 8000)
for call in (
    lambda: bare.start_run(Path("workflow.yaml")),
    lambda: ExperimentClient(experiment=ExperimentDesign(name="x")).start_run("workflow.yaml", simulate=True),
    lambda: ExperimentClient(experiment=ExperimentDesign(name="y")).start_run(yaml.safe_load(open("workflow.yaml"))),
):
    try:
        call()
    except Exception as exc:
        print(type(exc).__name__)
"""
    result = simulate(tmp_path, script)
    assert result.stdout_tail.split() == ["AttributeError", "WorkflowFailedException", "AttributeError"]
    no_experiment, simulated, as_dict = result.trace.runs
    assert no_experiment.status == "rejected" and "no experiment" in " ".join(no_experiment.problems)
    assert simulated.status == "failed"
    assert simulated.steps[0].error == "not enough values to unpack (expected 4, got 3)"
    assert any("simulate=True" in p for p in simulated.problems)
    assert as_dict.status == "rejected" and "not a dict" in " ".join(as_dict.problems)
    assert not result.ok


def test_more_wei_0_7_4_pitfalls(tmp_path: Path) -> None:
    """A reused Workflow object, validate_workflow, await_runs and get_experiment_datapoints behave as in 0.7.4."""
    script = (
        HEADER
        + """
from wei.types import Workflow
workflow = Workflow.from_yaml("workflow.yaml")
for temperature in (160, 170):
    try:
        run = experiment.start_run(workflow, parameters={"seal_temperature": temperature})
        print(run.get_step_by_name("Seal the plate").args["temperature"])
    except Exception as exc:
        print(type(exc).__name__)
checked = experiment.validate_workflow(Path("workflow.yaml"))
print(checked.status)
try:
    experiment.await_runs([checked.run_id])
except AttributeError:
    print("AttributeError")
print(experiment.get_experiment_datapoints())
"""
    )
    result = simulate(tmp_path, script)
    # the first run wrote 160 and the bare protocol file name into the object: the second run cannot find the file
    assert result.stdout_tail.split() == ["160", "FileNotFoundError", "completed", "AttributeError", "None"]
    first, second, validated = result.trace.runs
    assert first.status == "completed" and second.status == "rejected"
    assert second.steps == [] and "FileNotFoundError" in (second.error or "")
    assert validated.status == "completed" and validated.validate_only
    problems = " ".join(result.problems)
    for text in ("same Workflow object", "validate_only=True", "await_runs()", "get_experiment_datapoints()"):
        assert text in problems, text


def test_payload_is_injected_into_args(tmp_path: Path) -> None:
    workflow = pcr_variant(tmp_path, lambda d: d["flowdef"][4]["args"].update(temperature="payload.temp"))
    script = HEADER + '\nexperiment.start_run(Path("workflow.yaml"), payload={"temp": 150})\n'
    result = simulate(tmp_path, script, workflow)
    [run] = result.trace.runs
    assert run.status == "completed" and run.payload == {"temp": 150}
    assert run.steps[4].args == {"temperature": 150, "time": 3.0}
    assert any("payload= is deprecated" in w for w in run.warnings)


def test_parameter_substitution_quirks() -> None:
    from wei_gen.simlab.params import effective_parameters, substitute

    values = {"a": 1, "b": "two", "t": 2.5}
    assert substitute("$t", values) == 2.5  # an exact reference keeps the value's type
    assert substitute("wait ${t} s", values) == "wait 2.5 s"
    notes: list[str] = []
    assert substitute("$a and $b", values, notes, "args.x") == "1 and 1"  # 0.7.4 uses the first value for all
    assert notes and "wrong value" in notes[0]
    with pytest.raises(ValueError, match="Unknown parameter"):
        substitute("$missing", values)
    with pytest.raises(SyntaxError):
        substitute("oops $a}", values)
    with pytest.raises(ValueError, match="no default"):
        effective_parameters([{"name": "n", "default": 0}], {})  # a falsy default counts as none
    with pytest.raises(AttributeError):
        effective_parameters([{"name": "n", "default": 1}], None)


def test_missing_upload_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client opens every step file: a missing one fails like WEI, unless the config allows it (pipelines)."""
    workflow = pcr_variant(tmp_path, lambda d: d["flowdef"][2]["files"].update(protocol="protocols/later.yaml"))
    result = simulate(tmp_path, GOOD_SCRIPT, workflow)
    [run] = result.trace.runs
    assert run.status == "rejected" and (run.error or "").startswith("FileNotFoundError")
    assert any("uploads files.protocol" in p and "does not exist" in p for p in result.problems)

    from wei_gen.simlab.engine import SimLab

    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load(workflow.read_text())
    data["flowdef"] = [{**s, "args": s.get("args", {}), "files": s.get("files", {})} for s in data["flowdef"]]
    lab = SimLab(write_config(tmp_path / "cfg", LAB, missing_files_ok=True))
    run_dict = lab.start_run(
        data, source="variant.yaml", experiment_id="01JABCDEFGHJKMNPQRSTVWXYZ0", parameters={}, payload=None
    )
    assert run_dict["status"] == "completed"
    assert any("does not exist yet" in w for w in lab.trace.runs[0].warnings)
    assert read_trace(tmp_path / "trace.json").runs[0].status == "completed"


def test_sandbox_refusals_and_timeouts_are_problems(tmp_path: Path) -> None:
    script = (
        HEADER
        + """
import urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)
except Exception as exc:
    print("refused:", type(exc).__name__)
experiment.start_run(Path("workflow.yaml"))
"""
    )
    result = simulate(tmp_path, script)
    assert result.trace.runs[0].status == "completed" and result.returncode == 0
    assert result.blocked and any("the sandbox refused the script" in p for p in result.problems)
    slow = simulate(tmp_path / "slow", "import time\ntime.sleep(30)\n", timeout=2)
    assert slow.timed_out and slow.returncode is None
    assert any("did not finish within 2 s" in p for p in slow.problems)


# ---------------------------------------------------------------------------------------------------------------------
# trace_matches
# ---------------------------------------------------------------------------------------------------------------------


def test_trace_matches_a_script_running_another_workflow(tmp_path: Path) -> None:
    script = (
        HEADER
        + """
from wei.types import Step, Workflow
other = Workflow(
    name="Seal only",
    flowdef=[
        Step(name="Get a plate", module="sciclops", action="get_plate", args={"pos": "tower1"}),
        Step(name="To sealer", module="pf400", action="transfer",
             args={"source": "sciclops.exchange", "target": "sealer.default"}),
        Step(name="Seal", module="sealer", action="seal", args={"temperature": 175, "time": 3}),
    ],
)
experiment.start_run(other)
"""
    )
    result = simulate(tmp_path, script)
    [run] = result.trace.runs
    assert run.status == "completed" and run.workflow_source == "<Workflow object>"
    problems = trace_matches(result.trace, PCR)
    assert any("ran workflow 'Seal only', not 'PCR'" in p for p in problems)
    assert any("no run of workflow 'PCR'" in p for p in problems)
    assert trace_matches(result.trace, {**PCR_DATA, "name": "Seal only", "flowdef": PCR_DATA["flowdef"][:3]}) != []


def test_trace_matches_a_script_that_runs_nothing(tmp_path: Path) -> None:
    result = simulate(tmp_path, HEADER + '\nprint("forgot to run it")\n')
    assert result.trace.runs == [] and result.returncode == 0
    assert any("started no workflow run" in p for p in result.problems)
    assert "it never used the WEI client" in trace_matches(Trace(), PCR)[0]


def test_trace_matches_steps_that_differ() -> None:
    planned = [PlannedStep(name=s["name"], module=s["module"], action=s["action"]) for s in PCR_DATA["flowdef"]]
    planned[5] = PlannedStep(name="Open the lid", module="biometra", action="open_lid")
    steps = [StepRecord(index=i, name=p.name, module=p.module, action=p.action) for i, p in enumerate(planned)]
    run = RunRecord(workflow_name="PCR", status="completed", planned=planned, steps=steps, parameters={"speed": 2})
    problems = trace_matches(Trace(runs=[run]), PCR)
    assert any("step 6 differs" in p and "Open the thermocycler lid" in p for p in problems)
    assert any("'speed' is not declared" in p for p in problems)
    short = run.model_copy(update={"planned": planned[:3], "steps": steps[:3], "parameters": {}})
    assert any("submitted 3 step(s), the workflow has 16" in p for p in trace_matches(Trace(runs=[short]), PCR))


def test_config_and_trace_helpers(tmp_path: Path) -> None:
    config = write_config(tmp_path / "cfg", LAB, fail_step=2, results={"x": 1})
    data = json.loads(config.read_text())
    assert data["lab_dir"] == str(LAB) and data["fail_step"] == 2 and data["trace"] == "trace.json"
    assert (Path(simlab_path()) / "wei" / "__init__.py").is_file()
    assert read_trace(tmp_path / "nothing-here.json") == Trace()
    with pytest.raises(ValueError):
        write_config(tmp_path, None)


# ---------------------------------------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------------------------------------


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WEI_GEN_SIMLAB"}
    return subprocess.run(
        [sys.executable, "-m", "wei_gen", "simulate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text(GOOD_SCRIPT)
    bad.write_text(HEADER + '\nexperiment.start_run(Path("workflow.yaml"), parameters={"seal_temp": 160})\n')

    done = cli(good, "--workflow", PCR, "--lab", LAB, "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["problems"] == [] and report["returncode"] == 0
    assert [s["name"] for s in report["trace"]["runs"][0]["steps"]] == PCR_STEPS

    done = cli(bad, "--workflow", PCR, "--workcell", LAB / "workcell.yaml", "--abouts", LAB / "abouts")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "seal_temp" in done.stdout and "PROBLEMS" in done.stdout

    # an injected failure that the script notices (it exits non-zero) is the clean outcome ...
    done = cli(good, "--workflow", PCR, "--lab", LAB, "--fail-step", "4", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["returncode"] == 1 and report["trace"]["runs"][0]["step_index"] == 4
    # ... one it ignores is a problem
    ignoring = tmp_path / "ignoring.py"
    ignoring.write_text(FAILURE_IGNORING_SCRIPT)
    done = cli(ignoring, "--workflow", PCR, "--lab", LAB, "--fail-step", "Seal the plate")
    assert done.returncode == 1 and "does not stop with an error" in done.stdout

    done = cli(tmp_path / "missing.py", "--workflow", PCR, "--lab", LAB)
    assert done.returncode == 2 and "script not found" in done.stderr
    done = cli(good, "--workflow", PCR, "--lab", tmp_path / "no-lab")
    assert done.returncode == 2 and "cannot load the lab" in done.stderr
    done = cli(good, "--workflow", PCR, "--lab", LAB, "--format", "xml")
    assert done.returncode == 2
