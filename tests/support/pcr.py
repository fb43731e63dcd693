"""A small seal-the-plate scenario on the example lab, as structured answers a scripted model can give."""

from __future__ import annotations

from typing import Any

from tests.support import experiment_code
from tests.support.fake_chat import TaskScriptedChatModel, tool_reply, yes_no
from tests.support.scenarios import args, model_context
from wei_gen.context import Context
from wei_gen.nodes.code import ScriptDraft
from wei_gen.nodes.tests_design import TestsDraft
from wei_gen.nodes.workflow import ParameterDraft, StepDraft, WorkflowDraft
from wei_gen.state import Plan, PlanStep, Shortlist, ShortlistEntry

DESCRIPTION = "Take a new plate from the tower, seal it at 175 C for 3 seconds."
VALUES = {"temperature": 175, "time": 3}
SCRIPT = experiment_code.script({"temp": 175})


def plan(bad: bool = False) -> Plan:
    return Plan(
        title="Seal",
        steps=[
            PlanStep(instrument="sciclops", action="get_plate", args=args(pos="tower1")),
            PlanStep(
                instrument="pf400", action="transfer", args=args(source="sciclops.exchange", target="sealer.default")
            ),
            PlanStep(instrument="sealr" if bad else "sealer", action="seal", args=args(temperature=175, time=3)),
        ],
    )


def workflow(action: str = "seal") -> WorkflowDraft:
    return WorkflowDraft(
        name="Seal one plate",
        parameters=[ParameterDraft(name="temp", default="175")],
        steps=[
            StepDraft(name="Get plate", module="sciclops", action="get_plate", args=args(pos="tower1")),
            StepDraft(
                name="To sealer",
                module="pf400",
                action="transfer",
                args=args(source="sciclops.exchange", target="sealer.default"),
            ),  # fmt: skip
            StepDraft(name="Seal", module="sealer", action=action, args=args(temperature="$temp", time=3)),
        ],
    )


def scripted_model(**overrides: Any) -> TaskScriptedChatModel:
    """A model answering every task of the seal scenario; ``overrides`` replace a task's replies (a tuple)."""
    model = TaskScriptedChatModel()
    replies: dict[str, tuple[Any, ...]] = {
        "feasibility": (yes_no("yes", 0.9),),
        "plan": (tool_reply(Plan, plan()),),
        "shortlist": (tool_reply(Shortlist, Shortlist(modules=[ShortlistEntry(module="sealer")])),),
        "workflow": (tool_reply(WorkflowDraft, workflow()),),
        "tests": (tool_reply(TestsDraft, TestsDraft(tests=experiment_code.TESTS)),),
        "code": (tool_reply(ScriptDraft, ScriptDraft(script=SCRIPT)),),
    }
    replies.update(overrides)
    for task, items in replies.items():
        model.script(task, *items)
    return model


def context_for(model: TaskScriptedChatModel, name: str = "fake:pcr", **kw: Any) -> Context:
    """Register the model and return a context that uses it for every agent."""
    return model_context(model, name, **kw)
