"""The AgentCoder test executor: deterministic code that runs the script and its tests against the simulated lab.

Static checks first (``code_check``); then, in the sandbox, the script itself against the simulated WEI lab (its
trace must match the workflow's steps), then the test designer's pytest file. Every failure becomes a diagnostic
whose message carries the evidence (trace problems, the tail of the output), which is the programmer's feedback.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from wei_gen.simlab import Trace, read_trace, simlab_path, trace_matches, write_config
from wei_gen.tools.code_check import check_script
from wei_gen.tools.sandbox import SandboxResult, run_python
from wei_gen.tools.validator import Diagnostic, Severity, ValidationReport
from wei_gen.wei_types import Workflow

SRC = str(Path(__file__).resolve().parents[2])
"""wei_gen's own source root, importable inside the sandbox (the simulated lab validates with it)."""
TESTS_FILE = "tests/test_experiment.py"


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _diag(code: str, message: str, severity: Severity = "error", hint: str | None = None) -> Diagnostic:
    return Diagnostic(code=code, severity=severity, message=message, hint=hint)


def _sandbox_problems(result: SandboxResult, what: str) -> list[Diagnostic]:
    found = [_diag("code-blocked", f"{what}: the sandbox refused {b}") for b in result.blocked]
    if result.timed_out:
        found.append(
            _diag("code-timeout", f"{what} did not finish in time", hint="no waiting loops; run the workflow once")
        )
    elif result.returncode != 0:
        found.append(
            _diag(
                "code-run-failed", f"{what} exited with {result.returncode}:\n{_tail(result.stderr or result.stdout)}"
            )
        )
    return found


def execute_code(
    script: str, tests: str, workflow: Workflow, workflow_yaml: str, lab_dir: Path, *, timeout: float = 60.0
) -> ValidationReport:
    """Check a script statically, run it against the simulated lab, then run its tests; all in the sandbox."""
    report = check_script(script, workflow)
    report.diagnostics = [d for d in report.diagnostics if d.code != "code-not-run"]
    if not report.ok:
        return report  # a script that fails the static checks is not run
    with tempfile.TemporaryDirectory(prefix="wei-gen-simlab-") as tmp:
        # Protocol files the workflow uploads are written by the later config step: their absence is not the script's.
        config = write_config(Path(tmp), str(lab_dir), missing_files_ok=True)
        files = {"experiment.py": script, "workflow.yaml": workflow_yaml}
        env = {"WEI_GEN_SIMLAB": str(config)}
        paths = [simlab_path(), SRC]
        run = run_python(files, ["experiment.py"], timeout=timeout, pythonpath=paths, env=env, collect=["trace.json"])
        report.diagnostics += _sandbox_problems(run, "the script")
        trace_text = run.files.get("trace.json")
        if trace_text is None:
            report.diagnostics.append(_diag("code-trace", "the script never started a run in the simulated lab"))
        else:
            problems = trace_matches(read_trace_text(trace_text, Path(tmp)), workflow)
            report.diagnostics += [_diag("code-trace", p) for p in problems]
        if tests.strip():
            test_run = run_python(
                {**files, TESTS_FILE: tests, "tests/__init__.py": ""},
                ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                timeout=timeout,
                pythonpath=paths,
                env=env,
            )
            if not test_run.ok:
                report.diagnostics += [
                    d for d in _sandbox_problems(test_run, "the tests") if d.code != "code-run-failed"
                ]
                if not test_run.timed_out:
                    summary = _tail(test_run.stdout or test_run.stderr, 40)
                    report.diagnostics.append(_diag("code-tests-failed", f"the tests failed:\n{summary}"))
        else:
            report.diagnostics.append(_diag("code-no-tests", "no tests were written for the script", "warning"))
    return report


def read_trace_text(text: str, tmp: Path) -> Trace:
    """Parse a collected trace (written to disk for ``read_trace``, which takes a path)."""
    path = tmp / "collected-trace.json"
    path.write_text(text if text.strip() else json.dumps({"runs": []}), encoding="utf-8")
    return read_trace(path)
