"""Instrument configs, first version: one protocol config per workflow step that takes a file.

Every step with a ``files:`` entry gets its own config (the predecessor kept only the last one). The check is
structural (labware, pipettes, commands, positive volumes); labware capacities, wells and pipette ranges are issue 7,
and the report says so.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from wei_gen.context import Context
from wei_gen.models import call_structured
from wei_gen.nodes.common import chat_model, experiment_text, feedback_text, turns
from wei_gen.prompts import CONFIG_RETRY_USER, CONFIG_SYSTEM, CONFIG_USER, DATA_RULE
from wei_gen.state import ConfigArtifact, ConfigFile, State, Usage, Version, add_usage, stale_after
from wei_gen.tools.validator import Diagnostic, ValidationReport
from wei_gen.wei_types import Workflow
from wei_gen.yamlio import dump_yaml


class Equipment(BaseModel):
    """Labware (with a deck slot) or a pipette (with a mount)."""

    name: str = Field(description="Opentrons load name, e.g. opentrons_96_tiprack_300ul or p300_single_gen2")
    location: str = Field(default="", description="deck slot for labware, e.g. '1'")
    mount: str = Field(default="", description="'left' or 'right' for pipettes")


class Command(BaseModel):
    """One liquid-handling command."""

    name: str
    source: str = Field(description="slot:well, e.g. 2:A1")
    destination: str = Field(description="slot:well, e.g. 1:A1")
    volume: float = Field(description="µL per transfer")
    mix_cycles: int = 0
    mix_volume: float = 0
    drop_tip: bool = True


class ProtocolMetadata(BaseModel):
    """Protocol metadata."""

    protocolName: str  # noqa: N815 - the OT-2 driver's field name
    author: str = "wei-gen"
    description: str = ""
    apiLevel: str = "2.12"  # noqa: N815 - the OT-2 driver's field name


class ProtocolConfig(BaseModel):
    """An AD-SDL OT-2 driver protocol config."""

    equipment: list[Equipment]
    commands: list[Command]
    metadata: ProtocolMetadata


def file_steps(workflow: Workflow) -> list[tuple[str, str, str, str, str]]:
    """(step name, module, action, file parameter, path) for every file a workflow step takes."""
    return [(s.name, s.module, s.action, key, path) for s in workflow.flowdef for key, path in s.files.items()]


def check_protocol(path: str, config: ProtocolConfig) -> list[Diagnostic]:
    """Structural checks of one protocol config."""
    found: list[Diagnostic] = []
    if not any(e.mount for e in config.equipment):
        found.append(Diagnostic(code="config-no-pipette", severity="error", message=f"{path}: no pipette (mount)"))
    if not any(e.location for e in config.equipment):
        found.append(Diagnostic(code="config-no-labware", severity="error", message=f"{path}: no labware on the deck"))
    if not config.commands:
        found.append(Diagnostic(code="config-no-commands", severity="error", message=f"{path}: no commands"))
    for i, command in enumerate(config.commands):
        if command.volume <= 0:
            found.append(
                Diagnostic(
                    code="config-volume",
                    severity="error",
                    message=f"{path}: command {i + 1} '{command.name}' has volume {command.volume} µL",
                )  # fmt: skip
            )
    return found


def write_configs(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write one protocol config per file a workflow step takes; record what could not be written."""
    workflow = state["workflow"].workflow
    model = chat_model(runtime, "config")
    files: list[ConfigFile] = []
    diagnostics: list[Diagnostic] = []
    usage: dict[str, Usage] = {}
    context_turns = []
    for step_name, module, action, file_name, path in file_steps(workflow):
        user = CONFIG_USER.format(
            step_name=step_name, module=module, action=action, file_name=file_name, path=path,
            experiment=experiment_text(state),
        )  # fmt: skip
        messages: list[BaseMessage] = [SystemMessage(CONFIG_SYSTEM.format(data_rule=DATA_RULE)), HumanMessage(user)]
        if state.get("config_feedback"):
            messages.append(HumanMessage(CONFIG_RETRY_USER.format(feedback=state["config_feedback"])))
        out = call_structured(model, ProtocolConfig, messages)
        usage = add_usage(usage, {"write_configs": out.usage})
        if out.value is None:
            diagnostics.append(Diagnostic(code="llm-output-invalid", severity="error", message=f"{path}: {out.error}"))
            context_turns += turns(user, out.error)
            continue
        content = dump_yaml(out.value.model_dump(mode="json"))
        files.append(ConfigFile(path=path, module=module, content=content))
        diagnostics += check_protocol(path, out.value)
        context_turns += turns(user, content)
    report = ValidationReport(source="configs", diagnostics=diagnostics)
    return {
        "config": ConfigArtifact(files=files, setup=state["flow"].setup_text() if state.get("flow") else ""),
        "config_attempts": state.get("config_attempts", 0) + 1,
        "usage": usage,
        "reports": {"config": report},
        "contexts": {"config": context_turns},
    }


def check_configs(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Record the config report's verdict, the feedback and a version."""
    report = state.get("reports", {}).get("config") or ValidationReport(source="configs")
    if not any(d.code == "config-not-checked" for d in report.diagnostics):
        report = report.model_copy(deep=True)
        report.diagnostics.append(
            Diagnostic(
                code="config-not-checked",
                severity="info",
                message="labware, wells, volumes against capacity and pipette ranges are not checked yet",
            )  # fmt: skip
        )
    config = state.get("config", ConfigArtifact())
    number = sum(1 for v in state.get("versions", []) if v.agent == "config") + 1
    content = "\n".join(f"# {f.path}\n{f.content}" for f in config.files)
    version = Version(agent="config", number=number, origin="generated", content=content, ok=report.ok)
    return {
        "reports": {"config": report},
        "config_feedback": "" if report.ok else feedback_text(report),
        "versions": [version],
        "stale": stale_after(state, "config"),
    }
