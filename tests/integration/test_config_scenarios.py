"""Config phase through the whole graph: one and two liquid handlers, retry edge, offline builder, bundle."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from tests.support import experiment_code
from tests.support.scenarios import Scenario, args, fake_context, fake_model, model_context, ot2_protocol, pcr_plate
from wei_gen.bundle import write_bundle
from wei_gen.context import Context
from wei_gen.nodes import tests_design
from wei_gen.nodes.code import ScriptDraft
from wei_gen.nodes.config import Command, ProtocolConfig
from wei_gen.nodes.workflow import FileDraft, ParameterDraft, StepDraft, WorkflowDraft
from wei_gen.session import WEIGen
from wei_gen.state import Plan, PlanStep, Shortlist, ShortlistEntry
from wei_gen.tools.protocol import validate_protocol_text

PLATE = "corning_96_wellplate_360ul_flat"
VALUES = {
    "ot2_prep": {"dye_ul": 100, "buffer_ul": 50},
    "ot2_pcr": {"master_mix_ul": 15, "template_ul": 5},
    "temperature": 175,
}


def prep_config() -> ProtocolConfig:
    return ot2_protocol(
        "Dye prep",
        {PLATE: "2", "nest_12_reservoir_15ml": "3", "opentrons_96_tiprack_300ul": "9"},
        ("p300_single_gen2", "right"),
        [
            Command(name="dye", source="3:A1", destination="2:A1", volume=100),
            Command(name="buffer", source="3:A2", destination="2:A1", volume=50, mix_cycles=3, mix_volume=100),
        ],
        "100 µL dye + 50 µL buffer",
    )


def pcr_config(volume: float = 15, pipette: str = "p20_single_gen2", tips: str = "20ul") -> ProtocolConfig:
    return ot2_protocol(
        "PCR mix",
        {PLATE: "1", "opentrons_24_tuberack_nest_1.5ml_snapcap": "2", f"opentrons_96_tiprack_{tips}": "8"},
        (pipette, "left"),
        [
            Command(name="master mix", source="2:A1", destination="1:B1", volume=volume),
            Command(name="template", source="2:A2", destination="1:B1", volume=5),
        ],
    )


def two_handlers(configs: list[ProtocolConfig] | None = None) -> Scenario:
    """Dye prep on ot2_prep, then PCR mix on ot2_pcr, then seal: two OT-2 protocol configs."""
    moves = [
        ("sciclops.exchange", "ot2_prep.deck2"),
        ("ot2_prep.deck2", "ot2_pcr.deck1"),
        ("ot2_pcr.deck1", "sealer.default"),
    ]
    plan = Plan(
        title="Dye then PCR",
        steps=[
            PlanStep(instrument="sciclops", action="get_plate", args=args(pos="tower1")),
            PlanStep(instrument="pf400", action="transfer", args=args(source=moves[0][0], target=moves[0][1])),
            PlanStep(instrument="ot2_prep", action="run_protocol"),
            PlanStep(instrument="pf400", action="transfer", args=args(source=moves[1][0], target=moves[1][1])),
            PlanStep(instrument="ot2_pcr", action="run_protocol"),
            PlanStep(instrument="pf400", action="transfer", args=args(source=moves[2][0], target=moves[2][1])),
            PlanStep(instrument="sealer", action="seal", args=args(temperature=175, time=3)),
        ],
    )

    def move(name: str, pair: tuple[str, str]) -> StepDraft:
        return StepDraft(name=name, module="pf400", action="transfer", args=args(source=pair[0], target=pair[1]))

    workflow = WorkflowDraft(
        name="Dye then PCR",
        parameters=[ParameterDraft(name="temp", default="175")],
        steps=[
            StepDraft(name="Get plate", module="sciclops", action="get_plate", args=args(pos="tower1")),
            move("To prep OT-2", moves[0]),
            StepDraft(name="Dye", module="ot2_prep", action="run_protocol",
                      files=[FileDraft(name="protocol", path="configs/ot2_prep_protocol.yaml")]),
            move("To PCR OT-2", moves[1]),
            StepDraft(name="PCR mix", module="ot2_pcr", action="run_protocol",
                      files=[FileDraft(name="protocol", path="configs/ot2_pcr_protocol.yaml")]),
            move("To sealer", moves[2]),
            StepDraft(name="Seal", module="sealer", action="seal", args=args(temperature="$temp", time=3)),
        ],
    )  # fmt: skip
    answers: dict[str, list[Any]] = {
        "plan": [plan],
        "shortlist": [Shortlist(modules=[ShortlistEntry(module=m) for m in ("ot2_prep", "ot2_pcr", "sealer")])],
        "workflow": [workflow],
        "tests": [tests_design.TestsDraft(tests=experiment_code.TESTS)],
        "code": [ScriptDraft(script=experiment_code.script({"temp": 175}))],
    }
    if configs is not None:
        answers["config"] = list(configs)
    return Scenario("two_handlers", "Dye the plate on the prep OT-2, set up PCR on the PCR OT-2, seal.", VALUES, 0.9,
                    answers)  # fmt: skip


def run(scenario: Scenario, tmp: Path, context: Context | None = None) -> Any:
    app = WEIGen(context=context or fake_context(scenario), data_dir=tmp)
    session = app.new_session()
    session.execute_experiment(scenario.description, scenario.values)
    return session


def test_one_liquid_handler_config_is_generated_and_validated(tmp_path: Path) -> None:
    scenario = pcr_plate()
    session = run(scenario, tmp_path)
    state = session.state()
    assert session.status.state == "done", session.status
    config = state["config"]
    assert [f.path for f in config.files] == ["configs/ot2_pcr_protocol.yaml"]
    assert state["reports"]["config"].diagnostics == []
    # The file is in the driver's own shape: pipettes carry no location, labware no mount, and it re-validates.
    data = yaml.safe_load(config.files[0].content)
    assert {"name": "p20_single_gen2", "mount": "left"} in data["equipment"]
    assert validate_protocol_text(config.files[0].content, values=scenario.values).diagnostics == []
    assert "### ot2_pcr (`configs/ot2_pcr_protocol.yaml`)" in config.setup
    assert "A1: at least 15 µL of master mix" in config.setup


def test_two_liquid_handlers_get_one_config_each(tmp_path: Path) -> None:
    scenario = two_handlers([prep_config(), pcr_config()])
    session = run(scenario, tmp_path)
    state = session.state()
    assert session.status.state == "done", (session.status, state["reports"]["config"].diagnostics)
    files = {f.path: f for f in state["config"].files}
    assert set(files) == {"configs/ot2_prep_protocol.yaml", "configs/ot2_pcr_protocol.yaml"}
    assert (files["configs/ot2_prep_protocol.yaml"].module, files["configs/ot2_pcr_protocol.yaml"].module) == (
        "ot2_prep",
        "ot2_pcr",
    )
    assert state["reports"]["config"].ok and state["reports"]["config"].diagnostics == []
    setup = state["config"].setup
    assert "### ot2_prep" in setup and "### ot2_pcr" in setup and "A1: at least 100 µL of dye" in setup
    written = write_bundle(state, tmp_path / "bundle")
    names = {p.relative_to((tmp_path / "bundle").resolve()).as_posix() for p in written}
    assert {"configs/ot2_prep_protocol.yaml", "configs/ot2_pcr_protocol.yaml", "setup.md", "report.md"} <= names


def test_a_bad_config_goes_back_through_the_retry_edge_with_the_reason(tmp_path: Path) -> None:
    bad = pcr_config(volume=676, pipette="p1000_single_gen2", tips="1000ul")  # the predecessor's 676 µL
    scenario = two_handlers([prep_config(), bad, prep_config(), pcr_config()])
    model = fake_model(scenario)
    session = run(scenario, tmp_path, model_context(model, "fake:retry-config"))
    state = session.state()
    assert session.status.state == "done" and state["config_attempts"] == 2
    config_calls = [msgs for task, msgs in model.calls if task == "config"]
    assert len(config_calls) == 4
    feedback = config_calls[2][-1].text
    assert "would hold 681 µL; its capacity is 360 µL" in feedback
    assert "676 µL is not one of the user's values" in feedback
    versions = [v for v in state["versions"] if v.agent == "config"]
    assert [v.ok for v in versions] == [False, True]


def test_the_retry_edge_is_bounded(tmp_path: Path) -> None:
    bad = pcr_config(volume=25)  # more than the p20 takes, and not a user value
    scenario = two_handlers([prep_config(), bad, prep_config(), bad])
    session = run(scenario, tmp_path)
    assert (session.status.state, session.status.step) == ("failed", "check_config")
    assert "25 µL is more than any mounted pipette takes" in session.status.reason
    assert session.state()["config_attempts"] == 2


def test_offline_config_model_builds_both_protocols_without_a_model_call(tmp_path: Path) -> None:
    scenario = two_handlers(None)
    context = dataclasses.replace(fake_context(scenario, name="fake:offline-config"), config_model="offline")
    session = run(scenario, tmp_path, context)
    state = session.state()
    assert session.status.state == "done", state["reports"]["config"].diagnostics
    files = {f.path: yaml.safe_load(f.content) for f in state["config"].files}
    assert [c["volume"] for c in files["configs/ot2_prep_protocol.yaml"]["commands"]] == [100.0, 50.0]
    assert [c["volume"] for c in files["configs/ot2_pcr_protocol.yaml"]["commands"]] == [15.0, 5.0]
    # The plate goes where the lab's location table says the OT-2's nest is (ot2_prep.deck2 -> slot 2).
    assert files["configs/ot2_prep_protocol.yaml"]["equipment"][0]["location"] == "2"
    assert files["configs/ot2_pcr_protocol.yaml"]["equipment"][0]["location"] == "1"
    report = state["reports"]["config"]
    assert report.ok and "config-default-used" in report.codes("warning")
    assert "usage" not in state or "write_configs" not in state["usage"]
