"""Cross-artifact checks of a run bundle: workflow files ↔ generated configs, code ↔ workflow, setup present.

Each artifact has its own checks (validator, code executor, protocol validator); these rules look at how they fit
together, the way a scientist would notice only when the run starts: the workflow uploads a protocol file nobody
wrote, the script runs another YAML file or passes a parameter the workflow does not declare, or nobody said which
labware must be where before the run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from wei_gen.tools.validator import Diagnostic, Severity, ValidationReport
from wei_gen.wei_types import Workflow

WORKFLOW_FILE = "workflow.yaml"
_PARAM_REF = re.compile(r"(?<!\$)\$(?:\{(\w+)\}|(\w+))")
_PAYLOAD = re.compile(r"^payload\.(\w+)")


def safe_relative(path: str) -> PurePosixPath | None:
    """A file path usable inside the bundle (relative, no ``..``), normalised; ``None`` when it would escape."""
    text = path.strip().replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        return None
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return PurePosixPath(*parts)


def is_runtime_path(value: str) -> bool:
    """A files value WEI fills in at run time (``payload.x`` or a ``$parameter``): nothing to bundle."""
    return bool(_PAYLOAD.match(value.strip()) or _PARAM_REF.search(value))


def referenced_files(workflow: Workflow) -> list[tuple[int, str, str, str, str]]:
    """(step index, step name, module, file parameter, path) for every ``files`` entry of the workflow."""
    return [
        (i, step.name, step.module, key, str(path))
        for i, step in enumerate(workflow.flowdef)
        for key, path in step.files.items()
    ]


def _diag(code: str, severity: Severity, message: str, hint: str | None = None, **where: Any) -> Diagnostic:
    return Diagnostic(code=code, severity=severity, message=message, hint=hint, **where)


def check_files(workflow: Workflow, configs: Mapping[str, str]) -> list[Diagnostic]:
    """Every file a step uploads is generated (at the same path), and every generated config is used.

    Args:
        workflow: The workflow.
        configs: Generated config path -> module it was written for.
    """
    found: list[Diagnostic] = []
    generated = {str(safe_relative(p) or p): m for p, m in configs.items()}
    used: set[str] = set()
    for index, step_name, module, key, path in referenced_files(workflow):
        where: dict[str, Any] = {"step_index": index, "step_name": step_name, "field": f"flowdef[{index}].files.{key}"}
        if is_runtime_path(path):
            found.append(
                _diag("bundle-runtime-file", "info", f"'{path}' is supplied at run time; it is not in the bundle",
                      **where)
            )  # fmt: skip
            continue
        rel = safe_relative(path)
        if rel is None:
            found.append(
                _diag(
                    "bundle-unsafe-path",
                    "error",
                    f"'{path}' points outside the bundle (absolute or '..')",
                    "use a path relative to the bundle, e.g. configs/<module>_protocol.yaml",
                    **where,
                )  # fmt: skip
            )
            continue
        used.add(str(rel))
        if str(rel) not in generated:
            found.append(
                _diag(
                    "bundle-file-missing",
                    "error",
                    f"step uploads '{path}' but no such config was generated",
                    f"generated: {', '.join(sorted(generated)) or 'none'}",
                    **where,
                )  # fmt: skip
            )
        elif generated[str(rel)] != module:
            found.append(
                _diag(
                    "bundle-config-module",
                    "warning",
                    f"'{path}' was written for module '{generated[str(rel)]}' but step runs on '{module}'",
                    **where,
                )  # fmt: skip
            )
    for path in sorted(set(generated) - used):
        found.append(_diag("bundle-config-unused", "warning", f"config '{path}' is not referenced by any step"))
    return found


def _module_dicts(tree: ast.Module) -> dict[str, ast.Dict]:
    """Module-level ``NAME = {...}`` literals (the usual way a script holds its parameters)."""
    out: dict[str, ast.Dict] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Dict) and isinstance(node.target, ast.Name):
            out[node.target.id] = node.value
    return out


def _keys_of(value: ast.expr, named: Mapping[str, ast.Dict]) -> set[str] | None:
    """String keys of a dict literal (directly or through a module-level name); ``None`` when not knowable."""
    if isinstance(value, ast.Name) and value.id in named:
        value = named[value.id]
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
        return {kw.arg for kw in value.keywords if kw.arg is not None}
    if not isinstance(value, ast.Dict) or any(k is None for k in value.keys):
        return None
    keys = {k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return keys if len(keys) == len(value.keys) else None


def script_inputs(script: str) -> tuple[dict[str, set[str] | None], bool]:
    """What the script passes to runs: ``{"parameters": keys, "payload": keys}`` (``None`` = not a literal).

    Returns:
        The keyword -> keys map (a keyword absent when never passed) and whether the script parsed.
    """
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return {}, False
    named = _module_dicts(tree)
    found: dict[str, set[str] | None] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg in ("parameters", "payload"):
                keys = _keys_of(kw.value, named)
                old = found.get(kw.arg, set())
                found[kw.arg] = None if keys is None or old is None else old | keys
    return found, True


def workflow_payload_keys(workflow: Workflow) -> set[str]:
    """``payload.x`` keys the workflow's args and files use."""
    keys: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str) and (m := _PAYLOAD.match(value.strip())):
            keys.add(m.group(1))
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    for step in workflow.flowdef:
        visit(step.args)
        visit(step.files)
    return keys


