"""The WEI workflow: written by the workflow model as structured output, rendered to YAML, validated against the lab.

Validation errors go back to the model through the bounded retry edge; the last report is kept on give-up.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, ValidationError

from wei_gen.context import Context
from wei_gen.lab import Lab
from wei_gen.models import call_structured
from wei_gen.nodes.common import (
    args_dict,
    chat_model,
    decode_value,
    experiment_text,
    feedback_text,
    is_offline,
    lab_and_cards,
    llm_error_report,
    turns,
)
from wei_gen.offline.nodes import offline_workflow
from wei_gen.prompts import DATA_RULE, WORKFLOW_RETRY_USER, WORKFLOW_SYSTEM, WORKFLOW_USER
from wei_gen.state import ArgValue, State, Version, WorkflowArtifact, stale_after
from wei_gen.tools.completion import complete_transfers
from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
from wei_gen.tools.validator import validate_workflow
from wei_gen.wei_types import Metadata, Step, Workflow, WorkflowParameter, workflow_to_dict


class ParameterDraft(BaseModel):
    """A workflow parameter as the model writes it."""

    name: str = Field(description="parameter name, used as $name in args")
    default: str = Field(description='default value as JSON text, e.g. 175 or "Absorbance"')


class FileDraft(BaseModel):
    """A file an action takes."""

    name: str = Field(description="the action's file parameter, e.g. protocol")
    path: str = Field(description="path of the file, e.g. configs/ot2_pcr_protocol.yaml")


class StepDraft(BaseModel):
    """A workflow step as the model writes it."""

    name: str = Field(description="unique, says what the step does")
    module: str = Field(description="workcell module name")
    action: str = Field(description="action of that module")
    args: list[ArgValue] = Field(default_factory=list, description="arguments, values as JSON text")
    files: list[FileDraft] = Field(default_factory=list, description="files the action needs")
    comment: str = ""


class WorkflowDraft(BaseModel):
    """A WEI workflow as the model writes it (strict-schema friendly: no free-form mappings)."""

    name: str
    description: str = ""
    parameters: list[ParameterDraft] = Field(default_factory=list)
    steps: list[StepDraft]


def draft_to_workflow(draft: WorkflowDraft) -> Workflow:
    """Turn the model's draft into a WEI workflow model."""
    return Workflow(
        name=draft.name,
        metadata=Metadata(author="wei-gen", description=draft.description, version="1"),
        parameters=[WorkflowParameter(name=p.name, default=decode_value(p.default)) for p in draft.parameters],
        flowdef=[
            Step(
                name=s.name,
                module=s.module,
                action=s.action,
                args=args_dict(s.args),
                files={f.name: f.path for f in s.files},
                comment=s.comment or None,
            )
            for s in draft.steps
        ],
    )


def render_examples(state: State) -> str:
    """The retrieved examples, one line each."""
    return "\n".join(f"- {e.name}: {e.summary}" for e in state.get("examples", [])) or "(none)"


def write_workflow(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the workflow model for the workflow (with the validator's feedback on a retry)."""
    if is_offline(runtime, "workflow"):
        return offline_workflow(state, runtime)
    _, cards = lab_and_cards(state, runtime)
    shortlist = (
        ", ".join(e.module for e in state["shortlist"].modules) if state.get("shortlist") is not None else "(any)"
    )
    user = WORKFLOW_USER.format(
        experiment=experiment_text(state),
        plan=state["plan"].model_dump_json() if state.get("plan") is not None else "(none)",
        shortlist=shortlist,
        examples=render_examples(state),
    )
    messages: list[BaseMessage] = [
        SystemMessage(WORKFLOW_SYSTEM.format(lab_cards=cards, data_rule=DATA_RULE)),
        HumanMessage(user),
    ]
    if state.get("workflow_feedback"):
        previous = state["workflow"].yaml if state.get("workflow") is not None else "(unreadable)"
        retry = WORKFLOW_RETRY_USER.format(workflow_yaml=previous, feedback=state["workflow_feedback"])
        messages.append(HumanMessage(retry))
    out = call_structured(chat_model(runtime, "workflow"), WorkflowDraft, messages)
    update: dict[str, Any] = {
        "workflow_attempts": state.get("workflow_attempts", 0) + 1,
        "usage": {"write_workflow": out.usage},
    }
    error = out.error
    if out.value is not None:
        try:
            workflow, _ = complete_transfers(draft_to_workflow(out.value), lab_and_cards(state, runtime)[0])
            update["workflow"] = WorkflowArtifact(workflow=workflow, yaml=workflow.to_yaml())
        except ValidationError as exc:
            error = f"the workflow could not be built: {exc.errors()[0]['msg']}"
    update["draft_errors"] = {"workflow": error}
    answer = update["workflow"].yaml if "workflow" in update else error
    update["contexts"] = {"workflow": turns(messages[-1].text, answer)}
    return update


def workflow_flow(workflow: Workflow, lab: Lab) -> FlowReport:
    """The z3 labware-flow report of a workflow (generated, edited or refined in chat)."""
    return check_flow(steps_from_workflow(workflow_to_dict(workflow)), lab)


def check_workflow(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Validate the latest workflow against the lab; record the report, the feedback and a version."""
    error = state.get("draft_errors", {}).get("workflow", "")
    if error or state.get("workflow") is None:
        report = llm_error_report("workflow", error or "no workflow was produced")
        return {"reports": {"workflow": report}, "workflow_feedback": feedback_text(report)}
    lab, _ = lab_and_cards(state, runtime)
    artifact = state["workflow"]
    report = validate_workflow(artifact.workflow, lab, source="workflow.yaml")
    flow = workflow_flow(artifact.workflow, lab)
    report.diagnostics += flow.diagnostics
    number = sum(1 for v in state.get("versions", []) if v.agent == "workflow") + 1
    version = Version(agent="workflow", number=number, origin="generated", content=artifact.yaml, ok=report.ok)
    return {
        "reports": {"workflow": report},
        "flow": flow,
        "workflow_feedback": "" if report.ok else feedback_text(report),
        "versions": [version],
        "stale": stale_after(state, "workflow"),
    }


def parameter_defaults(workflow: Workflow) -> str:
    """Declared parameters with defaults, for prompts."""
    return json.dumps({p.name: p.default for p in workflow.parameters})
