"""A correct experiment script and an independent test module, as a programmer and a test designer would answer.

The script is the offline programmer's (``wei_gen.offline.code``), so the scripted scenarios and the offline planner
exercise the same contract.
"""

from __future__ import annotations

from wei_gen.offline.code import experiment_script


def script(parameters: dict[str, object]) -> str:
    """A script following the programmer's contract: main() runs workflow.yaml once and exits non-zero on failure."""
    return experiment_script(dict(parameters))


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
