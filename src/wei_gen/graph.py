"""The wei-gen pipeline as a LangGraph state machine: the whole flow on one screen.

    prepare_run ─┬─ check_feasibility ─ make_plan ⇄ check_plan ─ make_shortlist ─ retrieve_examples
                 │                                                                   │
                 │   write_workflow ⇄ check_workflow ─ design_tests ─ write_code ⇄ check_code
                 │                                          ─ write_configs ⇄ check_configs
                 ├─ refine_artifact (chat)      ├─ apply_edit (user edit)          └─ finish | give_up

Every ``⇄`` is a validation retry edge bounded by the context's ``max_*_attempts``; when the bound is reached the
run goes to ``give_up``, which keeps the last report. Transient model errors (429, 5xx, timeouts) are retried by a
per-node policy instead, and a model that still fails ends the run with status ``failed`` (the error handler).
``graph`` is compiled without a checkpointer: the LangGraph server brings its own; the session API and tests compile
``builder`` with theirs.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy

from wei_gen.context import Context
from wei_gen.models import is_transient
from wei_gen.nodes.code import check_code, write_code
from wei_gen.nodes.config import check_configs, write_configs
from wei_gen.nodes.control import finish, give_up, prepare_run
from wei_gen.nodes.feasibility import check_feasibility
from wei_gen.nodes.plan import check_plan, make_plan
from wei_gen.nodes.refine import apply_edit, refine_artifact
from wei_gen.nodes.retrieve import retrieve_examples
from wei_gen.nodes.shortlist import make_shortlist
from wei_gen.nodes.tests_design import design_tests
from wei_gen.nodes.workflow import check_workflow, write_workflow
from wei_gen.state import InputState, OutputState, State, Status

MODEL_RETRY = RetryPolicy(
    max_attempts=3, initial_interval=0.5, backoff_factor=2.0, max_interval=8.0, retry_on=is_transient
)


def model_failed(state: State, error: NodeError) -> dict[str, Any]:
    """After the retry policy gave up on a model node: end the run as failed; everything stored so far stays."""
    reason = f"{type(error.error).__name__}: {' '.join(str(error.error).split())[:300]}"
    return {"status": Status(state="failed", step=error.node, reason=f"model call failed: {reason}")}


# -- routers (Literal return types, so Studio draws only the real edges) --------------------------------------------


def route_entry(state: State) -> Literal[
    "check_feasibility", "make_shortlist", "design_tests", "write_configs", "refine_artifact", "apply_edit", "__end__"
]:  # fmt: skip
    """Start where the caller asked (wei_gen v2's step methods), or stop on unusable input."""
    if state["status"].state == "failed":
        return "__end__"
    return {
        "workflow": "make_shortlist", "code": "design_tests", "config": "write_configs",
        "refine": "refine_artifact", "edit": "apply_edit",
    }.get(state.get("entry") or "start", "check_feasibility")  # type: ignore[return-value]  # fmt: skip


def route_after_feasibility(state: State) -> Literal["make_plan", "__end__"]:
    """Plan only a feasible experiment."""
    return "make_plan" if state["status"].state == "running" else "__end__"


def _next(state: State, runtime: Runtime[Context], phase: str, retry: str, onward: str) -> str:
    if state["reports"][phase].ok:
        return "finish" if state.get("stop_after") == phase else onward
    bound = getattr(runtime.context, f"max_{phase}_attempts")
    return retry if dict(state).get(f"{phase}_attempts", 0) < bound else "give_up"


def route_after_plan_check(
    state: State, runtime: Runtime[Context]
) -> Literal["make_plan", "make_shortlist", "finish", "give_up"]:
    """Retry the plan with feedback, go on, or give up at the bound."""
    return _next(state, runtime, "plan", "make_plan", "make_shortlist")  # type: ignore[return-value]


def route_after_workflow_check(
    state: State, runtime: Runtime[Context]
) -> Literal["write_workflow", "design_tests", "finish", "give_up"]:
    """Retry the workflow with the validator's feedback, go on, or give up at the bound."""
    return _next(state, runtime, "workflow", "write_workflow", "design_tests")  # type: ignore[return-value]


def route_after_code_check(
    state: State, runtime: Runtime[Context]
) -> Literal["write_code", "write_configs", "finish", "give_up"]:
    """Retry the code with the checks' feedback, go on, or give up at the bound."""
    return _next(state, runtime, "code", "write_code", "write_configs")  # type: ignore[return-value]


def route_after_config_check(state: State, runtime: Runtime[Context]) -> Literal["write_configs", "finish", "give_up"]:
    """Retry the configs with feedback, finish, or give up at the bound."""
    return _next(state, runtime, "config", "write_configs", "finish")  # type: ignore[return-value]


def build() -> StateGraph[State, Context, InputState, OutputState]:
    """The graph builder (uncompiled), for callers that compile it with their own checkpointer."""
    model_node: dict[str, Any] = {"retry_policy": MODEL_RETRY, "error_handler": model_failed}
    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node(prepare_run)
    builder.add_node(check_feasibility, **model_node)
    builder.add_node(make_plan, **model_node)
    builder.add_node(check_plan)
    builder.add_node(make_shortlist, **model_node)
    builder.add_node(retrieve_examples)
    builder.add_node(write_workflow, **model_node)
    builder.add_node(check_workflow)
    builder.add_node(design_tests, **model_node)
    builder.add_node(write_code, **model_node)
    builder.add_node(check_code)
    builder.add_node(write_configs, **model_node)
    builder.add_node(check_configs)
    builder.add_node(refine_artifact, **model_node)
    builder.add_node(apply_edit)
    builder.add_node(give_up)
    builder.add_node(finish)

    builder.add_edge(START, "prepare_run")
    builder.add_conditional_edges("prepare_run", route_entry)
    builder.add_conditional_edges("check_feasibility", route_after_feasibility)
    builder.add_edge("make_plan", "check_plan")
    builder.add_conditional_edges("check_plan", route_after_plan_check)
    builder.add_edge("make_shortlist", "retrieve_examples")
    builder.add_edge("retrieve_examples", "write_workflow")
    builder.add_edge("write_workflow", "check_workflow")
    builder.add_conditional_edges("check_workflow", route_after_workflow_check)
    builder.add_edge("design_tests", "write_code")
    builder.add_edge("write_code", "check_code")
    builder.add_conditional_edges("check_code", route_after_code_check)
    builder.add_edge("write_configs", "check_configs")
    builder.add_conditional_edges("check_configs", route_after_config_check)
    builder.add_edge("refine_artifact", END)
    builder.add_edge("apply_edit", END)
    builder.add_edge("give_up", END)
    builder.add_edge("finish", END)
    return builder


builder = build()
graph = builder.compile(name="wei-gen")
