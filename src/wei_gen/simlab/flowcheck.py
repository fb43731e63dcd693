"""The labware-flow verdict of a submitted run, shared by the script's process and the parent.

wei-gen's flow check needs z3, which loads its native library through ``ctypes``; the sandbox refuses ``ctypes``, so
inside it the check cannot run. The parent then computes the verdict of each submitted step sequence from the trace
and runs the script again with the verdicts in the config, keyed by :func:`flow_key`: a deterministic script submits
the same steps, and the simulated run fails where the real lab would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from wei_gen.simlab.simtrace import DiagnosticRecord, FlowVerdict

if TYPE_CHECKING:
    from wei_gen.lab import Lab


def flow_key(steps: Sequence[Mapping[str, Any]]) -> str:
    """A key for a submitted step sequence: modules, actions and args (names do not change the flow)."""
    text = json.dumps(
        [[s.get("module"), s.get("action"), s.get("args") or {}] for s in steps], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def flow_verdict(steps: Sequence[Mapping[str, Any]], lab: Lab, semantics: Any = None) -> FlowVerdict:
    """Check the labware flow of submitted steps (name, module, action, args); raises ImportError without z3.

    An unsat verdict names the first step that cannot run (``fail_at``) and why.
    """
    from wei_gen.tools.flow import FlowStep, check_flow
    from wei_gen.tools.semantics import LabSemantics

    flow_steps = [
        FlowStep(i, str(s.get("name")), str(s.get("module")), str(s.get("action")), dict(s.get("args") or {}))
        for i, s in enumerate(steps)
    ]
    report = check_flow(flow_steps, lab, semantics if semantics is not None else LabSemantics(lab))
    errors = [d for d in report.diagnostics if d.severity == "error"]
    diagnostics = [DiagnosticRecord.of("flow", d) for d in errors]
    if report.verdict != "unsat" or not errors:
        return FlowVerdict(verdict="sat", diagnostics=diagnostics)
    index = min((d.step_index for d in errors if d.step_index is not None), default=0)
    reasons = [d.message for d in errors if d.step_index in (index, None)] or [errors[0].message]
    return FlowVerdict(verdict="unsat", fail_at=index, reason="; ".join(reasons), diagnostics=diagnostics)


def flow_problem_text(diag: DiagnosticRecord) -> str:
    """One flow error as a problem line."""
    where = f"step {diag.step_index + 1} '{diag.step_name}': " if diag.step_index is not None else ""
    return f"labware flow: {where}{diag.message}" + (f" ({diag.hint})" if diag.hint else "")
