"""Instrument configs: one OT-2 protocol config per file the workflow's steps upload, checked for real.

``write_configs`` writes a config for every distinct ``files:`` path of every step (several liquid handlers get one
each), with the config model or, when that model is ``offline``, deterministically from the user's values
(:func:`wei_gen.tools.protocol.build_protocol`). ``check_configs`` checks each config against the labware and
pipette facts (slots, wells, capacities, pipette ranges, tips, volumes traceable to the user's values), runs the
cross-artifact checks (workflow files ↔ configs, code ↔ workflow, setup present) and composes the initial lab setup:
the flow check's plate positions plus every OT-2's deck. Failures go back to ``write_configs`` on the retry edge.
"""

from __future__ import annotations

from typing import Any

import yaml
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from wei_gen.context import Context
from wei_gen.lab import Lab, LabModule
from wei_gen.models import call_structured
from wei_gen.nodes.common import chat_model, experiment_text, feedback_text, lab_and_cards, turns
from wei_gen.prompts import CONFIG_RETRY_USER, CONFIG_SYSTEM, CONFIG_USER, DATA_RULE
from wei_gen.state import ConfigArtifact, ConfigFile, State, Usage, Version, add_usage, stale_after
from wei_gen.tools import consistency
from wei_gen.tools.protocol import (
    Command,
    Equipment,
    ProtocolConfig,
    ProtocolMetadata,
    analyze_protocol,
    build_protocol,
    deck_setup,
    deck_slot_from_lab,
    facts_text,
    parse_values,
    protocol_yaml,
    to_driver_dict,
)
from wei_gen.tools.validator import Diagnostic, ValidationReport
from wei_gen.wei_types import Workflow

__all__ = ["Command", "Equipment", "ProtocolConfig", "ProtocolMetadata", "check_configs", "write_configs"]

OFFLINE = "offline"
"""The model string that selects the deterministic builder instead of a model call."""
WRITE_CODES = {"llm-output-invalid", "config-default-used", "config-unsupported", "config-no-commands"}
"""Codes ``write_configs`` records (kept by ``check_configs``, which adds its own checks)."""
OT2_MARKERS = ("ot2", "ot-2", "opentrons", "ot_2", "otflex", "ot-flex")


def file_steps(workflow: Workflow) -> list[tuple[str, str, str, str, str]]:
    """(step name, module, action, file parameter, path) for every file a workflow step takes."""
    return [(s.name, s.module, s.action, key, str(path)) for s in workflow.flowdef for key, path in s.files.items()]


def config_targets(workflow: Workflow) -> list[tuple[str, str, str, str, str]]:
    """The files to write: each distinct bundle path once (first step naming it), run-time paths left out."""
    seen: set[str] = set()
    targets = []
    for step_name, module, action, key, path in file_steps(workflow):
        rel = consistency.safe_relative(path)
        if consistency.is_runtime_path(path) or rel is None or str(rel) in seen:
            continue
        seen.add(str(rel))
        targets.append((step_name, module, action, key, str(rel)))
    return targets


def is_ot2(module: LabModule | None, name: str) -> bool:
    """Whether a module is an Opentrons liquid handler (by workcell name, model or about)."""
    about = module.about if module is not None else None
    model = module.definition.model if module is not None else ""
    text = " ".join(str(x or "") for x in (name, model, about.name if about else "", about.model if about else ""))
    return any(marker in text.lower() for marker in OT2_MARKERS)


def _unsupported(path: str, module: str, key: str) -> Diagnostic:
    return Diagnostic(
        code="config-unsupported",
        severity="error",
        message=f"{path}: module '{module}' is not an OT-2; wei-gen writes only OT-2 protocol configs (file '{key}')",
        hint="write this file by hand, or use an OT-2 for the liquid handling",
    )


