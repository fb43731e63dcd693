"""A correct experiment script and an independent test module, as a programmer and a test designer would answer."""

from __future__ import annotations

import json


def script(parameters: dict[str, object]) -> str:
    """A script following the programmer's contract: main() runs workflow.yaml once and exits non-zero on failure."""
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


TESTS = """import json
import os
from pathlib import Path

import pytest


def last_run():
    return json.loads(Path("trace.json").read_text())["runs"][-1]


def test_every_step_runs():
    import experiment

    experiment.main()
    run = last_run()
    assert run["status"] == "completed"
    assert run["steps"] and all(step["status"] == "succeeded" for step in run["steps"])


def test_a_failing_step_stops_the_script(tmp_path, monkeypatch):
    config = json.loads(Path(os.environ["WEI_GEN_SIMLAB"]).read_text())
    config["fail_step"] = 0
    failing = tmp_path / "simlab.json"
    failing.write_text(json.dumps(config))
    monkeypatch.setenv("WEI_GEN_SIMLAB", str(failing))
    import experiment

    with pytest.raises(SystemExit):
        experiment.main()
"""
"""Tests written without seeing the script: a full run, and a failing step."""
