"""The z3 labware-flow check, semantics matching and transfer completion on the shipped example lab."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli as support_run_cli
from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools.completion import COMMENT, complete_transfers
from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
from wei_gen.tools.semantics import LabSemantics, SemanticsError, nests_by_name, parse_semantics
from wei_gen.wei_types import Workflow, workflow_to_dict

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"

PREPARED_PCR = """\
name: Seal, cycle and peel a prepared PCR plate
parameters:
  - {name: program, default: 3}
flowdef:
  - {name: To sealer, module: pf400, action: transfer, args: {source: ot2_pcr.deck1, target: sealer.default}}
  - {name: Seal, module: sealer, action: seal, args: {temperature: 175, time: 3}}
  - {name: To thermocycler, module: pf400, action: transfer, args: {source: sealer.default, target: biometra.default}}
  - {name: Cycle, module: biometra, action: run_protocol, args: {program: $program, plate_type: 1}}
  - {name: To peeler, module: pf400, action: transfer, args: {source: biometra.default, target: peeler.default}}
  - {name: Peel, module: peeler, action: peel}
"""


@pytest.fixture(scope="module")
def lab() -> Lab:
    return lab_from_dir(LAB_DIR)


def flow(data: dict[str, Any], lab: Lab) -> FlowReport:
    return check_flow(steps_from_workflow(data), lab)


def errors(report: FlowReport) -> list[tuple[int | None, str]]:
    return [(d.step_index, d.message) for d in report.diagnostics if d.severity == "error"]


PEEL = {"name": "Peel early", "module": "peeler", "action": "peel"}


def prepared() -> dict[str, Any]:
    return yaml.safe_load(PREPARED_PCR)


def test_shipped_examples_are_sat(lab: Lab) -> None:
    for path in lab.example_paths:
        report = flow(yaml.safe_load(path.read_text(encoding="utf-8")), lab)
        assert report.verdict == "sat", (path.name, errors(report))
        assert report.unchecked == [], path.name


def test_initial_setup_synthesis_for_a_pcr_plate(lab: Lab) -> None:
    report = flow(prepared(), lab)
    assert report.verdict == "sat"
    (item,) = report.setup
    assert (item.location, item.sealed) == ("ot2_pcr.deck1", False)  # the sealer needs it unsealed
    assert report.setup_text() == "- an unsealed plate on ot2_pcr.deck1"


def test_smoke_test_of_a_peeler_needs_a_sealed_plate_there(lab: Lab) -> None:
    report = flow({"name": "peel", "flowdef": [{"name": "Peel", "module": "peeler", "action": "peel"}]}, lab)
    assert report.verdict == "sat"
    assert [(i.location, i.sealed) for i in report.setup] == [("peeler.default", True)]


@pytest.mark.parametrize(
    ("mutate", "step", "phrase"),
    [
        (lambda f: f.pop(2), 2, "needs a plate on biometra.default"),  # dropped transfer (indexes shift)
        (lambda f: f.insert(0, f.pop(1)), 0, "needs a plate on sealer.default"),  # seal before the plate arrives
        (lambda f: f.insert(2, copy.deepcopy(f[1])), 2, "it is sealed (sealed by step 2"),  # seal twice
        (lambda f: f.insert(1, PEEL), 1, "needs a plate on peeler"),
        (lambda f: f[2]["args"].update(target="peeler.default") or f.insert(0, {"name": "Stage", "module": "pf400",
            "action": "transfer", "args": {"source": "camera.plate_station", "target": "peeler.default"}}), 3,
         "occupied"),
        (lambda f: f.append({"name": "Photo", "module": "camera", "action": "take_picture"}), 6, "needs a plate"),
        (lambda f: f[1]["args"].update(temperature=250), 1, "outside 20..200"),
    ],
    ids=["drop-transfer", "swap", "seal-twice", "peel-unsealed-absent", "occupied-target", "no-plate", "range"],
)  # fmt: skip
def test_flow_faults_name_the_step(lab: Lab, mutate: Any, step: int, phrase: str) -> None:
    data = prepared()
    mutate(data["flowdef"])
    report = flow(data, lab)
    assert report.verdict == "unsat"
    assert any(i == step and phrase in m for i, m in errors(report)), errors(report)


def test_peel_of_an_unsealed_plate(lab: Lab) -> None:
    data = yaml.safe_load((LAB_DIR / "examples" / "pcr.yaml").read_text(encoding="utf-8"))
    data["flowdef"] = [s for s in data["flowdef"] if s["action"] != "seal"]  # a fresh plate is never sealed
    report = flow(data, lab)
    assert report.verdict == "unsat"
    by_step = {i: m for i, m in errors(report)}
    peel = next(i for i, s in enumerate(data["flowdef"]) if s["action"] == "peel")
    cycle = next(
        i for i, s in enumerate(data["flowdef"]) if s["module"] == "biometra" and s["action"] == "run_protocol"
    )
    assert "needs a sealed plate on peeler.default" in by_step[peel]
    assert "needs a sealed plate on biometra.default" in by_step[cycle]


def test_a_plate_that_may_start_sealed_is_a_setup_not_an_error(lab: Lab) -> None:
    data = prepared()
    data["flowdef"][1:2] = []  # no seal step: fine if the prepared plate arrives sealed
    report = flow(data, lab)
    assert report.verdict == "sat"
    assert [(i.location, i.sealed) for i in report.setup] == [("ot2_pcr.deck1", True)]


def test_independent_problems_are_all_reported(lab: Lab) -> None:
    data = prepared()
    data["flowdef"][1]["args"]["temperature"] = 250
    data["flowdef"][5:] = [{"name": "Photo", "module": "camera", "action": "take_picture"}]
    steps = {i for i, _ in errors(flow(data, lab))}
    assert {1, 5} <= steps


def test_unknown_action_is_unchecked_never_ok(lab: Lab) -> None:
    data = prepared()
    data["flowdef"].append({"name": "Hover", "module": "pf400", "action": "dance"})
    report = flow(data, lab)
    assert report.unchecked == [6]
    assert any(d.code == "flow-unchecked" and d.step_index == 6 for d in report.diagnostics)


def test_lab_semantics_override_and_explicit_nests(lab: Lab) -> None:
    override = parse_semantics(
        "modules:\n  - id: oven\n    match: [camera]\n    actions:\n"
        "      take_picture: {kind: process, requires: {sealed: true}}\n"
        "nests:\n  camera: [peeler.default]\n",
        "test",
    )
    sem = LabSemantics(lab, override)
    assert sem.nests("camera") == ["peeler.default"]
    data = {"name": "x", "flowdef": [{"name": "Photo", "module": "camera", "action": "take_picture"}]}
    report = check_flow(steps_from_workflow(data), lab, sem)
    assert [(i.location, i.sealed) for i in report.setup] == [("peeler.default", True)]
    with pytest.raises(SemanticsError, match="kind"):
        parse_semantics("modules:\n  - {id: x, match: [a], actions: {b: {kind: teleport}}}\n", "bad.yaml")


@pytest.mark.parametrize(
    ("module", "locations", "expected"),
    [
        ("bio_sealer", ["sealer_nest", "safe_path_sealer", "peeler_nest"], ["sealer_nest"]),
        ("bio_biometra3_96", ["bio_biometra3_nest", "safe_path_biometra3"], ["bio_biometra3_nest"]),
        ("bio_bmg", ["bmg_reader_nest", "safe_path_bmg"], ["bmg_reader_nest"]),
        ("inheco_dev2_floor0", ["inheco_dev2_floor0_nest", "inheco_dev2_floor1_nest"], ["inheco_dev2_floor0_nest"]),
        ("camera_module", ["camera_module.plate_station", "wc.trash"], ["camera_module.plate_station"]),
        ("pf400", ["sealer.default"], []),
    ],
)  # fmt: skip
def test_nests_by_name(module: str, locations: list[str], expected: list[str]) -> None:
    assert nests_by_name(module, locations) == expected


def test_transfer_completion_restores_the_moves(lab: Lab) -> None:
    data = yaml.safe_load((LAB_DIR / "examples" / "pcr.yaml").read_text(encoding="utf-8"))
    data["flowdef"] = [s for s in data["flowdef"] if s["module"] != "pf400"]
    workflow = Workflow.model_validate(data)
    assert flow(workflow_to_dict(workflow), lab).verdict == "unsat"
    completed, notes = complete_transfers(workflow, lab)
    assert len(notes) == 5
    inserted = [s for s in completed.flowdef if s.comment == COMMENT]
    assert [(s.args["source"], s.args["target"]) for s in inserted][:2] == [
        ("sciclops.exchange", "ot2_pcr.deck1"),
        ("ot2_pcr.deck1", "sealer.default"),
    ]
    assert flow(workflow_to_dict(completed), lab).verdict == "sat"
    again, more = complete_transfers(completed, lab)
    assert more == [] and again == completed  # idempotent


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return support_run_cli(*args, cwd=ROOT)


def test_check_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(PREPARED_PCR, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(PREPARED_PCR.replace("temperature: 175", "temperature: 250"), encoding="utf-8")
    ok = run_cli("check", str(good), "--lab", str(LAB_DIR))
    assert ok.returncode == 0 and "an unsealed plate on ot2_pcr.deck1" in ok.stdout
    failed = run_cli("check", str(bad), "--lab", str(LAB_DIR), "--format", "json")
    assert failed.returncode == 1
    report = json.loads(failed.stdout)["files"][0]
    assert report["verdict"] == "unsat" and report["diagnostics"][0]["code"] == "flow-range"
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [x\n", encoding="utf-8")
    cannot = run_cli("check", str(broken), "--lab", str(LAB_DIR))
    assert cannot.returncode == 2 and "line" in cannot.stderr and "Traceback" not in cannot.stderr


def test_a_missing_location_arg_is_unknown_not_a_location(lab: Lab) -> None:
    data = {"name": "x", "flowdef": [{"name": "Move", "module": "pf400", "action": "transfer", "args": {}}]}
    report = flow(data, lab)
    assert report.verdict == "sat" and report.unchecked == [0] and report.setup == []


def test_parameters_in_arg_keys_are_substituted(lab: Lab) -> None:
    data = {
        "name": "x",
        "parameters": [{"name": "aim", "default": "target"}],
        "flowdef": [
            {"name": "Move", "module": "pf400", "action": "transfer",
             "args": {"source": "ot2_pcr.deck1", "$aim": "sealer.default"}},
            {"name": "Seal", "module": "sealer", "action": "seal", "args": {"temperature": 175, "time": 3}},
        ],
    }  # fmt: skip
    assert steps_from_workflow(data)[0].args == {"source": "ot2_pcr.deck1", "target": "sealer.default"}
    assert flow(data, lab).verdict == "sat"


def test_a_move_with_one_end_known_only_at_run_time(lab: Lab) -> None:
    arrive = {"name": "In", "module": "pf400", "action": "transfer",
              "args": {"source": "payload.stack", "target": "hidex.drawer"}}  # fmt: skip
    read = {"name": "Read", "module": "hidex", "action": "run_assay", "args": {"assay_name": "abs"}}
    first = {"name": "First", "module": "pf400", "action": "transfer",
             "args": {"source": "camera.plate_station", "target": "hidex.drawer"}}  # fmt: skip
    assert flow({"name": "x", "flowdef": [arrive, read]}, lab).verdict == "sat"  # a plate arrives from the payload
    report = flow({"name": "x", "flowdef": [first, arrive, read]}, lab)
    assert report.verdict == "unsat" and any(i == 1 and "occupied" in m for i, m in errors(report))


def test_concurrent_checks_from_threads_agree_with_a_serial_check(lab: Lab) -> None:
    """The server runs sessions' nodes on threads; z3's default context is shared, so checks must not interleave."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [p.read_text(encoding="utf-8") for p in sorted((LAB_DIR / "examples").glob("*.yaml"))]
    texts.append(PREPARED_PCR.replace("source: ot2_pcr.deck1, target: sealer.default", "source: x, target: y"))
    cases = [steps_from_workflow(yaml.safe_load(t)) for t in texts]
    expected = [check_flow(steps, lab).model_dump() for steps in cases]
    assert {e["verdict"] for e in expected} == {"sat", "unsat"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: check_flow(cases[i % len(cases)], lab).model_dump(), range(96)))
    assert results == [expected[i % len(cases)] for i in range(96)]


def test_new_plates_are_listed_as_stock_the_run_draws_from(lab: Lab) -> None:
    text = """\
name: Three new plates
flowdef:
  - {name: First, module: sciclops, action: get_plate, args: {pos: tower1}}
  - {name: Away, module: pf400, action: transfer, args: {source: sciclops.exchange, target: wc.trash}}
  - {name: Second, module: sciclops, action: get_plate, args: {pos: tower2}}
  - {name: Away again, module: pf400, action: transfer, args: {source: sciclops.exchange, target: wc.trash}}
  - {name: Third, module: sciclops, action: get_plate, args: {pos: tower1}}
"""
    report = check_flow(steps_from_workflow(yaml.safe_load(text)), lab)
    assert report.verdict == "sat"
    assert report.supplies == [
        "2 fresh plates from sciclops (pos: tower1) for steps 1, 5",
        "1 fresh plate from sciclops (pos: tower2) for step 3",
    ]
    assert "- stock: 2 fresh plates from sciclops (pos: tower1) for steps 1, 5" in report.setup_text()
