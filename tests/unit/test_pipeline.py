"""The graph with a scripted in-process model: routing, retry edges and bounds, failures kept in the state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from tests.support import pcr
from tests.support.fake_chat import tool_reply, yes_no
from wei_gen.graph import builder, graph
from wei_gen.lab import lab_from_dir
from wei_gen.nodes.feasibility import Infeasibility, p_yes_from_logprobs
from wei_gen.nodes.refine import extract_block
from wei_gen.nodes.shortlist import reconcile_shortlist
from wei_gen.nodes.workflow import WorkflowDraft
from wei_gen.session import WEIGen, WEIGenError
from wei_gen.state import Plan, Shortlist, ShortlistEntry

LAB = Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like"


def run(model: Any, tmp: Path, **ctx: Any) -> Any:
    app = WEIGen(context=pcr.context_for(model, **ctx), data_dir=tmp)
    session = app.new_session()
    session.execute_experiment(pcr.DESCRIPTION, pcr.VALUES)
    return session


def test_p_yes_sums_yes_variants() -> None:
    msg = AIMessage(
        "Yes",
        response_metadata={"logprobs": {"content": [{"token": "Yes", "logprob": -0.5, "top_logprobs": [
            {"token": "Yes", "logprob": -0.5}, {"token": " yes", "logprob": -2.0}, {"token": "No", "logprob": -1.2},
        ]}]}},
    )  # fmt: skip
    assert p_yes_from_logprobs(msg) == pytest.approx(0.6065 + 0.1353, abs=1e-3)
    assert p_yes_from_logprobs(AIMessage("yes")) is None


def test_topology_has_only_the_declared_edges() -> None:
    edges = {(e.source, e.target) for e in graph.get_graph().edges}
    assert {("check_plan", t) for t in ("make_plan", "make_shortlist", "finish", "give_up")} <= edges
    assert {t for s, t in edges if s == "check_plan"} == {"make_plan", "make_shortlist", "finish", "give_up"}
    assert {t for s, t in edges if s == "check_workflow"} == {"write_workflow", "design_tests", "finish", "give_up"}
    assert ("check_feasibility", "__end__") in edges


def test_full_run_is_done_and_typed(tmp_path: Path) -> None:
    session = run(pcr.scripted_model(), tmp_path)
    state = session.state()
    assert session.status.state == "done"
    assert state["reports"]["workflow"].ok and state["reports"]["plan"].ok
    assert state["feasibility"].p_yes == pytest.approx(0.9)
    assert "sealer.default" in state["workflow"].yaml
    assert state["reports"]["code"].ok
    # The script ran in the sandbox against the simulated lab, and the test designer's tests passed.
    assert state["reports"]["code"].diagnostics == [] and state["code"].tests


def test_plan_retry_edge_feeds_back_the_check(tmp_path: Path) -> None:
    model = pcr.scripted_model(plan=(tool_reply(Plan, pcr.plan(bad=True)), tool_reply(Plan, pcr.plan())))
    session = run(model, tmp_path)
    assert session.state()["plan_attempts"] == 2
    plan_calls = [msgs for task, msgs in model.calls if task == "plan"]
    assert "'sealr' is not in workcell" in plan_calls[1][-1].text
    assert session.status.state == "done"


def test_plan_gives_up_at_the_bound_and_keeps_the_report(tmp_path: Path) -> None:
    model = pcr.scripted_model(plan=(tool_reply(Plan, pcr.plan(bad=True)),))
    session = run(model, tmp_path, max_plan_attempts=2)
    status, state = session.status, session.state()
    assert (status.state, status.step) == ("failed", "check_plan")
    assert "after 2 attempt(s)" in status.reason and "sealr" in status.reason
    assert state["reports"]["plan"].codes("error") == ["unknown-module"]
    assert "workflow" not in state


def test_llm_garbage_goes_through_the_retry_edge(tmp_path: Path) -> None:
    garbage = AIMessage("", tool_calls=[{"name": "WorkflowDraft", "args": {"name": 3}, "id": "c1"}])
    model = pcr.scripted_model(workflow=(garbage, tool_reply(WorkflowDraft, pcr.workflow())))
    session = run(model, tmp_path)
    versions = [v for v in session.state()["versions"] if v.agent == "workflow"]
    assert session.state()["workflow_attempts"] == 2 and len(versions) == 1 and versions[0].ok


def test_infeasible_ends_with_the_missing_capability(tmp_path: Path) -> None:
    explanation = Infeasibility(missing_capability="a centrifuge", reason="the protocol spins the plate")
    model = pcr.scripted_model(
        feasibility=(yes_no("no", 0.8),),
        **{"feasibility-explanation": (tool_reply(Infeasibility, explanation),)},
    )
    session = run(model, tmp_path)
    status = session.status
    assert status.state == "infeasible" and "centrifuge" in status.reason
    assert session.get_history()["validity"] == pytest.approx(0.2)
    assert "plan" not in session.state()


def test_transient_errors_are_retried_then_fail_cleanly(tmp_path: Path) -> None:
    request = __import__("httpx").Request("POST", "http://127.0.0.1/v1/chat/completions")
    error = openai.APITimeoutError(request=request)
    model = pcr.scripted_model(shortlist=(error, error, error))
    session = run(model, tmp_path)
    assert sum(1 for task, _ in model.calls if task == "shortlist") == 3  # the node's retry policy, bounded
    assert (session.status.state, session.status.step) == ("failed", "make_shortlist")
    assert "APITimeoutError" in session.status.reason
    assert session.state()["reports"]["plan"].ok  # what was done before is kept
    # Resumable: once the provider answers again, the step method completes.
    model.script("shortlist", tool_reply(Shortlist, Shortlist(modules=[ShortlistEntry(module="sealer")])))
    assert session.workflow_step().state == "done"


def test_missing_api_key_fails_without_retrying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from wei_gen.context import Context

    app = WEIGen(context=Context(base_url=""), data_dir=tmp_path)
    session = app.new_session()
    status = session.execute_experiment(pcr.DESCRIPTION)
    assert (status.state, status.step) == ("failed", "check_feasibility")
    assert "no OpenAI API key" in status.reason


def test_step_methods_run_their_part_only(tmp_path: Path) -> None:
    model = pcr.scripted_model()
    app = WEIGen(context=pcr.context_for(model), data_dir=tmp_path)
    session = app.new_session()
    with pytest.raises(WEIGenError, match="description is empty"):
        session.framework_step("  ")
    assert session.workflow_step().state == "failed"  # no plan yet: refused with a reason
    assert "run framework_step first" in session.status.reason
    assert session.framework_step(pcr.DESCRIPTION, pcr.VALUES).state == "done"
    assert "workflow" not in session.state()
    assert session.workflow_step().state == "done" and "code" not in session.state()
    assert session.code_step().state == "done" and "code" in session.state()


def test_edit_marks_later_artifacts_stale(tmp_path: Path) -> None:
    session = run(pcr.scripted_model(), tmp_path)
    session.modify_generated_data("framework", pcr.plan().model_dump_json())
    assert session.get_history()["wei_gen"]["stale"] == ["workflow", "code", "config"]
    with pytest.raises(WEIGenError, match="not a plan"):
        session.modify_generated_data("framework", "{}")
    with pytest.raises(WEIGenError, match="unknown agent"):
        session.modify_generated_data("planner", "x")
    with pytest.raises(WEIGenError, match="no artifact"):
        session.modify_generated_data("validator", "x")


def test_a_workflow_edit_is_flow_checked_and_its_flow_replaces_the_old_one(tmp_path: Path) -> None:
    import yaml

    session = run(pcr.scripted_model(), tmp_path)
    assert session.state()["flow"].verdict == "sat"
    data = yaml.safe_load(session.state()["workflow"].yaml)
    # Drop the transfer onto the sealer: the seal step then has no plate. Valid for the validator, unsat for z3.
    moves = [i for i, s in enumerate(data["flowdef"]) if s["args"].get("target") == "sealer.default"]
    del data["flowdef"][moves[0]]
    session.modify_generated_data("workflow", yaml.safe_dump(data, sort_keys=False))
    state = session.state()
    assert state["flow"].verdict == "unsat"
    assert not state["reports"]["workflow"].ok
    assert any(d.code.startswith("flow-") and d.severity == "error" for d in state["reports"]["workflow"].diagnostics)
    assert state["versions"][-1].agent == "workflow" and not state["versions"][-1].ok


def test_reconcile_shortlist() -> None:
    lab = lab_from_dir(LAB)
    proposed = Shortlist(modules=[ShortlistEntry(module="ghost"), ShortlistEntry(module="sealer")])
    shortlist, notes = reconcile_shortlist(proposed, pcr.plan(), lab)
    assert [e.module for e in shortlist.modules] == ["sealer", "sciclops", "pf400"]
    assert any("ghost" in n for n in notes)


def test_extract_block() -> None:
    assert extract_block("here:\n```yaml\na: 1\n```\nok", "yaml") == "a: 1\n"
    assert extract_block("```python\nx = 1\n```\n```yaml\nb: 2\n```", "yaml") == "b: 2\n"
    assert extract_block("no code here", "yaml") is None


def test_compiled_builder_with_memory_saver() -> None:
    """The exported builder compiles with any checkpointer (the server's or a test's)."""
    compiled = builder.compile(checkpointer=InMemorySaver())
    out = compiled.invoke({"description": ""}, {"configurable": {"thread_id": "t"}})
    assert out["status"].state == "failed" and "empty" in out["status"].reason


def test_plan_flow_error_is_explained_and_retried(tmp_path: Path) -> None:
    no_transfer = pcr.plan()
    no_transfer.steps.pop(1)  # the arm never brings the plate to the sealer
    model = pcr.scripted_model(plan=(tool_reply(Plan, no_transfer), tool_reply(Plan, pcr.plan())))
    session = run(model, tmp_path)
    second_plan_request = [msgs for task, msgs in model.calls if task == "plan"][1][-1].text
    assert "needs a plate on sealer.default, but after step 1" in second_plan_request
    assert session.state()["plan_attempts"] == 2 and session.status.state == "done"


def test_forgotten_transfer_in_a_workflow_is_completed(tmp_path: Path) -> None:
    draft = pcr.workflow()
    draft.steps.pop(1)  # the model forgot the move to the sealer
    session = run(pcr.scripted_model(workflow=(tool_reply(WorkflowDraft, draft),)), tmp_path)
    state = session.state()
    assert state["workflow_attempts"] == 1 and state["reports"]["workflow"].ok
    moves = [s for s in state["workflow"].workflow.flowdef if s.module == "pf400"]
    assert [(s.args["source"], s.args["target"]) for s in moves] == [("sciclops.exchange", "sealer.default")]
    assert state["flow"].verdict == "sat"


def _code(script: str) -> AIMessage:
    from wei_gen.nodes.code import ScriptDraft

    return tool_reply(ScriptDraft, ScriptDraft(script=script))


def test_agentcoder_fixes_a_wrong_api_call_after_feedback(tmp_path: Path) -> None:
    broken = pcr.SCRIPT.replace("client.start_run(", "client.run_workflow(")  # an invented API
    model = pcr.scripted_model(code=(_code(broken), _code(pcr.SCRIPT)))
    session = run(model, tmp_path)
    state = session.state()
    assert session.status.state == "done" and state["code_attempts"] == 2
    second_request = [msgs for task, msgs in model.calls if task == "code"][1][-1].text
    assert "run_workflow" in second_request  # the executor's evidence went back to the programmer
    assert [v.ok for v in state["versions"] if v.agent == "code"] == [False, True]


def test_agentcoder_fixes_a_missing_parameter_after_feedback(tmp_path: Path) -> None:
    wrong = pcr.SCRIPT.replace('"temp"', '"temperature"')  # not a parameter the workflow declares
    session = run(pcr.scripted_model(code=(_code(wrong), _code(pcr.SCRIPT))), tmp_path)
    assert session.status.state == "done" and session.state()["code_attempts"] == 2


def test_hopeless_code_fails_at_the_bound_with_the_output_kept(tmp_path: Path) -> None:
    hopeless = pcr.SCRIPT.replace('raise SystemExit(f"the run failed', 'return None  # ("the run failed')
    session = run(pcr.scripted_model(code=(_code(hopeless),)), tmp_path, max_code_attempts=2)
    status, report = session.status, session.state()["reports"]["code"]
    assert (status.state, status.step) == ("failed", "check_code") and "after 2 attempt(s)" in status.reason
    failed = [d for d in report.errors if d.code == "code-tests-failed"]
    assert failed and "test_a_failing_step_stops_the_script" in failed[0].message  # the pytest output is kept
