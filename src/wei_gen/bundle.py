"""The run bundle: everything a scientist needs to run the experiment, as files in one folder (or one zip).

::

    workflow.yaml            the WEI workflow
    experiment.py            the script that runs it (cd into the bundle, then ``python experiment.py``)
    tests/test_experiment.py the test designer's tests of the script
    <config paths>           instrument configs, at the paths the workflow's ``files:`` name (usually configs/...)
    setup.md                 the initial lab setup: labware positions, OT-2 decks, liquids to load
    report.md                the check results of every artifact, the cross-artifact checks, what is missing

Works on a partial state (e.g. after the workflow phase only): it writes what exists and ``report.md`` says what is
missing. Nothing is ever written outside the bundle folder: config paths that would escape it are refused and
reported.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wei_gen.tools.consistency import check_bundle, safe_relative, setup_text
from wei_gen.tools.validator import Diagnostic, ValidationReport

REPORT_ORDER = ("plan", "workflow", "code", "config")
"""Artifact reports in pipeline order (other keys follow, sorted)."""
_MARK = {"error": "✗ error", "warning": "! warning", "info": "i info"}


class BundleError(ValueError):
    """The bundle cannot be written (the target is not a usable folder)."""


def bundle_files(state: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The bundle's files (relative POSIX path -> text) and the problems met while collecting them."""
    files: dict[str, str] = {}
    problems: list[str] = []
    if state.get("workflow") is not None:
        files["workflow.yaml"] = state["workflow"].yaml
    code = state.get("code")
    if code is not None:
        files["experiment.py"] = code.script
    tests = (code.tests if code is not None else "") or state.get("code_tests", "")
    if tests:
        files["tests/test_experiment.py"] = tests
    config = state.get("config")
    for config_file in config.files if config is not None else []:
        rel = safe_relative(config_file.path)
        reserved = rel is not None and str(rel) in files
        if rel is None or reserved or str(rel) in ("setup.md", "report.md"):
            problems.append(f"config '{config_file.path}' for {config_file.module} was not written: unsafe path")
            continue
        files[str(rel)] = config_file.content
    setup = setup_text(state)
    files["setup.md"] = render_setup(setup)
    files["report.md"] = render_report(state, problems)
    return files, problems


def render_setup(setup: str) -> str:
    """``setup.md``: what must be in place before the run."""
    body = setup.strip() or "_Unknown: the flow check and the config phase have not run._"
    return f"# Initial lab setup\n\nPut these in place before starting `python experiment.py`.\n\n{body}\n"


def _report_section(name: str, report: ValidationReport) -> list[str]:
    status = "OK" if report.ok else "FAILED"
    lines = [f"## {name}: {status} ({len(report.errors)} error(s), {len(report.warnings)} warning(s))", ""]
    for d in report.diagnostics:
        lines.append(f"- {_MARK[d.severity]} `{d.code}`{_where(d)}: {d.message}" + (f" — {d.hint}" if d.hint else ""))
    if not report.diagnostics:
        lines.append("- no findings")
    return [*lines, ""]


def _where(d: Diagnostic) -> str:
    if d.step_index is not None:
        return f" (step {d.step_index + 1}" + (f" '{d.step_name}')" if d.step_name else ")")
    return ""


def render_report(state: Mapping[str, Any], problems: list[str] | None = None) -> str:
    """``report.md``: every artifact's check results, the cross-artifact checks, and what is missing."""
    reports: Mapping[str, ValidationReport] = state.get("reports") or {}
    status = state.get("status")
    lines = ["# wei-gen check report", ""]
    if status is not None:
        lines += [
            f"Session status: **{status.state}**" + (f" ({status.step}: {status.reason})" if status.reason else ""),
            "",
        ]
    missing = [label for key, label in _ARTIFACTS if state.get(key) is None]
    if missing:
        lines += ["Missing from this bundle: " + ", ".join(missing) + ".", ""]
    names = [k for k in REPORT_ORDER if k in reports] + sorted(set(reports) - set(REPORT_ORDER))
    for name in names:
        lines += _report_section(name, reports[name])
    for name in REPORT_ORDER:
        if name not in reports:
            lines += [f"## {name}: not checked (no {name} yet)", ""]
    lines += _report_section("bundle (cross-artifact)", check_bundle(state))
    if problems:
        lines += ["## files not written", "", *(f"- {p}" for p in problems), ""]
    return "\n".join(lines)


_ARTIFACTS = (("workflow", "workflow.yaml"), ("code", "experiment.py"), ("config", "instrument configs"))


def write_bundle(state: Mapping[str, Any], out: Path) -> list[Path]:
    """Write the bundle into ``out`` (created if needed) and return the written paths.

    Raises:
        BundleError: ``out`` exists and is not a folder.
    """
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    files, problems = bundle_files(state)
    # A symlink inside `out` could still lead elsewhere: check each resolved target, not its name.
    escaping = [rel for rel in files if not (root / rel).resolve().is_relative_to(root)]
    if escaping:
        problems += [f"'{rel}' was not written: it resolves outside the bundle folder" for rel in escaping]
        files = {rel: text for rel, text in files.items() if rel not in escaping}
        if "report.md" not in escaping:
            files["report.md"] = render_report(state, problems)
    written: list[Path] = []
    for rel, text in files.items():
        target = (root / rel).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def bundle_zip(state: Mapping[str, Any]) -> bytes:
    """The bundle as a zip archive (the same files as :func:`write_bundle`)."""
    files, _ = bundle_files(state)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, text in sorted(files.items()):
            archive.writestr(rel, text)
    return buffer.getvalue()
