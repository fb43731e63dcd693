"""``wei-gen eval`` on the shipped gold set, offline: the report's shape and the issue's done-when goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from wei_gen.cli import app
from wei_gen.context import register_credentials
from wei_gen.evaluation import GoldTask, args_met, order_met, prf
from wei_gen.wei_types import Step, Workflow, WorkflowParameter

ROOT = Path(__file__).resolve().parents[2]
GOLD = ROOT / "examples" / "gold" / "rpl_like.yaml"


@pytest.fixture(autouse=True)
def _fresh_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    register_credentials("", "")


def run_eval(*args: str) -> Any:
    import wei_gen.cli_eval  # noqa: F401  (registers the command)

    return CliRunner().invoke(app, ["eval", *args])


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    """The shipped gold set through the offline pipeline, as JSON (one run for the tests below)."""
    register_credentials("", "")
    result = run_eval(str(GOLD), "--format", "json")
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_gold_set_is_big_enough_and_well_formed() -> None:
    tasks = [GoldTask.model_validate(t) for t in yaml.safe_load(GOLD.read_text(encoding="utf-8"))]
    assert len(tasks) >= 12
    assert sum(not t.feasible for t in tasks) >= 2 and all(t.missing_capability for t in tasks if not t.feasible)


def test_json_report_has_every_field(shipped: dict[str, Any]) -> None:
    assert set(shipped["summary"]) == {
        "tasks", "feasible_correct", "infeasible_correct", "valid_rate", "z3_sat_rate", "mean_f1", "order_rate",
        "args_rate",
    }  # fmt: skip
    assert shipped["summary"]["tasks"] == len(shipped["tasks"]) >= 12
    first = shipped["tasks"][0]
    for key in ("feasible", "workflow_valid", "z3", "precision", "recall", "f1", "order_met", "args_met",
                "model_calls", "prompt_tokens", "completion_tokens", "seconds"):  # fmt: skip
        assert key in first


def test_done_when_goals_on_the_shipped_set(shipped: dict[str, Any]) -> None:
    summary = shipped["summary"]
    assert summary["feasible_correct"] == 1.0
    assert summary["valid_rate"] == 1.0 and summary["z3_sat_rate"] == 1.0
    assert summary["mean_f1"] >= 0.8
    assert summary["infeasible_correct"] == 1.0
    for task in shipped["tasks"]:
        if not task["expected_feasible"]:
            assert task["feasible"] is False and task["missing_capability"], task["id"]
    assert all(t["model_calls"] == 0 for t in shipped["tasks"])  # offline: no model calls


def test_text_format_and_a_wrong_verdict_exits_1(tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    lab = ROOT / "examples" / "labs" / "rpl_like"
    gold.write_text(
        yaml.safe_dump([
            {"id": "photo", "description": "Take a picture of the plate at the camera station.", "feasible": True,
             "expected_actions": ["camera.take_picture"]},
            {"id": "wrongly_gold", "description": "Centrifuge the plate.", "feasible": True,
             "expected_actions": ["centrifuge.spin"]},
        ]),
        encoding="utf-8",
    )  # fmt: skip
    result = run_eval(str(gold), "--lab", str(lab))
    assert result.exit_code == 1
    assert "photo" in result.stdout and "wrongly_gold" in result.stdout and "WRONG" in result.stdout
    assert "mean F1 0.500" in result.stdout  # 1.0 for the photo, 0.0 for the task the lab cannot do


def test_bad_gold_file_cannot_run(tmp_path: Path) -> None:
    gold = tmp_path / "gold.yaml"
    gold.write_text("- id: x\n", encoding="utf-8")
    result = run_eval(str(gold))
    assert result.exit_code == 2 and "description" in result.output


def test_metrics() -> None:
    assert prf(["a", "a", "b"], ["a", "b", "c"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert prf([], []) == (1.0, 1.0, 1.0)
    assert order_met("a before b", ["b", "a", "b"]) and not order_met("a before b", ["b", "a"])
    workflow = Workflow(
        name="w",
        parameters=[WorkflowParameter(name="t", default=175)],
        flowdef=[Step(name="s", module="sealer", action="seal", args={"temperature": "$t", "time": 3.0})],
    )
    assert args_met({"sealer.seal": {"temperature": 175, "time": 3}}, workflow) == (2, 2)
    assert args_met({"sealer.seal": {"temperature": 170}}, workflow) == (0, 1)
