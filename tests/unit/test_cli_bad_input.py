"""The CLI on bad input: every failure to run is exit 2 with one clear line on stderr and never a traceback.

Each test runs ``python -m wei_gen`` in a subprocess on small files written to ``tmp_path``; the last tests run the two
real broken-YAML workflows of the corpus (skipped when the corpus is absent).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import corpus
from tests.support.cli import run_cli

WORKCELL = """\
name: tiny_workcell
config: {}
modules:
  - name: reader
    model: Absorbance plate reader
    interface: wei_rest_node
    config:
      rest_node_address: "http://127.0.0.1:2000"
"""

READER_ABOUT: dict[str, Any] = {
    "name": "reader_node",
    "model": "Absorbance plate reader",
    "interface": "wei_rest_node",
    "actions": [
        {"name": "open_tray", "args": []},
        {
            "name": "read_plate",
            "args": [
                {"name": "wavelength", "type": "int", "required": True, "description": "nm"},
                {"name": "shake_seconds", "type": "float", "default": 5.0, "required": False},
            ],
        },
    ],
}

CLEAN_WORKFLOW = """\
name: Read a plate
metadata:
  author: tests
  info: open the tray, then read at 600 nm
flowdef:
  - name: Open the tray
    module: reader
    action: open_tray
  - name: Read the plate
    module: reader
    action: read_plate
    args:
      wavelength: 600
"""

UNKNOWN_MODULE_WORKFLOW = """\
name: Use a module the lab does not have
metadata:
  author: tests
flowdef:
  - name: Read the plate
    module: reader
    action: read_plate
    args:
      wavelength: 600
  - name: Spin it
    module: centrifuge
    action: spin
