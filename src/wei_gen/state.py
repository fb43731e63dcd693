"""The typed session state of the wei-gen graph: inputs, artifacts (pydantic), reports, counters, status.

Artifacts are pydantic models so that they come back from a checkpoint with their type (the graph's serializer
allow-lists every type reachable from these annotations). Nodes return only the keys they change.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from wei_gen.tools.flow import FlowReport
from wei_gen.tools.validator import ValidationReport
from wei_gen.wei_types import Workflow
from wei_gen.yamlio import dump_yaml

Agent = Literal["framework", "workflow", "code", "validator", "config"]
AGENTS: tuple[Agent, ...] = ("framework", "workflow", "code", "validator", "config")
Entry = Literal["start", "workflow", "code", "config", "refine", "edit"]
Phase = Literal["plan", "workflow", "code", "config"]


# ---------------------------------------------------------------------------------------------------------------------
# Artifacts
# ---------------------------------------------------------------------------------------------------------------------


class Feasibility(BaseModel):
    """The feasibility verdict: P(yes) from token logprobs (or a structured fallback) against a threshold."""

    p_yes: float
    """Probability that the lab can run the experiment."""
    feasible: bool
    """``p_yes`` is above the threshold."""
    method: Literal["logprobs", "structured", "offline"]
    """Where ``p_yes`` came from: the first answer token's logprobs, a structured verdict when none were given, or
    the offline planner (1.0 / 0.0: every clause maps to the lab, or one needs a capability the lab lacks)."""
    reason: str = ""
    """The model's explanation (asked only when infeasible)."""
    missing_capability: str = ""
    """What the lab lacks, when infeasible."""


class ArgValue(BaseModel):
    """One action argument as a model writes it: a name and a JSON-encoded value (strict-schema friendly)."""

    name: str
    """Argument name from the about."""
    value: str
    """The value as JSON text, e.g. ``175``, ``"sealer.default"``, ``[1, 2]``, or ``"$temperature"``."""


class PlanStep(BaseModel):
    """One step of the experiment plan: an instrument action with its arguments."""

    instrument: str
    """Workcell module name."""
    action: str
    """Action of that module."""
    args: list[ArgValue] = Field(default_factory=list)
    """Arguments with values taken from the user's values."""
    purpose: str = ""
    """Why this step is there, in the scientist's words."""


class Plan(BaseModel):
    """The experiment plan (wei_gen v2's "framework"): ordered instrument actions."""

    title: str
    """Short name of the experiment."""
    summary: str = ""
    """What the experiment does."""
    steps: list[PlanStep]
    """Ordered steps."""


class ShortlistEntry(BaseModel):
    """An instrument chosen for the workflow."""

    module: str
    """Workcell module name."""
    why: str = ""
    """What it is used for."""


class Shortlist(BaseModel):
    """The instruments the workflow will use."""

    modules: list[ShortlistEntry]
    """Chosen modules; each exists in the lab."""


class Example(BaseModel):
    """A retrieved example workflow, rendered compactly for the prompt."""

    source: str
    """Where it came from (file path)."""
    name: str
    """Workflow name."""
    summary: str
    """Step summary ``module.action -> ...``."""
    score: float
    """Ranking score (higher is better)."""


class WorkflowArtifact(BaseModel):
    """The generated WEI workflow: the model and its YAML text."""

    workflow: Workflow
    """Parsed workflow."""
    yaml: str
    """The YAML text users download and WEI runs."""


class CodeArtifact(BaseModel):
    """The generated Python experiment script and its tests."""

    script: str
    """Python source running the workflow through WEI's ExperimentClient."""
    tests: str = ""
    """pytest source for the script (written independently)."""


class ConfigFile(BaseModel):
    """One instrument config file (e.g. an OT-2 protocol)."""

    path: str
    """Path relative to the run bundle, e.g. ``configs/ot2_pcr_protocol.yaml``."""
    module: str
    """The module it is for."""
    content: str
    """File content."""


class ConfigArtifact(BaseModel):
    """Instrument configs plus the required initial lab setup."""

    files: list[ConfigFile] = Field(default_factory=list)
    """Config files."""
    setup: str = ""
    """The initial lab setup (which labware must be where)."""


