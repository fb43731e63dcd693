"""The experiment plan (wei_gen v2's "framework") and its check against the lab.

The check is deterministic: every plan step becomes a workflow step and goes through the workflow validator
(module, action, required args, locations, types). Its errors are the feedback of the plan retry edge. The z3
flow check (issue 4) adds plate-flow rules to the same report.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from wei_gen.context import Context
from wei_gen.lab import Lab
from wei_gen.models import call_structured
from wei_gen.nodes.common import (
    args_dict,
    chat_model,
    experiment_text,
    feedback_text,
    is_offline,
    lab_and_cards,
    llm_error_report,
    turns,
)
from wei_gen.offline.nodes import offline_plan
from wei_gen.prompts import DATA_RULE, PLAN_RETRY_USER, PLAN_SYSTEM
from wei_gen.state import Plan, State, Version, stale_after
from wei_gen.tools.flow import check_flow, steps_from_workflow
from wei_gen.tools.validator import Diagnostic, ValidationReport, validate_data


def make_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the framework model for an ordered plan of instrument actions (with the last check's feedback)."""
    if is_offline(runtime, "framework"):
        return offline_plan(state, runtime)
    _, cards = lab_and_cards(state, runtime)
    user = experiment_text(state)
    messages: list[BaseMessage] = [
        SystemMessage(PLAN_SYSTEM.format(lab_cards=cards, data_rule=DATA_RULE)),
        HumanMessage(user),
    ]
    if state.get("plan_feedback"):
        if state.get("plan") is not None:  # show the plan that failed; an unreadable answer has none to show
            messages.append(AIMessage(state["plan"].model_dump_json()))
        messages.append(HumanMessage(PLAN_RETRY_USER.format(feedback=state["plan_feedback"])))
    out = call_structured(chat_model(runtime, "framework"), Plan, messages)
    update: dict[str, Any] = {
        "plan_attempts": state.get("plan_attempts", 0) + 1,
        "usage": {"make_plan": out.usage},
        "draft_errors": {"plan": out.error},
        "contexts": {"framework": turns(messages[-1].text, out.value.model_dump_json() if out.value else out.error)},
    }
    if out.value is not None:
        update["plan"] = out.value
    return update


def plan_as_workflow(plan: Plan) -> dict[str, Any]:
    """The plan as workflow data, so the workflow validator can check it step by step."""
    return {
        "name": plan.title or "plan",
        "flowdef": [
            {
                "name": step.purpose or f"{step.instrument}.{step.action}",
                "module": step.instrument,
                "action": step.action,
                "args": args_dict(step.args),
            }
            for step in plan.steps
        ],
    }


def check_plan_against_lab(plan: Plan, lab: Lab) -> ValidationReport:
    """Check a plan's steps against the lab (validator + z3 flow); plans name no files, so those findings go."""
    data = plan_as_workflow(plan)
    report = validate_data(data, lab, source="plan")
    report.diagnostics += check_flow(steps_from_workflow(data), lab).diagnostics
    # A plan does not list protocol files (the config step writes them) and step names are free text.
    report.diagnostics = [
        d for d in report.diagnostics if d.code not in ("missing-required-file", "duplicate-step-name")
    ]
    if not plan.steps:
        report.diagnostics.append(Diagnostic(code="empty-flowdef", severity="error", message="the plan has no steps"))
    return report


def check_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the latest plan against the lab and record the verdict, feedback and a version."""
    error = state.get("draft_errors", {}).get("plan", "")
    if error or state.get("plan") is None:
        report = llm_error_report("plan", error or "no plan was produced")
        return {"reports": {"plan": report}, "plan_feedback": feedback_text(report)}
    lab, _ = lab_and_cards(state, runtime)
    plan = state["plan"]
    report = check_plan_against_lab(plan, lab)
    number = sum(1 for v in state.get("versions", []) if v.agent == "framework") + 1
    version = Version(
        agent="framework", number=number, origin="generated", content=plan.model_dump_json(indent=2), ok=report.ok
    )
    return {
        "reports": {"plan": report},
        "plan_feedback": "" if report.ok else feedback_text(report),
        "versions": [version],
        "stale": stale_after(state, "framework"),
    }
