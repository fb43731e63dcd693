"""The whole graph with the offline planner on the example lab: no model, no key, the same checks as a model's run."""

from __future__ import annotations

from pathlib import Path

import pytest

from wei_gen.context import register_credentials
from wei_gen.session import WEIGen

DESCRIPTION = (
    "Take a fresh plate from tower 1, set up the PCR reactions on the PCR OT-2, seal it at 175 °C for 3 seconds, "
    "run program 3 on the thermocycler, peel the seal, take a photo of the plate and throw it away."
)
VALUES = {"plate_type": 1, "master_mix_ul": 20, "template_ul": 5}


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WEIGen:
    """A fresh machine: no API key, no endpoint, no config file."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WEI_GEN_LAB"):
        monkeypatch.delenv(name, raising=False)
    register_credentials("", "")
    return WEIGen(data_dir=tmp_path)


def test_main_job_runs_offline_through_every_check(app: WEIGen) -> None:
    assert app.context.planner_notice().startswith("offline planner: no model configured")
    session = app.new_session()
    status = session.execute_experiment(DESCRIPTION, VALUES)
    state = session.state()
    assert status.state == "done", status.reason
    assert state["feasibility"].method == "offline" and state["feasibility"].p_yes == 1.0
    assert state["planner"].mode == "offline" and state["planner"].unmapped == []
    reports = state["reports"]
    assert reports["plan"].ok and reports["workflow"].ok and reports["config"].ok
    assert state["flow"].verdict == "sat"
    # The script ran in the sandbox against the simulated lab and the offline test designer's tests passed.
    assert reports["code"].ok and not reports["code"].errors
    assert "EXPECTED_STEPS" in state["code"].tests
    assert sum(u.calls for u in state.get("usage", {}).values()) == 0  # no model was called
    steps = [f"{s.module}.{s.action}" for s in state["workflow"].workflow.flowdef]
    assert steps[0] == "sciclops.get_plate" and steps[-1] == "pf400.transfer"
    assert steps.index("sealer.seal") < steps.index("biometra.run_protocol") < steps.index("peeler.peel")
    assert session.get_history()["wei_gen"]["feasibility"]["method"] == "offline"


def test_infeasible_experiment_names_the_missing_capability(app: WEIGen) -> None:
    session = app.new_session()
    status = session.execute_experiment("Spin the plate down in the centrifuge at 1000 g for 5 minutes.")
    assert status.state == "infeasible"
    assert "centrifuge" in status.reason
    assert session.state()["feasibility"].missing_capability == "centrifuge"
    assert "workflow" not in session.state()


def test_chat_with_the_offline_planner_says_why_not_and_keeps_everything(app: WEIGen) -> None:
    session = app.new_session()
    session.execute_experiment("Take a fresh plate from tower 2, photograph it and throw it away.", {"plate_type": 1})
    before = session.state()
    reply = session.call_gen_env("workflow", "please add a second photo")
    after = session.state()
    assert "offline planner" in reply and "cannot chat" in reply and "update_generated" in reply
    assert after["workflow"].yaml == before["workflow"].yaml
    assert len(after["versions"]) == len(before["versions"])
    assert after["status"].state == "done"
