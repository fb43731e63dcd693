"""The offline programmer and test designer: a fixed ExperimentClient script and tests derived from the workflow.

The script follows the programmer's contract (``main()`` runs ``workflow.yaml`` once with the declared parameters
and exits non-zero when the run does not complete). The tests are written from the workflow only, as AgentCoder's
test designer must: every step runs in the workflow's order, the parameters are the declared ones, and a failing
step stops the script. Both run in the sandbox against the simulated lab like a model's would.
"""

from __future__ import annotations

import json
from typing import Any

from wei_gen.wei_types import Workflow


def experiment_script(parameters: dict[str, Any]) -> str:
    """A script that runs ``workflow.yaml`` once through WEI's ExperimentClient with these parameters."""
    return f'''"""Run the workflow with the scientist's values in the WEI lab."""
import os
from pathlib import Path

from wei import ExperimentClient
from wei.types.experiment_types import ExperimentDesign

PARAMETERS = {json.dumps(parameters)}


def main():
    client = ExperimentClient(
        os.environ.get("WEI_SERVER_HOST", "localhost"),
        os.environ.get("WEI_SERVER_PORT", "8000"),
        experiment=ExperimentDesign(experiment_name="wei-gen experiment"),
    )
    try:
        run = client.start_run(Path("workflow.yaml"), parameters=PARAMETERS, blocking=True)
    except Exception as exc:
        raise SystemExit(f"the run failed: {{exc}}")
    if run.status != "completed":
        raise SystemExit(f"the run ended {{run.status}}")
    return run


if __name__ == "__main__":
    main()
'''


_TESTS = '''"""Tests of experiment.py written from the workflow alone (the offline test designer)."""
import json
import os
from pathlib import Path

import pytest

EXPECTED_STEPS = {steps}
PARAMETERS = {parameters}


def last_run():
    return json.loads(Path("trace.json").read_text())["runs"][-1]


def test_every_step_runs_in_order():
    import experiment

    experiment.main()
    run = last_run()
    assert run["status"] == "completed"
    assert [[s["module"], s["action"]] for s in run["steps"]] == EXPECTED_STEPS
    assert all(s["status"] == "succeeded" for s in run["steps"])


def test_the_declared_parameters_are_passed():
    import experiment

    experiment.main()
    given = last_run()["parameters"] or {{}}
    assert {{k: given.get(k) for k in PARAMETERS}} == PARAMETERS


def test_a_failing_step_stops_the_script(tmp_path, monkeypatch):
    config = json.loads(Path(os.environ["WEI_GEN_SIMLAB"]).read_text())
    config["fail_step"] = len(EXPECTED_STEPS) - 1
    failing = tmp_path / "simlab.json"
    failing.write_text(json.dumps(config))
    monkeypatch.setenv("WEI_GEN_SIMLAB", str(failing))
    import experiment

    with pytest.raises(SystemExit):
        experiment.main()
'''


def parameter_values(workflow: Workflow) -> dict[str, Any]:
    """The workflow's declared parameters with their defaults."""
    return {p.name: p.default for p in workflow.parameters}


def experiment_tests(workflow: Workflow) -> str:
    """A pytest module for the experiment script, from the workflow's steps and parameters only."""
    steps = [[s.module, s.action] for s in workflow.flowdef]
    return _TESTS.format(steps=json.dumps(steps), parameters=json.dumps(parameter_values(workflow)))
