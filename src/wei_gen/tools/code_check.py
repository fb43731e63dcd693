"""Static checks of a generated experiment script, before anything runs it.

The script must parse, import only allowed modules, call nothing that escapes a sandbox (processes, sockets,
``eval``), run ``workflow.yaml`` and pass only parameters the workflow declares. Running it against a simulated lab
in a sandbox is issue 6; until then the report says plainly that the script was not run.
"""

from __future__ import annotations

import ast

from wei_gen.tools.validator import Diagnostic, Severity, ValidationReport
from wei_gen.wei_types import Workflow

ALLOWED_IMPORTS = {
    "wei", "pathlib", "json", "time", "logging", "argparse", "typing", "datetime", "sys", "os", "__future__",
    "dataclasses", "math", "csv",
}  # fmt: skip
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "system", "popen", "spawn", "fork"}
FORBIDDEN_MODULES = {"subprocess", "socket", "shutil", "requests", "httpx", "urllib", "ctypes", "multiprocessing"}
WORKFLOW_FILE = "workflow.yaml"


def _diag(code: str, severity: Severity, message: str, line: int | None = None, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code=code, severity=severity, message=message, line=line, hint=hint)


def check_script(script: str, workflow: Workflow | None) -> ValidationReport:
    """Check a script statically against the workflow it should run."""
    report = ValidationReport(source="experiment.py")
    try:
        tree = ast.parse(script)
    except SyntaxError as exc:
        report.diagnostics.append(_diag("code-syntax", "error", f"the script does not parse: {exc.msg}", exc.lineno))
        return report
    report.diagnostics += _check_imports(tree) + _check_calls(tree)
    if WORKFLOW_FILE not in script:
        report.diagnostics.append(
            _diag("code-workflow-ref", "error", f"the script never names {WORKFLOW_FILE}", hint="run that file")
        )
    if workflow is not None:
        report.diagnostics += _check_parameters(tree, workflow)
    report.diagnostics.append(
        _diag(
            "code-not-run",
            "info",
            "checked statically only; running it in a sandbox against a simulated lab is not built yet",
        )  # fmt: skip
    )
    return report


def _check_imports(tree: ast.AST) -> list[Diagnostic]:
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in ALLOWED_IMPORTS:
                line = getattr(node, "lineno", None)
                hint = f"allowed: {', '.join(sorted(ALLOWED_IMPORTS))}"
                found.append(_diag("code-import", "error", f"imports '{name}', which is not allowed", line, hint))
    return found


def _check_calls(tree: ast.AST) -> list[Diagnostic]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in FORBIDDEN_CALLS:
                found.append(_diag("code-forbidden", "error", f"calls {name}(), which is not allowed", node.lineno))
    return found


def _check_parameters(tree: ast.AST, workflow: Workflow) -> list[Diagnostic]:
    """Keys of dict literals passed as ``parameters=`` must be declared workflow parameters."""
    declared = {p.name for p in workflow.parameters}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for kw in node.keywords:
            if kw.arg == "parameters" and isinstance(kw.value, ast.Dict):
                for key in kw.value.keys:
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value not in declared:
                        message = f"passes parameter '{key.value}', which the workflow does not declare"
                        hint = f"declared: {', '.join(sorted(declared)) or 'none'}"
                        found.append(_diag("code-unknown-parameter", "error", message, node.lineno, hint))
    return found