class Version(BaseModel):
    """One version of an artifact, as generated, refined in chat, or edited by the user."""

    agent: Agent
    """Which artifact."""
    number: int
    """1, 2, ... per agent."""
    origin: Literal["generated", "chat", "edit"]
    """How it came about."""
    content: str
    """The artifact as text (YAML, JSON or Python)."""
    ok: bool
    """Whether its checks passed."""


class PlannerInfo(BaseModel):
    """Which planner made the artifacts, said plainly; for the offline planner, what it could not map."""

    mode: Literal["model", "offline"] = "model"
    """``offline``: the deterministic planner (no model configured)."""
    notice: str = ""
    """The announcement to show users (CLI, API)."""
    matcher: str = ""
    """How clauses were matched to actions (``lexical + embedding`` or ``lexical only`` and why)."""
    unmapped: list[str] = Field(default_factory=list)
    """Clauses of the description that map to no action of the lab (reported, never guessed)."""
    notes: list[str] = Field(default_factory=list)
    """Other findings: values not bound, transfers and door steps added."""


class Status(BaseModel):
    """Where the session is: running, infeasible, failed (with step and reason) or done."""

    state: Literal["running", "infeasible", "failed", "done"] = "running"
    """Overall state."""
    step: str = ""
    """The node that failed or stopped the run."""
    reason: str = ""
    """Why, in plain words."""


class Turn(BaseModel):
    """One message of an agent's conversation, as wei_gen v2's ``*_agent_ctx`` stores them."""

    role: Literal["system", "user", "assistant"]
    """Who said it."""
    content: str
    """What was said."""


class Usage(BaseModel):
    """Model calls and tokens."""

    calls: int = 0
    """Model calls."""
    prompt_tokens: int = 0
    """Prompt tokens."""
    completion_tokens: int = 0
    """Completion tokens."""
    prompt_chars: int = 0
    """Characters sent (a provider-independent size)."""


# ---------------------------------------------------------------------------------------------------------------------
# Reducers
# ---------------------------------------------------------------------------------------------------------------------


def add_usage(left: dict[str, Usage] | None, right: dict[str, Usage] | None) -> dict[str, Usage]:
    """Sum usage per step name."""
    out = dict(left or {})
    for step, usage in (right or {}).items():
        old = out.get(step, Usage())
        out[step] = Usage(
            calls=old.calls + usage.calls,
            prompt_tokens=old.prompt_tokens + usage.prompt_tokens,
            completion_tokens=old.completion_tokens + usage.completion_tokens,
            prompt_chars=old.prompt_chars + usage.prompt_chars,
        )
    return out


def add_turns(left: dict[str, list[Turn]] | None, right: dict[str, list[Turn]] | None) -> dict[str, list[Turn]]:
    """Append turns per agent."""
    out = {k: list(v) for k, v in (left or {}).items()}
    for agent, turns in (right or {}).items():
        out.setdefault(agent, []).extend(turns)
    return out


def merge_reports(
    left: dict[str, ValidationReport] | None, right: dict[str, ValidationReport | None] | None
) -> dict[str, ValidationReport]:
    """Replace reports per artifact, keeping the others; a ``None`` report removes that artifact's report."""
    merged = {**(left or {}), **(right or {})}
    return {k: v for k, v in merged.items() if v is not None}


def merge_strings(left: dict[str, str] | None, right: dict[str, str] | None) -> dict[str, str]:
    """Replace values per key, keeping the others."""
    return {**(left or {}), **(right or {})}


# ---------------------------------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------------------------------


class InputState(TypedDict, total=False):
    """What a caller sends: the experiment, the lab, and which part of the pipeline to run."""

    description: str
    """The experiment in plain language."""
    values: str
    """The user's values (volumes, temperatures, programs), free text or YAML."""
    lab_dir: str
    """Lab directory (workcell.yaml + abouts/); defaults to the context's lab."""
    entry: Entry
    """Where to start: the whole pipeline, a later phase, a chat refinement or a user edit."""
    stop_after: Phase | None
    """Stop after this phase (wei_gen v2's step methods), or run to the end."""
    agent: Agent | None
    """For ``refine``/``edit``: which artifact."""
    message: str
    """For ``refine``: the user's chat message; for ``edit``: the new artifact text."""


