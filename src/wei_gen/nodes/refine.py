"""Chat refinement (``call_gen_env``) and user edits (``modify_generated_data``) of an artifact.

Whatever the source — a fenced block in the agent's answer or text the user typed — a new artifact is parsed and
checked by the same deterministic checks as a generated one and stored as a new version; later artifacts are marked
stale. Text that is not an artifact at all is refused with a clear message and the current artifact is kept.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import yaml
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import ValidationError

from wei_gen.context import Context
from wei_gen.lab import Lab
from wei_gen.models import retry_after_respected, usage_of
from wei_gen.nodes.common import chat_model, is_offline, lab_and_cards, llm_error_report
from wei_gen.nodes.config import ProtocolConfig, check_protocol
from wei_gen.nodes.plan import check_plan_against_lab
from wei_gen.nodes.workflow import workflow_flow
from wei_gen.prompts import DATA_RULE, REFINE_SYSTEM, REFINE_USER, ROLES
from wei_gen.state import (
    ARTIFACT_KEYS,
    Agent,
    CodeArtifact,
    ConfigArtifact,
    ConfigFile,
    Plan,
    State,
    Turn,
    Version,
    WorkflowArtifact,
    artifact_text,
    stale_after,
)
from wei_gen.tools.code_check import check_script
from wei_gen.tools.validator import ValidationReport, validate_text
from wei_gen.wei_types import Workflow
from wei_gen.yamlio import dump_yaml

_FENCE = re.compile(r"```([\w+-]*)[ \t]*\n(.*?)```", re.S)
EDITABLE: tuple[Agent, ...] = ("framework", "workflow", "code", "config")
OFFLINE_CHAT_REPLY = (
    "The {agent} agent runs on the offline planner (no model is configured), which cannot chat. Edit the artifact "
    "directly (update_generated / modify_generated_data: it is checked like a generated one), or configure a model "
    "(OPENAI_API_KEY, OPENAI_BASE_URL or settings.{agent}_model) to refine it in conversation."
)


def extract_block(reply: str, fence: str) -> str | None:
    """The fenced block of the given language in an answer (else its only fenced block), or None."""
    blocks = _FENCE.findall(reply)
    for lang, body in blocks:
        if lang.lower() in (fence, {"yaml": "yml", "python": "py"}.get(fence, fence)):
            return str(body)
    return str(blocks[0][1]) if len(blocks) == 1 else None


def parse_artifact(agent: Agent, text: str, lab: Lab, state: State) -> tuple[Any, ValidationReport]:
    """Parse and check artifact text; returns (artifact or None, report). None means the text is not one."""
    if agent == "framework":
        try:
            plan = Plan.model_validate_json(text)
        except ValidationError as exc:
            return None, llm_error_report("plan", f"not a plan (JSON with title and steps): {exc.errors()[0]['msg']}")
        return plan, check_plan_against_lab(plan, lab)
    if agent == "workflow":
        report = validate_text(text, lab, source="workflow.yaml")
        try:
            workflow = Workflow.model_validate(yaml.safe_load(text))
        except (yaml.YAMLError, ValidationError, TypeError):
            return None, report
        return WorkflowArtifact(workflow=workflow, yaml=text), report
    if agent == "code":
        report = check_script(text, state["workflow"].workflow if state.get("workflow") is not None else None)
        if any(d.code == "code-syntax" for d in report.diagnostics):
            return None, report
        return CodeArtifact(script=text, tests=state["code"].tests if state.get("code") is not None else ""), report
    return _parse_configs(text)


def _parse_configs(text: str) -> tuple[ConfigArtifact | None, ValidationReport]:
    """Configs are edited as one YAML mapping: file path -> protocol config."""
    report = ValidationReport(source="configs")
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or not data:
            raise ValueError("expected a mapping of file path -> protocol config")
        configs = {str(path): ProtocolConfig.model_validate(body) for path, body in data.items()}
    except (yaml.YAMLError, ValueError, ValidationError) as exc:
        return None, llm_error_report("configs", f"not a set of protocol configs: {str(exc).splitlines()[0]}")
    files = []
    for path, config in configs.items():
        report.diagnostics += check_protocol(path, config)
        module = path.rsplit("/", 1)[-1].split("_protocol")[0]
        files.append(ConfigFile(path=path, module=module, content=dump_yaml(config.model_dump(mode="json"))))
    return ConfigArtifact(files=files), report


def adopt(
    state: State,
    agent: Agent,
    artifact: Any,
    report: ValidationReport,
    origin: Literal["chat", "edit"],
    lab: Lab,
) -> dict[str, Any]:
    """Store a new artifact version with its report and mark the later artifacts stale.

    A workflow also gets the z3 flow check a generated one gets: an edit that drops a transfer is flagged, and the
    stored flow (setup, the picture) belongs to this version, not to the one before it. An edit's report is also
    the ``edit`` report.
    """
    key = ARTIFACT_KEYS[agent]
    update: dict[str, Any] = {key: artifact}
    if agent == "workflow":
        flow = workflow_flow(artifact.workflow, lab)
        report = report.model_copy(update={"diagnostics": [*report.diagnostics, *flow.diagnostics]})
        update["flow"] = flow
    number = sum(1 for v in state.get("versions", []) if v.agent == agent) + 1
    new_state: State = {**state, key: artifact}  # type: ignore[misc]
    content = artifact_text(new_state, agent)
    version = Version(agent=agent, number=number, origin=origin, content=content, ok=report.ok)
    reports = {_report_key(agent): report} | ({"edit": report} if origin == "edit" else {})
    return update | {"reports": reports, "versions": [version], "stale": stale_after(state, agent)}


def _report_key(agent: Agent) -> str:
    return "plan" if agent == "framework" else agent


def refine_artifact(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Answer the user in the agent's context; a complete new artifact in the answer becomes a checked version."""
    agent = state.get("agent") or "workflow"  # prepare_run refuses refine/edit without an agent
    model_agent: Agent = "validator" if agent == "validator" else agent
    if is_offline(runtime, model_agent):
        # The offline planner is deterministic: there is nobody to talk to. Say so instead of failing on a model.
        return {"reply": OFFLINE_CHAT_REPLY.format(agent=agent)}
    lab, cards = lab_and_cards(state, runtime)
    role, name, fence = ROLES[agent]
    system = REFINE_SYSTEM.format(
        agent=agent, role=role, artifact_name=name, fence=fence, data_rule=DATA_RULE, lab_cards=cards,
        artifact=artifact_text(state, agent) or "(none yet)",
    )  # fmt: skip
    history: list[BaseMessage] = [
        HumanMessage(t.content) if t.role == "user" else AIMessage(t.content)
        for t in state.get("contexts", {}).get(agent, [])[-8:]  # the recent turns; the artifact itself is above
    ]
    user = REFINE_USER.format(message=state.get("message", ""))
    messages = [SystemMessage(system), *history, HumanMessage(user)]
    with retry_after_respected():
        answer = chat_model(runtime, model_agent).invoke(messages)
    reply = answer.text if isinstance(answer, AIMessage) else str(answer.content)
    update: dict[str, Any] = {
        "reply": reply,
        "usage": {"refine_artifact": usage_of(answer, messages)},
        "contexts": {
            agent: [Turn(role="user", content=state.get("message", "")), Turn(role="assistant", content=reply)]
        },
    }
    block = extract_block(reply, fence) if agent in EDITABLE else None
    if block is not None:
        artifact, report = parse_artifact(agent, block, lab, state)
        if artifact is not None:
            update |= adopt(state, agent, artifact, report, "chat", lab)
    return update


def apply_edit(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the user's new artifact text; store it as a version, or refuse it and keep the current artifact."""
    agent = state.get("agent") or "workflow"  # prepare_run refuses refine/edit without an agent
    if agent not in EDITABLE:
        report = llm_error_report(agent, f"the {agent} agent has no artifact to edit")
        return {"reports": {"edit": report}}
    lab, _ = lab_and_cards(state, runtime)
    artifact, report = parse_artifact(agent, state.get("message", ""), lab, state)
    if artifact is None:
        return {"reports": {"edit": report}}
    return adopt(state, agent, artifact, report, "edit", lab)
