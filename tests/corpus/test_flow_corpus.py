"""Run the labware-flow check over every real corpus workflow with its real workcell and abouts.

Every corpus workflow must be checked without a crash. A workflow listed in ``expected_flow.yaml`` must be unsat with
exactly the listed error steps (each listing names the real issue); every other workflow must be sat. Legacy
``command:`` workflows are checked too: rpl_wei <= 0.3 ran ``command`` as the action, and labware flow does not
depend on the file format, so ``steps_from_workflow`` reading ``command`` as the action is what those files meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import corpus
from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
from wei_gen.yamlio import parse_yaml, read_text

pytestmark = [pytest.mark.corpus, pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)]

EXPECTED_FILE = Path(__file__).with_name("expected_flow.yaml")


def expected() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(EXPECTED_FILE.read_text(encoding="utf-8")) or {}


@dataclass(frozen=True)
class Checked:
    name: str
    steps: int
    legacy: bool
    report: FlowReport


def _is_legacy(data: Any) -> bool:
    flowdef = data.get("flowdef") if isinstance(data, dict) else None
    return isinstance(flowdef, list) and any(
        isinstance(s, dict) and "command" in s and "action" not in s for s in flowdef
    )


def check(wf: corpus.CorpusWorkflow) -> Checked:
    assert wf.workcell is not None
    lab = corpus.lab_for(wf.workcell)
    data = parse_yaml(read_text(wf.path), str(wf.path)).data
    steps = steps_from_workflow(data)
    return Checked(wf.name, len(steps), _is_legacy(data), check_flow(steps, lab))


@cache
def checked_all() -> list[Checked]:
    return [check(wf) for wf in corpus.workflows()]


def error_steps(report: FlowReport) -> list[int | None]:
    return sorted(
        {d.step_index for d in report.diagnostics if d.severity == "error"}, key=lambda i: -1 if i is None else i
    )


def explain(report: FlowReport) -> str:
    return "\n".join(f"  step {d.step_index}: {d.code}: {d.message} (hint: {d.hint})" for d in report.diagnostics)


def test_every_expectation_names_a_corpus_workflow_and_a_reason() -> None:
    names = {wf.name for wf in corpus.workflows()}
    for name, entry in expected().items():
        assert name in names, f"{name} is not a corpus workflow"
        assert str(entry.get("why", "")).strip(), f"{name} has no reason"
        assert entry.get("errors") and all(isinstance(i, int) for i in entry["errors"]), f"{name} lists no error steps"


@pytest.mark.parametrize("wf", corpus.workflows() if corpus.available() else [], ids=lambda wf: wf.name)
def test_corpus_workflow_flow_verdict(wf: corpus.CorpusWorkflow, request: pytest.FixtureRequest) -> None:
    result = check(wf)  # no crash on any workflow
    report = result.report
    assert report.verdict in ("sat", "unsat")
    for diagnostic in report.diagnostics:
        assert diagnostic.message and diagnostic.code in ("flow-unsat", "flow-range", "flow-unchecked")
        if diagnostic.severity == "error":
            assert diagnostic.step_index is not None and 0 <= diagnostic.step_index < result.steps
    assert set(report.unchecked) == {d.step_index for d in report.diagnostics if d.code == "flow-unchecked"}
    entry = expected().get(wf.name)
    if entry is not None and entry.get("engine_false_positive"):
        request.applymarker(
            pytest.mark.xfail(strict=True, reason=f"engine false positive: {entry['engine_false_positive']}")
        )
        entry = None
    if entry is None:
        assert report.verdict == "sat", f"{wf.name} is unsat:\n{explain(report)}"
        assert error_steps(report) == []
        return
    assert report.verdict == "unsat", f"{wf.name} is sat, expected unsat: {entry['why']}"
    assert error_steps(report) == sorted(entry["errors"]), explain(report)
    for diagnostic in report.diagnostics:
        if diagnostic.severity == "error":
            assert diagnostic.hint, f"step {diagnostic.step_index}: an error without a hint"


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    results = checked_all()
    exp = expected()
    sat = [r for r in results if r.report.verdict == "sat"]
    unsat = [r for r in results if r.report.verdict == "unsat"]
    real = [r for r in unsat if r.name in exp and not exp[r.name].get("engine_false_positive")]
    engine = [r for r in unsat if r.name in exp and exp[r.name].get("engine_false_positive")]
    with_unchecked = [r for r in results if r.report.unchecked]
    fully = [r for r in results if r.steps and not r.report.unchecked]
    steps = sum(r.steps for r in results)
    unchecked_steps = sum(len(r.report.unchecked) for r in results)
    lines = [
        f"workflows                       {len(results)}",
        f"  sat                           {len(sat)}",
        f"  unsat, real issue             {len(real)}  {', '.join(r.name for r in real)}",
        f"  unsat, engine false positive  {len(engine)}  {', '.join(r.name for r in engine)}",
        f"  unsat, unexplained            {len(unsat) - len(real) - len(engine)}",
        f"  with unchecked steps          {len(with_unchecked)}",
        f"  every step checked            {len(fully)}",
        f"  legacy (command:)             {sum(r.legacy for r in results)}",
        f"steps                           {steps} ({unchecked_steps} unchecked)",
    ]
    with capsys.disabled():
        print("\n\nLabware flow over the corpus\n" + "\n".join(lines))  # noqa: T201
    assert len(results) == len(corpus.workflows())
    assert {r.name for r in unsat} <= set(exp), "every unsat corpus workflow must be listed in expected_flow.yaml"