def check_code(script: str, workflow: Workflow) -> list[Diagnostic]:
    """The script runs ``workflow.yaml`` and passes exactly what the workflow needs (parameters and payload)."""
    found: list[Diagnostic] = []
    if WORKFLOW_FILE not in script:
        found.append(
            _diag("bundle-code-workflow", "error", f"experiment.py never names {WORKFLOW_FILE}",
                  f"the bundle's workflow is {WORKFLOW_FILE}; run that file")
        )  # fmt: skip
    inputs, parsed = script_inputs(script)
    if not parsed:
        found.append(_diag("bundle-code-parameter", "error", "experiment.py does not parse; its inputs are unknown"))
        return found
    declared = {p.name: p.default for p in workflow.parameters}
    passed = inputs.get("parameters", set())
    if passed is None:
        found.append(
            _diag("bundle-code-parameter", "info", "experiment.py builds its parameters at run time; not compared")
        )
    else:
        for name in sorted(passed - set(declared)):
            found.append(
                _diag("bundle-code-parameter", "error", f"experiment.py passes parameter '{name}', which "
                      "workflow.yaml does not declare", f"declared: {', '.join(sorted(declared)) or 'none'}")
            )  # fmt: skip
        # WEI 0.7 treats falsy defaults as no default: such parameters must come from the script.
        for name in sorted(n for n, d in declared.items() if d in (None, "", 0, False) and n not in passed):
            found.append(
                _diag("bundle-code-parameter", "error", f"workflow.yaml parameter '{name}' has no default and "
                      "experiment.py does not pass it", f"pass parameters={{'{name}': ...}} to start_run")
            )  # fmt: skip
    needed = workflow_payload_keys(workflow)
    payload = inputs.get("payload", set())
    if needed and payload is not None:
        for key in sorted(needed - payload):
            found.append(
                _diag("bundle-code-payload", "error", f"workflow.yaml uses payload.{key} but experiment.py does not "
                      "pass it in payload=", "pass payload={...} to start_run, or use parameters instead")
            )  # fmt: skip
    return found


def check_bundle(state: Mapping[str, Any]) -> ValidationReport:
    """Cross-artifact checks on whatever the state holds; missing artifacts are reported, not fatal."""
    report = ValidationReport(source="bundle")
    add = report.diagnostics.append
    workflow = state.get("workflow")
    code = state.get("code")
    config = state.get("config")
    if workflow is None:
        add(_diag("bundle-missing", "warning", "no workflow yet: workflow.yaml is not in the bundle"))
        return report
    wf: Workflow = workflow.workflow
    configs = {f.path: f.module for f in config.files} if config is not None else {}
    if config is None and referenced_files(wf):
        add(_diag("bundle-missing", "warning", "no instrument configs yet (the config phase has not run)"))
    else:
        report.diagnostics += check_files(wf, configs)
    if code is None:
        add(_diag("bundle-missing", "warning", "no experiment code yet: experiment.py is not in the bundle"))
    else:
        report.diagnostics += check_code(code.script, wf)
        if not (code.tests or state.get("code_tests")):
            add(_diag("bundle-missing", "warning", "no tests for experiment.py: tests/ is empty"))
    setup = setup_text(state)
    if not setup.strip():
        add(
            _diag("bundle-no-setup", "warning", "the required initial lab setup is unknown (no flow check result)",
                  "run the flow check: wei-gen check workflow.yaml")
        )  # fmt: skip
    return report


def setup_text(state: Mapping[str, Any]) -> str:
    """The initial lab setup: the config phase's (lab + instrument decks), else the flow check's."""
    config = state.get("config")
    if config is not None and config.setup.strip():
        return str(config.setup)
    flow = state.get("flow")
    return str(flow.setup_text()) if flow is not None else ""
