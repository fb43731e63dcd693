"""The workflow picture: boxes, numbered arrows and red failing steps, checked by parsing the SVG as XML."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from tests import corpus
from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
from wei_gen.tools.flow_svg import render_flow_svg
from wei_gen.tools.validator import ValidationReport, validate_workflow
from wei_gen.wei_types import Workflow, workflow_to_dict
from wei_gen.yamlio import parse_yaml, read_text

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"
PCR = LAB_DIR / "examples" / "pcr.yaml"
NS = {"s": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def lab() -> Lab:
    return lab_from_dir(LAB_DIR)


def load(path: Path) -> Workflow:
    return Workflow.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def checks(workflow: Workflow, lab: Lab) -> tuple[FlowReport, ValidationReport]:
    flow = check_flow(steps_from_workflow(workflow_to_dict(workflow)), lab)
    return flow, validate_workflow(workflow, lab, source="workflow.yaml")


def render(workflow: Workflow | None, lab: Lab | None) -> ET.Element:
    if workflow is None or lab is None:
        return ET.fromstring(render_flow_svg(workflow, None, None, lab))
    flow, report = checks(workflow, lab)
    return ET.fromstring(render_flow_svg(workflow, flow, report, lab))


def classes(el: ET.Element) -> set[str]:
    return set(el.get("class", "").split())


def nodes(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-module", ""): g for g in svg.iterfind(".//s:g", NS) if "node" in classes(g)}


def arrows(svg: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {
        (g.get("data-source", ""), g.get("data-target", "")): g
        for g in svg.iterfind(".//s:g", NS)
        if "move" in classes(g)
    }


def step_lines(node: ET.Element) -> dict[str, ET.Element]:
    return {t.get("data-step", ""): t for t in node.iterfind("s:text", NS) if "step" in classes(t)}


def title(el: ET.Element) -> str:
    found = el.find("s:title", NS)
    return found.text or "" if found is not None else ""


def test_pcr_example_boxes_arrows_and_numbers(lab: Lab) -> None:
    svg = render(load(PCR), lab)
    # Every instrument that works on the plate, plus the bin; the arm that only moves plates is the arrows.
    assert list(nodes(svg)) == ["sciclops", "ot2_pcr", "sealer", "biometra", "peeler", "camera", "wc.trash"]
    assert "place" in classes(nodes(svg)["wc.trash"]) and "place" not in classes(nodes(svg)["sealer"])
    moves = {pair: g.get("data-steps") for pair, g in arrows(svg).items()}
    assert moves == {
        ("sciclops", "ot2_pcr"): "2",
        ("ot2_pcr", "sealer"): "4",
        ("sealer", "biometra"): "7",
        ("biometra", "peeler"): "11",
        ("peeler", "camera"): "14",
        ("camera", "wc.trash"): "16",
    }
    # The number is drawn on the arrow, and the tooltip says which step moved what.
    into_cycler = arrows(svg)[("sealer", "biometra")]
    assert [t.text for t in into_cycler.iterfind("s:text", NS)] == ["7"]
    assert "step 7 'Move plate into the thermocycler'" in title(into_cycler)
    assert "sealer.default → biometra.default" in title(into_cycler)
    biometra = step_lines(nodes(svg)["biometra"])
    assert list(biometra) == ["6", "8", "9", "10", "12"]
    assert "".join(biometra["9"].itertext()) == "9. run_protocol"
    assert not [el for el in svg.iter() if "fail" in classes(el)]
    assert "Azenta A4S" in "".join(nodes(svg)["sealer"].itertext())


@pytest.mark.parametrize("path", sorted((LAB_DIR / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_step_of_the_examples_is_drawn_once(path: Path, lab: Lab) -> None:
    workflow = load(path)
    svg = render(workflow, lab)
    drawn: list[int] = []
    for g in arrows(svg).values():
        drawn += [int(n) for n in g.get("data-steps", "").split(",")]
    for module, g in nodes(svg).items():
        for numbers, line in step_lines(g).items():
            drawn += [int(n) for n in numbers.split(",")]
            step = workflow.flowdef[int(numbers.split(",")[0]) - 1]
            # A step listed on a box belongs to that instrument (or is a move inside it).
            assert step.module == module or "move" in "".join(line.itertext())
    assert sorted(drawn) == list(range(1, len(workflow.flowdef) + 1))
    for (source, target), g in arrows(svg).items():
        for n in g.get("data-steps", "").split(","):
            step = workflow.flowdef[int(n) - 1]
            assert step.action in ("transfer", "transfer_labware"), step
            assert source != target


def test_unknown_action_is_red_with_the_reason(lab: Lab) -> None:
    workflow = load(PCR)
    workflow.flowdef[12].action = "depeel"
    svg = render(workflow, lab)
    peeler = nodes(svg)["peeler"]
    assert "fail" in classes(peeler)
    line = step_lines(peeler)["13"]
    assert "fail" in classes(line) and line.get("fill") == "#c62828"
    assert "unknown-action" not in title(line) and "depeel" in title(line) and "step 13" in title(line)
    assert "did you mean 'peel'" in title(line)
    summary = [t.text or "" for t in svg.iterfind("s:text", NS) if "problem" in classes(t)]
    assert any("13" in s for s in summary)
    assert [m for m, g in nodes(svg).items() if "fail" in classes(g)] == ["peeler"]


def test_bad_transfer_target_makes_its_arrow_red(lab: Lab) -> None:
    workflow = load(PCR)
    workflow.flowdef[3].args["target"] = "sealer.defualt"
    svg = render(workflow, lab)
    arrow = arrows(svg)[("ot2_pcr", "sealer")]
    assert "fail" in classes(arrow)
    assert "sealer.defualt" in title(arrow)
    line = arrow.find("s:line", NS)
    assert line is not None and line.get("marker-end") == "url(#arrow-fail)"
    assert [pair for pair, g in arrows(svg).items() if "fail" in classes(g)] == [("ot2_pcr", "sealer")]


def test_flow_problem_is_highlighted(lab: Lab) -> None:
    data = yaml.safe_load(PCR.read_text(encoding="utf-8"))
    del data["flowdef"][10]  # the plate never leaves the thermocycler for the peeler
    workflow = Workflow.model_validate(data)
    flow, report = checks(workflow, lab)
    assert flow.verdict == "unsat"
    flow_steps = {d.step_index for d in flow.diagnostics if d.severity == "error"}
    svg = ET.fromstring(render_flow_svg(workflow, flow, None, lab))  # the z3 report alone
    red = {int(n) - 1 for el in svg.iter() if "fail" in classes(el) for n in el.get("data-step", "").split(",") if n}
    red |= {
        int(n) - 1 for g in arrows(svg).values() if "fail" in classes(g) for n in g.get("data-steps", "").split(",")
    }
    assert flow_steps and flow_steps <= red
    assert "impossible as written" in "".join(svg.itertext())


def test_start_plate_is_marked(lab: Lab) -> None:
    data = yaml.safe_load(PCR.read_text(encoding="utf-8"))
    data["flowdef"] = data["flowdef"][3:]  # start with the plate already on the OT-2
    workflow = Workflow.model_validate(data)
    svg = render(workflow, lab)
    starts = [(m, t) for m, g in nodes(svg).items() for t in g.iterfind("s:text", NS) if "start" in classes(t)]
    assert [m for m, _ in starts] == ["ot2_pcr"]
    assert "ot2_pcr.deck1" in title(starts[0][1])


def test_text_is_escaped() -> None:
    workflow = Workflow.model_validate(
        {
            "name": 'Evil & "quoted" </svg>',
            "flowdef": [
                {"name": "a <b> & c\x00", "module": "<script>", "action": "run&go", "args": {}},
                {"name": "m", "module": "arm", "action": "transfer", "args": {"source": "<script>.x", "target": "y"}},
            ],
        }
    )
    text = render_flow_svg(workflow, None, None, None)
    assert "<script>" not in text and "</svg><" not in text.replace("</svg>", "", 1)
    svg = ET.fromstring(text)
    assert "<script>" in nodes(svg)
    assert ("<script>", "y") in arrows(svg)
    assert "1. run&go" in "".join(svg.itertext())
    assert 'Workflow: Evil & "quoted" </svg>' in "".join(svg.itertext())
    assert all(el.tag.startswith("{http://www.w3.org/2000/svg}") for el in svg.iter())
    assert not any(el.tag.endswith("script") for el in svg.iter())


def test_without_a_lab_source_and_target_make_arrows() -> None:
    workflow = Workflow.model_validate(yaml.safe_load(PCR.read_text(encoding="utf-8")))
    svg = render(workflow, None)
    assert ("biometra", "peeler") in arrows(svg)
    assert "pf400" not in nodes(svg)
    assert "sealer" in nodes(svg) and "fail" not in classes(nodes(svg)["sealer"])


def test_unknown_module_is_flagged(lab: Lab) -> None:
    workflow = load(PCR)
    workflow.flowdef[4].module = "sealr"
    svg = render(workflow, lab)
    assert "fail" in classes(nodes(svg)["sealr"])
    assert "not in the lab" in "".join(nodes(svg)["sealr"].itertext())


def test_no_workflow_and_determinism(lab: Lab) -> None:
    empty = ET.fromstring(render_flow_svg(None, None, None, lab))
    assert "No workflow yet." in "".join(empty.itertext())
    workflow = load(PCR)
    flow, report = checks(workflow, lab)
    first = render_flow_svg(workflow, flow, report, lab)
    assert render_flow_svg(copy.deepcopy(workflow), flow, report, lab) == first


def _corpus_cases() -> list[Any]:
    if not corpus.available():
        return []
    return [wf for wf in corpus.workflows() if wf.workcell is not None]


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)
@pytest.mark.parametrize("wf", _corpus_cases(), ids=lambda wf: wf.name)
def test_corpus_workflow_renders_to_valid_svg(wf: corpus.CorpusWorkflow) -> None:
    assert wf.workcell is not None
    lab = corpus.lab_for(wf.workcell)
    data = parse_yaml(read_text(wf.path), str(wf.path)).data
    # Legacy (<= 0.3) steps say ``command``; drawn like the flow check reads them.
    for step in data.get("flowdef") or []:
        if isinstance(step, dict) and "action" not in step and "command" in step:
            step["action"] = step["command"]
    if not isinstance(data.get("name"), str):
        data["name"] = wf.name
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:  # the server only ever has a parsed workflow to draw
        pytest.skip(f"not a WEI Workflow (WEI rejects it too): {exc.errors()[0]['msg']}")
    flow, report = checks(workflow, lab)
    svg = ET.fromstring(render_flow_svg(workflow, flow, report, lab))
    drawn = sum(len(g.get("data-steps", "").split(",")) for g in arrows(svg).values())
    drawn += sum(len(n.split(",")) for g in nodes(svg).values() for n in step_lines(g))
    hidden = sum(int(t.text.split()[1]) for t in svg.iter(f"{{{NS['s']}}}text") if (t.text or "").startswith("… "))
    assert drawn + hidden == len(workflow.flowdef)
