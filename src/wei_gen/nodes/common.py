"""Helpers shared by the nodes: the lab of a run, the experiment text, feedback from reports, model access."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime

from wei_gen.context import OFFLINE_MODEL, Context
from wei_gen.lab import Lab, lab_from_dir, render_capability_cards
from wei_gen.models import load_chat_model
from wei_gen.prompts import EXPERIMENT_USER
from wei_gen.state import Agent, ArgValue, State, Turn
from wei_gen.tools.validator import Diagnostic, ValidationReport


def lab_path(state: State, runtime: Runtime[Context]) -> Path:
    """The lab directory of this run: the input's, else the context's."""
    return Path(state.get("lab_dir") or runtime.context.lab_dir)


@lru_cache(maxsize=16)
def _load_lab(path: str, stamp: float) -> tuple[Lab, str]:
    """Load a lab and render its cards once per version of its workcell file (``stamp`` = mtime)."""
    lab = lab_from_dir(Path(path))
    return lab, render_capability_cards(lab)


def cached_lab(path: Path) -> tuple[Lab, str]:
    """The lab in a directory and its capability cards, loaded once per version of its workcell file."""
    workcell = path / "workcell.yaml"
    stamp = workcell.stat().st_mtime if workcell.is_file() else 0.0
    return _load_lab(str(path.resolve()), stamp)


def lab_and_cards(state: State, runtime: Runtime[Context]) -> tuple[Lab, str]:
    """The run's lab and its capability cards (cached)."""
    return cached_lab(lab_path(state, runtime))


def experiment_text(state: State) -> str:
    """The scientist's description and values, delimited as data."""
    return EXPERIMENT_USER.format(description=state.get("description", ""), values=state.get("values", "") or "(none)")


def is_offline(runtime: Runtime[Context], agent: Agent) -> bool:
    """Whether this agent is served by the offline planner (its model is ``offline``) instead of a chat model."""
    return runtime.context.model_for(agent) == OFFLINE_MODEL


def chat_model(runtime: Runtime[Context], agent: Agent) -> BaseChatModel:
    """The chat model configured for an agent."""
    return load_chat_model(runtime.context.model_for(agent), runtime.context)


def feedback_text(report: ValidationReport, limit: int = 15) -> str:
    """Errors (then warnings) of a report as a list a model can act on."""
    chosen = report.errors + report.warnings
    lines = [_feedback_line(d) for d in chosen[:limit]]
    if len(chosen) > limit:
        lines.append(f"- … and {len(chosen) - limit} more")
    return "\n".join(lines) or "- (no details)"


def _feedback_line(d: Diagnostic) -> str:
    where = f"step {d.step_index + 1} '{d.step_name or ''}': " if d.step_index is not None else ""
    hint = f" ({d.hint})" if d.hint else ""
    return f"- {d.severity} {where}{d.message}{hint}"


def turns(user: str, assistant: str) -> list[Turn]:
    """A user/assistant exchange for an agent's context."""
    return [Turn(role="user", content=user), Turn(role="assistant", content=assistant)]


def decode_value(text: str) -> Any:
    """A JSON-encoded arg value; plain text that is not JSON is kept as a string (models forget quotes)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def args_dict(args: list[ArgValue]) -> dict[str, Any]:
    """Model-written args as a mapping."""
    return {a.name: decode_value(a.value) for a in args}


def llm_error_report(source: str, error: str) -> ValidationReport:
    """A report for an answer that could not be read at all."""
    return ValidationReport(
        source=source,
        diagnostics=[
            Diagnostic(
                code="llm-output-invalid",
                severity="error",
                message=error,
                hint="answer with the requested structure only",
            )
        ],
    )