class State(InputState, total=False):
    """The whole session state."""

    feasibility: Feasibility
    """Feasibility verdict (wei_gen v2's ``validity``)."""
    plan: Plan
    """The experiment plan."""
    plan_feedback: str
    """Why the last plan failed its check (sent back on retry)."""
    plan_attempts: int
    """Plans generated in this run of the plan phase."""
    shortlist: Shortlist
    """Instruments to use."""
    examples: list[Example]
    """Retrieved example workflows."""
    workflow: WorkflowArtifact
    """The generated workflow."""
    workflow_feedback: str
    """Why the last workflow failed validation."""
    workflow_attempts: int
    """Workflows generated in this run of the workflow phase."""
    flow: FlowReport
    """The z3 labware-flow verdict of the latest workflow, with the required initial lab setup."""
    code: CodeArtifact
    """Experiment code and tests."""
    code_tests: str
    """The test designer's pytest module for this code phase (written before the script, without seeing it)."""
    code_feedback: str
    """Why the last code failed its checks."""
    code_attempts: int
    """Scripts generated in this run of the code phase."""
    config: ConfigArtifact
    """Instrument configs and the initial lab setup."""
    config_feedback: str
    """Why the last configs failed their checks."""
    config_attempts: int
    """Config sets generated in this run of the config phase."""
    reports: Annotated[dict[str, ValidationReport], merge_reports]
    """Latest check report per artifact (``plan``, ``workflow``, ``code``, ``config``)."""
    draft_errors: Annotated[dict[str, str], merge_strings]
    """Per phase: why the model's last answer could not be read at all ("" when it could)."""
    stale: list[Agent]
    """Artifacts made out of date by a later edit of an earlier one."""
    versions: Annotated[list[Version], operator.add]
    """Every version of every artifact."""
    contexts: Annotated[dict[str, list[Turn]], add_turns]
    """Per-agent conversation (wei_gen v2's ``*_agent_ctx``), without the system prompts."""
    usage: Annotated[dict[str, Usage], add_usage]
    """Model calls and tokens per step."""
    status: Status
    """Running, infeasible, failed or done."""
    reply: str
    """The last chat answer (``refine``)."""
    planner: PlannerInfo
    """Which planner made the artifacts (the offline planner announces itself here)."""


class OutputState(TypedDict, total=False):
    """What a run returns."""

    status: Status
    """Running, infeasible, failed or done."""
    feasibility: Feasibility
    """Feasibility verdict."""
    plan: Plan
    """The plan."""
    workflow: WorkflowArtifact
    """The workflow."""
    code: CodeArtifact
    """The code."""
    config: ConfigArtifact
    """The configs."""
    reports: dict[str, ValidationReport]
    """Check reports per artifact."""
    reply: str
    """The last chat answer."""
    planner: PlannerInfo
    """Which planner made the artifacts."""


def artifact_text(state: State, agent: Agent) -> str:
    """The current artifact of an agent as text (what the history and the chat show)."""
    if agent == "framework" and state.get("plan") is not None:
        return state["plan"].model_dump_json(indent=2)
    if agent == "workflow" and state.get("workflow") is not None:
        return state["workflow"].yaml
    if agent == "code" and state.get("code") is not None:
        return state["code"].script
    if agent == "config" and state.get("config") is not None:
        # One YAML mapping, file path -> config: the same shape a user edit of the configs is read in.
        files = state["config"].files
        return dump_yaml({f.path: yaml.safe_load(f.content) for f in files}) if files else ""
    if agent == "validator":
        return "\n".join(f"{k}: {'ok' if r.ok else 'errors'}" for k, r in state.get("reports", {}).items())
    return ""


def dump(value: Any) -> Any:
    """JSON-ready form of a state value (pydantic models to dicts)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, list):
        return [dump(v) for v in value]
    return value


ARTIFACT_KEYS: dict[Agent, str] = {"framework": "plan", "workflow": "workflow", "code": "code", "config": "config"}
"""Which state key holds each agent's artifact (the validator has none)."""


def stale_after(state: State, agent: Agent) -> list[Agent]:
    """The stale list once ``agent`` has a new version: it is fresh, every later artifact that exists is stale."""
    order = list(ARTIFACT_KEYS)
    later = {a for a in order[order.index(agent) + 1 :] if ARTIFACT_KEYS[a] in state} if agent in order else set()
    return sorted((set(state.get("stale", [])) | later) - {agent}, key=AGENTS.index)
