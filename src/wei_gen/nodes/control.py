"""Run control: check the input and reset the loop counters, give up with the last report kept, finish."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from wei_gen.context import Context
from wei_gen.lab import LabError
from wei_gen.nodes.common import lab_and_cards
from wei_gen.state import State, Status

PHASES = ("plan", "workflow", "code", "config")
_NEEDS = {"workflow": "plan", "code": "workflow", "config": "workflow"}
_STEP_OF_PHASE = {"plan": "framework_step", "workflow": "workflow_step", "code": "code_step", "config": "config_step"}


# A new experiment in a session starts from nothing: the previous one's artifacts and reports must not survive a
# run that stops early (e.g. infeasible). Versions, conversations and usage stay as the session's history.
NEW_EXPERIMENT: dict[str, Any] = {
    **dict.fromkeys(
        ("feasibility", "plan", "shortlist", "examples", "workflow", "flow", "code", "config", "planner"), None
    ),
    "reports": dict.fromkeys(("plan", "workflow", "code", "config", "edit")),
    "stale": [],
}


def _failed(reason: str) -> dict[str, Any]:
    return {"status": Status(state="failed", step="prepare_run", reason=reason)}


def prepare_run(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Refuse unusable input with a clear status; otherwise reset counters and feedback of the phases to run."""
    entry = state.get("entry") or "start"
    if entry == "start" and not (state.get("description") or "").strip():
        return _failed("the experiment description is empty")
    try:
        lab_and_cards(state, runtime)
    except LabError as exc:
        return _failed(f"cannot load the lab: {exc}")
    if entry in _NEEDS and _NEEDS[entry] not in state:
        missing = _NEEDS[entry]
        return _failed(f"there is no {missing} yet: run {_STEP_OF_PHASE[missing]} first")
    if entry in ("refine", "edit") and not state.get("agent"):
        return _failed(f"'{entry}' needs an agent")
    update: dict[str, Any] = {"draft_errors": {}, "reply": ""}
    if entry not in ("refine", "edit"):  # a chat or an edit does not change where the pipeline stands
        update["status"] = Status(state="running", step=entry)
    if entry == "start":
        update |= NEW_EXPERIMENT
    for phase in PHASES:
        update[f"{phase}_attempts"] = 0
        update[f"{phase}_feedback"] = ""
    return update


def give_up(state: State) -> dict[str, Any]:
    """End the run as failed, naming the phase and its first errors; the reports stay in the state."""
    reports = state.get("reports", {})
    phase = next((p for p in reversed(PHASES) if p in reports and not reports[p].ok), "plan")
    errors = reports[phase].errors if phase in reports else []
    attempts = dict(state).get(f"{phase}_attempts", 0)
    detail = "; ".join(d.message for d in errors[:3]) or "no details"
    reason = f"the {phase} still failed its checks after {attempts} attempt(s): {detail}"
    return {"status": Status(state="failed", step=f"check_{phase}", reason=reason)}


def finish(state: State) -> dict[str, Any]:
    """Mark the requested part of the pipeline done."""
    phase = state.get("stop_after") or "config"
    return {"status": Status(state="done", step=phase, reason="")}
