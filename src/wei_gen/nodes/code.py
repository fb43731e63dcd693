"""Experiment code, AgentCoder style: the programmer writes the script; the executor (deterministic) judges it.

The executor checks the script statically, runs it in the sandbox against the simulated WEI lab (its trace must match
the workflow) and runs the test designer's tests; what fails is the programmer's feedback on the retry edge.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from wei_gen.context import Context
from wei_gen.models import call_structured
from wei_gen.nodes.common import (
    chat_model,
    experiment_text,
    feedback_text,
    is_offline,
    lab_path,
    llm_error_report,
    turns,
)
from wei_gen.nodes.workflow import parameter_defaults
from wei_gen.offline.nodes import offline_code
from wei_gen.prompts import CODE_RETRY_USER, CODE_SYSTEM, CODE_USER, DATA_RULE
from wei_gen.state import CodeArtifact, State, Version, stale_after
from wei_gen.tools.executor import execute_code


class ScriptDraft(BaseModel):
    """The programmer's answer."""

    script: str = Field(description="the complete Python script")


def write_code(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the code model for the experiment script (with the checks' feedback on a retry)."""
    if is_offline(runtime, "code"):
        return offline_code(state, runtime)
    workflow = state["workflow"]
    user = CODE_USER.format(
        workflow_yaml=workflow.yaml, parameters=parameter_defaults(workflow.workflow), experiment=experiment_text(state)
    )
    messages: list[BaseMessage] = [SystemMessage(CODE_SYSTEM.format(data_rule=DATA_RULE)), HumanMessage(user)]
    if state.get("code_feedback"):
        messages.append(HumanMessage(CODE_RETRY_USER.format(feedback=state["code_feedback"])))
    out = call_structured(chat_model(runtime, "code"), ScriptDraft, messages)
    update: dict[str, Any] = {
        "code_attempts": state.get("code_attempts", 0) + 1,
        "usage": {"write_code": out.usage},
        "draft_errors": {"code": out.error},
        "contexts": {"code": turns(messages[-1].text, out.value.script if out.value else out.error)},
    }
    if out.value is not None:
        update["code"] = CodeArtifact(script=out.value.script, tests=state.get("code_tests", ""))
    return update


def check_code(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the script statically against the workflow; record the report, the feedback and a version."""
    error = state.get("draft_errors", {}).get("code", "")
    if error or state.get("code") is None:
        report = llm_error_report("experiment.py", error or "no script was produced")
        return {"reports": {"code": report}, "code_feedback": feedback_text(report)}
    script = state["code"].script
    workflow = state["workflow"]
    report = execute_code(
        script, state.get("code_tests", ""), workflow.workflow, workflow.yaml, lab_path(state, runtime),
        timeout=runtime.context.sandbox_timeout,
    )  # fmt: skip
    number = sum(1 for v in state.get("versions", []) if v.agent == "code") + 1
    version = Version(agent="code", number=number, origin="generated", content=script, ok=report.ok)
    return {
        "reports": {"code": report},
        "code_feedback": "" if report.ok else feedback_text(report),
        "versions": [version],
        "stale": stale_after(state, "code"),
    }
