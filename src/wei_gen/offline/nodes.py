"""The offline branches of the model nodes: the same state keys and artifacts, made without a model.

Each function mirrors its node (``check_feasibility``, ``make_plan``, ``make_shortlist``, ``write_workflow``,
``design_tests``, ``write_code``) and is called by it when the agent's model is ``offline``; the same check nodes then
verify the artifacts. No model is called, so these steps add no usage.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from wei_gen.context import OFFLINE_NOTICE, Context
from wei_gen.lab import Lab
from wei_gen.nodes.common import args_dict, experiment_text, lab_and_cards, turns
from wei_gen.offline.binding import key_matches
from wei_gen.offline.code import experiment_script, experiment_tests, parameter_values
from wei_gen.offline.planner import OfflinePlan, parse_values, plan_offline, to_plan
from wei_gen.state import (
    CodeArtifact,
    Feasibility,
    Plan,
    PlannerInfo,
    Shortlist,
    ShortlistEntry,
    State,
    Status,
    WorkflowArtifact,
)
from wei_gen.tools.completion import complete_transfers
from wei_gen.wei_types import Metadata, Step, Workflow, WorkflowParameter


def _plan(state: State, runtime: Runtime[Context]) -> tuple[Lab, OfflinePlan]:
    lab, _ = lab_and_cards(state, runtime)
    return lab, plan_offline(state.get("description", ""), state.get("values", ""), lab)


def planner_info(result: OfflinePlan) -> PlannerInfo:
    """The announcement and findings of an offline run."""
    return PlannerInfo(
        mode="offline", notice=OFFLINE_NOTICE, matcher=result.matcher, unmapped=list(result.unmapped),
        notes=list(result.notes),
    )  # fmt: skip


def offline_feasibility(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Feasible (P = 1.0) when every needed instrument is in the lab; else infeasible (0.0) naming what is missing."""
    _, result = _plan(state, runtime)
    feasible = result.feasible
    verdict = Feasibility(
        p_yes=1.0 if feasible else 0.0, feasible=feasible, method="offline", reason=result.reason(),
        missing_capability=result.missing_capability,
    )  # fmt: skip
    mapped = "\n".join(f"- '{clause}' → {key} ({why})" for clause, key, why in result.mapped)
    answer = f"feasible: {feasible} (offline planner) {result.reason()}\n{mapped}".strip()
    update: dict[str, Any] = {
        "feasibility": verdict,
        "planner": planner_info(result),
        "contexts": {"framework": turns(experiment_text(state), answer)},
    }
    if not feasible:
        why = f"the lab lacks {result.missing_capability}: {result.reason()}"
        update["status"] = Status(state="infeasible", step="check_feasibility", reason=f"P(yes) = 0.00; {why}")
    return update


def offline_plan(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The offline plan (deterministic: a retry gives the same plan, and the bound ends the loop)."""
    _, result = _plan(state, runtime)
    plan = to_plan(result, state.get("description", ""))
    return {
        "plan_attempts": state.get("plan_attempts", 0) + 1,
        "plan": plan,
        "draft_errors": {"plan": ""},
        "planner": planner_info(result),
        "contexts": {"framework": turns(experiment_text(state), plan.model_dump_json())},
    }


def offline_shortlist(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The modules the plan uses, in order of first use."""
    lab, _ = lab_and_cards(state, runtime)
    plan = state.get("plan")
    chosen: dict[str, ShortlistEntry] = {}
    for step in plan.steps if plan is not None else []:
        if step.instrument not in chosen and lab.module(step.instrument) is not None:
            chosen[step.instrument] = ShortlistEntry(module=step.instrument, why=step.purpose or step.action)
    shortlist = Shortlist(modules=list(chosen.values()))
    answer = ", ".join(chosen) or "(none)"
    return {"shortlist": shortlist, "contexts": {"framework": turns("shortlist (offline)", answer)}}


def _value_key(values: dict[str, Any], arg: str, value: Any) -> str | None:
    """The values key an arg's value came from (same value, a key naming the arg); falsy values stay literal."""
    if isinstance(value, bool) or not value:
        return None  # WEI 0.7 reads a falsy default as "no default"
    return next((k for k, v in values.items() if v == value and not isinstance(v, bool) and key_matches(k, arg, None)),
                None)  # fmt: skip


def plan_to_workflow(plan: Plan, values: dict[str, Any], lab: Lab, description: str = "") -> Workflow:
    """A workflow from a plan: the scientist's values become parameters, every required file gets a config path."""
    parameters: dict[str, Any] = {}
    steps: list[Step] = []
    names: set[str] = set()
    files_used: set[str] = set()
    for plan_step in plan.steps:
        args = args_dict(plan_step.args)
        for arg, value in list(args.items()):
            key = _value_key(values, arg, value)
            if key is not None:
                parameters[key] = value
                args[arg] = f"${key}"
        action = lab.action(plan_step.instrument, plan_step.action)
        files: dict[str, str] = {}
        for f in action.files if action is not None else []:
            path, n = f"configs/{plan_step.instrument}_{f.name}.yaml", 2
            while path in files_used:
                path, n = f"configs/{plan_step.instrument}_{f.name}_{n}.yaml", n + 1
            files_used.add(path)
            files[f.name] = path
        name, n = plan_step.purpose or f"{plan_step.instrument}.{plan_step.action}", 2
        base = name
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.add(name)
        steps.append(Step(name=name, module=plan_step.instrument, action=plan_step.action, args=args, files=files))
    return Workflow(
        name=plan.title or "experiment",
        metadata=Metadata(author="wei-gen offline planner", description=description or plan.summary, version="1"),
        parameters=[WorkflowParameter(name=k, default=v) for k, v in parameters.items()],
        flowdef=steps,
    )


def offline_workflow(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The workflow from the checked plan, with the pipeline's transfer completion."""
    lab, _ = lab_and_cards(state, runtime)
    plan = state.get("plan")
    update: dict[str, Any] = {"workflow_attempts": state.get("workflow_attempts", 0) + 1}
    if plan is None:
        update["draft_errors"] = {"workflow": "there is no plan to turn into a workflow"}
        return update
    draft = plan_to_workflow(plan, parse_values(state.get("values", "")), lab, state.get("description", ""))
    workflow, _ = complete_transfers(draft, lab)
    artifact = WorkflowArtifact(workflow=workflow, yaml=workflow.to_yaml())
    update |= {
        "workflow": artifact,
        "draft_errors": {"workflow": ""},
        "contexts": {"workflow": turns("workflow (offline planner)", artifact.yaml)},
    }
    return update


def offline_tests(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Tests of the script from the workflow alone."""
    tests = experiment_tests(state["workflow"].workflow)
    return {"code_tests": tests, "contexts": {"validator": turns("tests (offline test designer)", tests)}}


def offline_code(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The experiment script for the workflow's parameters."""
    script = experiment_script(parameter_values(state["workflow"].workflow))
    return {
        "code_attempts": state.get("code_attempts", 0) + 1,
        "code": CodeArtifact(script=script, tests=state.get("code_tests", "")),
        "draft_errors": {"code": ""},
        "contexts": {"code": turns("experiment script (offline programmer)", script)},
    }