"""

# The YAML error is on line 6, column 3: the flow mapping opened on line 5 is never closed.
BROKEN_WORKCELL = """\
name: broken
config: {}
modules:
  - name: reader
    config: {rest_node_address: "http://127.0.0.1:2000"
  - name: arm
"""

# The JSON error is on line 4, column 5: a trailing comma before the closing bracket.
BROKEN_ABOUT = """\
{
  "name": "reader_node",
  "actions": [{"name": "open_tray"},
    ]
}
"""


# ---------------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------------


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def assert_cannot_run(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, no traceback, nothing on stdout, and one ``error:`` line on stderr that contains ``fragments``."""
    assert_no_traceback(result)
    assert result.returncode == 2, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    message = lines[0]
    assert message.startswith("error: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def make_lab(root: Path, *, workcell: str = WORKCELL, about: str | None = None) -> Path:
    """Write a lab directory (workcell.yaml + abouts/reader.json) under ``root`` and return it."""
    lab = root / "lab"
    (lab / "abouts").mkdir(parents=True)
    (lab / "workcell.yaml").write_text(workcell, encoding="utf-8")
    (lab / "abouts" / "reader.json").write_text(
        about if about is not None else json.dumps(READER_ABOUT, indent=2), encoding="utf-8"
    )
    return lab


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    return make_lab(tmp_path)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "read_plate.yaml"
    path.write_text(CLEAN_WORKFLOW, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Could not run: exit 2
# ---------------------------------------------------------------------------------------------------------------------


def test_missing_workflow_file(tmp_path: Path, lab: Path) -> None:
    missing = tmp_path / "no_such_workflow.yaml"
    assert_cannot_run(run_cli("validate", missing, "--lab", lab, cwd=tmp_path), str(missing), "file not found")


def test_missing_lab_dir(tmp_path: Path, workflow: Path) -> None:
    missing = tmp_path / "no_such_lab"
    result = run_cli("validate", workflow, "--lab", missing, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", str(missing), "lab directory not found")


def test_lab_dir_without_workcell(tmp_path: Path, workflow: Path) -> None:
    empty_lab = tmp_path / "empty_lab"
    (empty_lab / "abouts").mkdir(parents=True)
    result = run_cli("validate", workflow, "--lab", empty_lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", "no workcell.yaml")


def test_malformed_workcell_yaml_names_line_and_column(tmp_path: Path, workflow: Path) -> None:
    with pytest.raises(yaml.MarkedYAMLError) as exc:  # make sure the fixture says what the comment claims
        yaml.safe_load(BROKEN_WORKCELL)
    assert exc.value.problem_mark is not None
    assert (exc.value.problem_mark.line + 1, exc.value.problem_mark.column + 1) == (6, 3)
    lab = make_lab(tmp_path, workcell=BROKEN_WORKCELL)
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", f"{lab / 'workcell.yaml'}:6:3:", "invalid YAML")


def test_malformed_workcell_yaml_via_workcell_option(tmp_path: Path, workflow: Path) -> None:
    lab = make_lab(tmp_path, workcell=BROKEN_WORKCELL)
    result = run_cli(
        "validate", workflow, "--workcell", lab / "workcell.yaml", "--abouts", lab / "abouts", cwd=tmp_path
    )
    assert_cannot_run(result, f"{lab / 'workcell.yaml'}:6:3:", "invalid YAML")


def test_malformed_about_json_names_line_and_column(tmp_path: Path, workflow: Path) -> None:
    with pytest.raises(json.JSONDecodeError) as exc:  # make sure the fixture says what the comment claims
        json.loads(BROKEN_ABOUT)
    assert (exc.value.lineno, exc.value.colno) == (4, 5)
    lab = make_lab(tmp_path, about=BROKEN_ABOUT)
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", f"{lab / 'abouts' / 'reader.json'}:4:5:", "invalid JSON")


@pytest.mark.parametrize(
    ("about", "expected"),
    [
        pytest.param({"detail": "Not Found"}, "Not Found", id="404-body"),
        pytest.param(
            {"About": {"name": "liconic", "type": "liconic_node", "actions": {"load_plate": "stacker, slot"}}},
            "legacy",
            id="legacy-About",
        ),
        pytest.param(["not", "an", "about"], "not a WEI module about", id="json-list"),
        pytest.param({"model": "no name"}, "not a WEI module about", id="no-name"),
    ],
)
def test_about_that_is_not_a_wei_about(tmp_path: Path, workflow: Path, about: Any, expected: str) -> None:
    lab = make_lab(tmp_path, about=json.dumps(about))
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", "reader.json", expected)


def test_lenient_abouts_turns_a_broken_about_into_a_warning(tmp_path: Path, workflow: Path) -> None:
    lab = make_lab(tmp_path, about=json.dumps({"detail": "Not Found"}))
    result = run_cli("validate", workflow, "--lab", lab, "--lenient-abouts", "--format", "json", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    diagnostics = json.loads(result.stdout)["files"][0]["diagnostics"]
    assert [(d["code"], d["severity"]) for d in diagnostics] == [("about-unavailable", "warning")]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("name: empty\nconfig: {}\nmodules: []\n", id="empty-list"),
        pytest.param("name: empty\nconfig: {}\n", id="no-key"),
    ],
)
def test_workcell_without_modules(tmp_path: Path, workflow: Path, text: str) -> None:
    lab = make_lab(tmp_path, workcell=text)
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", "no modules")


def test_workcell_that_is_not_a_mapping(tmp_path: Path, workflow: Path) -> None:
    lab = make_lab(tmp_path, workcell="- just\n- a list\n")
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", "must be a YAML mapping")


def test_unknown_format(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--lab", lab, "--format", "xml", cwd=tmp_path)
    assert_cannot_run(result, "--format", "xml")


def test_lab_together_with_workcell(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--lab", lab, "--workcell", lab / "workcell.yaml", cwd=tmp_path)
    assert_cannot_run(result, "--lab", "--workcell", "not both")


def test_workcell_without_abouts_or_live(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--workcell", lab / "workcell.yaml", cwd=tmp_path)
    assert_cannot_run(result, "--abouts", "--live")


def test_no_lab_at_all(tmp_path: Path, workflow: Path) -> None:
    assert_cannot_run(run_cli("validate", workflow, cwd=tmp_path), "no lab given")


def test_workflow_path_is_a_directory(tmp_path: Path, lab: Path) -> None:
    result = run_cli("validate", tmp_path, "--lab", lab, cwd=tmp_path)
    assert_cannot_run(result, "is a directory")


def test_bad_param(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--lab", lab, "--param", "wavelength", cwd=tmp_path)
    assert_cannot_run(result, "--param", "name=value")


def test_lab_command_with_missing_lab_dir(tmp_path: Path) -> None:
    result = run_cli("lab", "--lab", tmp_path / "nowhere", cwd=tmp_path)
    assert_cannot_run(result, "cannot load the lab", "lab directory not found")


# ---------------------------------------------------------------------------------------------------------------------
# Checked: exit 0 (clean) and exit 1 (problems found)
# ---------------------------------------------------------------------------------------------------------------------


def test_clean_workflow_exits_0(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--lab", lab, cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert f"OK {workflow}: 0 error(s), 0 warning(s)" in result.stdout


def test_clean_workflow_json(tmp_path: Path, lab: Path, workflow: Path) -> None:
    result = run_cli("validate", workflow, "--lab", lab, "--format", "json", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["summary"] == {"files": 1, "failed": 0, "errors": 0, "warnings": 0}
    assert payload["files"][0]["ok"] is True
    assert payload["lab"]["workcell"] == "tiny_workcell"


def test_unknown_module_exits_1_and_json_parses(tmp_path: Path, lab: Path) -> None:
    path = tmp_path / "unknown_module.yaml"
    path.write_text(UNKNOWN_MODULE_WORKFLOW, encoding="utf-8")
    result = run_cli("validate", path, "--lab", lab, "--format", "json", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    diagnostics = payload["files"][0]["diagnostics"]
    codes = [d["code"] for d in diagnostics]
    assert "unknown-module" in codes
    unknown = next(d for d in diagnostics if d["code"] == "unknown-module")
    assert unknown["severity"] == "error"
    assert unknown["step_index"] == 1
    assert unknown["line"] == 10
    assert "centrifuge" in unknown["message"]
    assert payload["files"][0]["ok"] is False
    assert payload["summary"]["failed"] == 1


def test_unknown_module_text_output(tmp_path: Path, lab: Path) -> None:
    path = tmp_path / "unknown_module.yaml"
    path.write_text(UNKNOWN_MODULE_WORKFLOW, encoding="utf-8")
    result = run_cli("validate", path, "--lab", lab, cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 1
    assert "FAIL" in result.stdout
    assert "[unknown-module]" in result.stdout


def test_broken_workflow_yaml_is_a_diagnostic_not_a_crash(tmp_path: Path, lab: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nflowdef:\n  - name: a\n    module: reader\n   action: open_tray\n", encoding="utf-8")
    result = run_cli("validate", path, "--lab", lab, "--format", "json", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 1
    (diag,) = json.loads(result.stdout)["files"][0]["diagnostics"]
    assert diag["code"] == "yaml-parse"
    assert diag["line"] == 5


# ---------------------------------------------------------------------------------------------------------------------
# The corpus's real broken-YAML workflows
# ---------------------------------------------------------------------------------------------------------------------

INVALID = [
    pytest.param("BIO_workcell__debug_app__biometra_test.yaml", 19, id="biometra_test"),
    pytest.param("BIO_workcell__demo_app__test_liconic.yaml", 44, id="test_liconic"),
]


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)
@pytest.mark.parametrize(("name", "line"), INVALID)
def test_corpus_invalid_yaml(tmp_path: Path, name: str, line: int) -> None:
    path = corpus.CORPUS / "invalid" / name
    workcell = corpus.CORPUS / "workcells" / "BIO_workcell__b350_workcell.yaml"
    abouts = corpus.CORPUS / "abouts" / "derived"
    lab_args = ["--workcell", str(workcell), "--abouts", str(abouts)]

    result = run_cli("validate", path, *lab_args, "--format", "json", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 1, result.stdout + result.stderr
    (diag,) = json.loads(result.stdout)["files"][0]["diagnostics"]
    assert (diag["code"], diag["severity"], diag["line"]) == ("yaml-parse", "error", line)

    text = run_cli("validate", path, *lab_args, cwd=tmp_path)
    assert_no_traceback(text)
    assert text.returncode == 1
    assert "[yaml-parse]" in text.stdout
    assert f"line {line}, column" in text.stdout


@pytest.mark.corpus
@pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)
def test_corpus_invalid_both_files_in_one_run(tmp_path: Path) -> None:
    paths = sorted((corpus.CORPUS / "invalid").glob("*.yaml"))
    assert len(paths) == 2
    workcell = corpus.CORPUS / "workcells" / "BIO_workcell__b350_workcell.yaml"
    result = run_cli(
        "validate", *paths, "--workcell", workcell, "--abouts", corpus.CORPUS / "abouts" / "derived",
        "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert_no_traceback(result)
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["summary"]["failed"] == 2
    assert sorted(f["diagnostics"][0]["line"] for f in payload["files"]) == [19, 44]


# ---------------------------------------------------------------------------------------------------------------------
# Usage errors (click/typer render these as a multi-line box: exit 2 and no traceback, but not one line)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("validate", "--lab", "lab"), "Missing argument", id="no-files"),
        pytest.param(("validate", "wf.yaml", "--bogus"), "No such option", id="unknown-option"),
        pytest.param(("frobnicate",), "No such command", id="unknown-command"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode == 2
    assert expected in result.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Inputs that once crashed the CLI (self-referencing aliases, an invalid module address)
# ---------------------------------------------------------------------------------------------------------------------

SELF_REFERENCING_STEP = """\
name: Self-referencing alias
flowdef:
  - &step
    name: Read
    module: reader
    action: read_plate
    args:
      wavelength: 600
      again: *step
"""


def test_self_referencing_alias_in_workflow(tmp_path: Path, lab: Path) -> None:
    path = tmp_path / "recursive.yaml"
    path.write_text(SELF_REFERENCING_STEP, encoding="utf-8")
    result = run_cli("validate", path, "--lab", lab, cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode in (1, 2)


def test_self_referencing_alias_in_workcell_lab_command(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, workcell=WORKCELL.replace("config: {}", "config: &c {again: *c}"))
    result = run_cli("lab", "--lab", lab, cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode in (0, 2)


def test_live_with_invalid_rest_address(tmp_path: Path, workflow: Path) -> None:
    workcell = tmp_path / "workcell.yaml"
    workcell.write_text(WORKCELL.replace("http://127.0.0.1:2000", "http://127.0.0.1:20O0"), encoding="utf-8")
    result = run_cli("validate", workflow, "--workcell", workcell, "--live", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.returncode in (0, 1)  # the module is unknown (about-unavailable warning), not a crash