def write_configs(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write one protocol config per file the workflow's steps upload; record what could not be written."""
    workflow = state["workflow"].workflow
    lab, _ = lab_and_cards(state, runtime)
    offline = runtime.context.model_for("config") == OFFLINE
    targets = config_targets(workflow)
    ot2_targets = [t for t in targets if is_ot2(lab.modules.get(t[1]), t[1])]
    files: list[ConfigFile] = []
    diagnostics = [_unsupported(t[4], t[1], t[3]) for t in targets if t not in ot2_targets]
    usage: dict[str, Usage] = {}
    context_turns = []
    for target in ot2_targets:
        step_name, module, action, file_name, path = target
        if offline:
            config_file, notes = _offline(state, lab, target, multi=len(ot2_targets) > 1)
            files.append(config_file)
            diagnostics += notes
            continue
        slot = deck_slot_from_lab(module, sorted(lab.all_location_names()))
        user = CONFIG_USER.format(
            step_name=step_name, module=module, action=action, file_name=file_name, path=path,
            deck_hint=f"The workflow brings the plate to deck slot {slot}." if slot else "",
            experiment=experiment_text(state),
        )  # fmt: skip
        system = CONFIG_SYSTEM.format(data_rule=DATA_RULE, facts=facts_text())
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
        if state.get("config_feedback"):
            messages.append(HumanMessage(CONFIG_RETRY_USER.format(feedback=state["config_feedback"])))
        out = call_structured(chat_model(runtime, "config"), ProtocolConfig, messages)
        usage = add_usage(usage, {"write_configs": out.usage})
        if out.value is None:
            diagnostics.append(Diagnostic(code="llm-output-invalid", severity="error", message=f"{path}: {out.error}"))
            context_turns += turns(user, out.error)
            continue
        content = protocol_yaml(to_driver_dict(out.value))
        files.append(ConfigFile(path=path, module=module, content=content))
        context_turns += turns(user, content)
    report = ValidationReport(source="configs", diagnostics=diagnostics)
    update: dict[str, Any] = {
        "config": ConfigArtifact(files=files, setup=""),
        "config_attempts": state.get("config_attempts", 0) + 1,
        "reports": {"config": report},
    }
    if usage:
        update["usage"] = usage
    if context_turns:
        update["contexts"] = {"config": context_turns}
    return update


def _offline(
    state: State, lab: Lab, target: tuple[str, str, str, str, str], multi: bool
) -> tuple[ConfigFile, list[Diagnostic]]:
    """The deterministic config of one target and the diagnostics about its defaults."""
    step_name, module, _, _, path = target
    slot = deck_slot_from_lab(module, sorted(lab.all_location_names()))
    built = build_protocol(module, step_name, parse_values(state.get("values")), lab_slot=slot, multi=multi, path=path)
    return ConfigFile(path=path, module=module, content=protocol_yaml(built.data)), built.diagnostics


def check_config_files(config: ConfigArtifact, values_text: str | None) -> tuple[list[Diagnostic], list[str]]:
    """Check every config file against the facts and the user's values; also return each OT-2's deck setup."""
    values = parse_values(values_text)
    found: list[Diagnostic] = []
    decks: list[str] = []
    for config_file in config.files:
        try:
            data = yaml.safe_load(config_file.content)
        except yaml.YAMLError as exc:
            found.append(Diagnostic(code="yaml-parse", severity="error", message=f"{config_file.path}: {exc}"))
            continue
        analysis = analyze_protocol(data, config_file.path, values)
        for d in analysis.report.diagnostics:
            found.append(d.model_copy(update={"message": f"{config_file.path}: {d.message}"}))
        decks.append(deck_setup(config_file.module, config_file.path, analysis))
    return found, decks


def compose_setup(state: State, decks: list[str]) -> str:
    """The initial lab setup: where the plates must be (flow check), then each OT-2's deck and liquids."""
    flow = state.get("flow")
    parts = ["## Plates and labware in the workcell", "", flow.setup_text()] if flow is not None else []
    if decks:
        parts += ["", "## OT-2 decks", "", "\n\n".join(decks)]
    return "\n".join(parts).strip()


def check_configs(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Check the configs and how they fit the workflow and code; record the verdict, the feedback and a version."""
    written = state.get("reports", {}).get("config") or ValidationReport(source="configs")
    config = state.get("config", ConfigArtifact())
    found, decks = check_config_files(config, state.get("values"))
    config = config.model_copy(update={"setup": compose_setup(state, decks)})
    cross = consistency.check_bundle({**state, "config": config})
    diagnostics = [d for d in written.diagnostics if d.code in WRITE_CODES] + found + cross.diagnostics
    report = ValidationReport(source="configs", diagnostics=diagnostics)
    number = sum(1 for v in state.get("versions", []) if v.agent == "config") + 1
    content = "\n".join(f"# {f.path}\n{f.content}" for f in config.files)
    version = Version(agent="config", number=number, origin="generated", content=content, ok=report.ok)
    return {
        "config": config,
        "reports": {"config": report},
        "config_feedback": "" if report.ok else feedback_text(report),
        "versions": [version],
        "stale": stale_after(state, "config"),
    }


def check_protocol(path: str, config: ProtocolConfig) -> list[Diagnostic]:
    """Check one model-shaped config (used for edited configs, where the user's values are not in reach)."""
    analysis = analyze_protocol(to_driver_dict(config), path)
    return [d.model_copy(update={"message": f"{path}: {d.message}"}) for d in analysis.report.diagnostics]
