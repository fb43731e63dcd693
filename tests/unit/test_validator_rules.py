"""Each validator rule on small workflows against the shipped example lab (offline, no corpus needed)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools.validator import CODES, validate_data, validate_file, validate_text, validate_workflow
from wei_gen.wei_types import Workflow

LABS = Path(__file__).resolve().parents[2] / "examples" / "labs"


@pytest.fixture(scope="module")
def lab() -> Lab:
    return lab_from_dir(LABS / "rpl_like")


def base() -> dict[str, Any]:
    """A small clean workflow: stack -> sealer -> seal -> camera."""
    return {
        "name": "Seal one plate",
        "metadata": {"author": "tests", "info": "seal and photograph", "version": "0.1"},
        "parameters": [{"name": "temp", "default": 175}],
        "flowdef": [
            {"name": "Get plate", "module": "sciclops", "action": "get_plate", "args": {"pos": "tower1"}},
            {
                "name": "To sealer",
                "module": "pf400",
                "action": "transfer",
                "args": {"source": "sciclops.exchange", "target": "sealer.default"},
            },
            {
                "name": "Seal",
                "module": "sealer",
                "action": "seal",
                "args": {"temperature": "$temp", "time": 3},
            },
            {
                "name": "To camera",
                "module": "pf400",
                "action": "transfer",
                "args": {"source": "sealer.default", "target": "camera.plate_station"},
            },
            {
                "name": "Photo",
                "module": "camera",
                "action": "take_picture",
                "data_labels": {"image": "photo"},
            },
        ],
    }


def codes(data: Any, lab: Lab, **kw: Any) -> list[str]:
    return validate_data(data, lab, **kw).codes()


def test_base_workflow_is_clean(lab: Lab) -> None:
    report = validate_data(base(), lab)
    assert report.ok and report.diagnostics == []


def test_shipped_example_workflows_are_clean() -> None:
    for lab_dir in sorted(LABS.iterdir()):
        lab = lab_from_dir(lab_dir)
        assert lab.example_paths, f"{lab_dir} ships no examples"
        for path in lab.example_paths:
            report = validate_file(path, lab)
            assert report.diagnostics == [], f"{path}: {[d.message for d in report.diagnostics]}"


def mutate(path: str, value: Any) -> dict[str, Any]:
    """Set a dotted path (``flowdef.2.args.time``) in a copy of the base workflow; value None deletes."""
    data = copy.deepcopy(base())
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "code", "severity", "step"),
    [
        ("flowdef.2.module", "sealr", "unknown-module", "error", 2),
        ("flowdef.2.module", "Sealer", "module-case", "error", 2),
        ("flowdef.2.action", "sael", "unknown-action", "error", 2),
        ("flowdef.2.args.time", None, "missing-required-arg", "error", 2),
        ("flowdef.1.args.target", "sealer.defualt", "unknown-location", "error", 1),
        ("flowdef.1.args.target", "ot2_pcr", "unknown-location", "error", 1),
        ("flowdef.2.args.temperature", "$tmp", "undeclared-parameter", "error", 2),
        ("flowdef.2.args.time", "three", "arg-type-mismatch", "error", 2),
        ("flowdef.2.args.time", [1, 2], "arg-type-mismatch", "error", 2),
        ("flowdef.2.args.time", "3", "arg-type-coerced", "warning", 2),
        ("flowdef.2.args.speed", 5, "unknown-arg", "warning", 2),
        ("flowdef.2.args.temperature", "payload.temp", "payload-ref", "warning", 2),
        ("flowdef.2.args.temperature", "payload:temp", "payload-typo", "warning", 2),
        ("flowdef.2.comments", "x", "ignored-key", "warning", 2),
        ("flowdef.2.checks", "RESOURCE_CHECK", "unused-key", "warning", 2),
        ("flowdef.3.name", "To sealer", "duplicate-step-name", "warning", 3),
        ("flowdef.1.args.target", "sciclops.exchange", "same-source-target", "warning", 1),
        ("flowdef.4.data_labels", {"picture": "photo"}, "unknown-result-label", "warning", 4),
        ("flowdef.2.module", "payload.sealer", "payload-in-module", "error", 2),
        ("flowdef.2.module", "$sealer_module", "undeclared-parameter", "error", 2),
        ("flowdef.2", "seal the plate", "step-not-mapping", "error", 2),
        ("flowdef.2.action", None, "step-missing-field", "error", 2),
        ("flowdef.2.module", 5, "step-field-type", "error", 2),
    ],
)
def test_rule(lab: Lab, path: str, value: Any, code: str, severity: str, step: int | None) -> None:
    report = validate_data(mutate(path, value), lab)
    hits = [d for d in report.diagnostics if d.code == code]
    assert hits, f"expected {code}, got {report.codes()}"
    assert hits[0].severity == severity
    assert hits[0].step_index == step
    assert code in CODES


def test_typo_location_has_did_you_mean(lab: Lab) -> None:
    report = validate_data(mutate("flowdef.1.args.target", "sealer.defualt"), lab)
    (diag,) = [d for d in report.diagnostics if d.code == "unknown-location"]
    assert diag.hint == "did you mean 'sealer.default'?"
    assert diag.field == "flowdef[1].args.target"


def test_legacy_workflow_gets_legacy_diagnostics_not_a_crash(lab: Lab) -> None:
    data = {
        "metadata": {"name": "old"},
        "workcell": "/x.yaml",
        "flowdef": [{"name": "s", "module": "pf400", "command": "transfer", "args": {}}],
    }
    found = codes(data, lab)
    assert {"legacy-no-name", "legacy-command", "ignored-key"} <= set(found)


def test_madsci_workflow_is_recognised(lab: Lab) -> None:
    assert codes({"name": "m", "steps": [{"node": "pf400", "action": "transfer"}]}, lab) == ["madsci-format"]


@pytest.mark.parametrize(
    "data", [None, [], "text", {"name": "x"}, {"name": "x", "flowdef": {}}, {"name": "x", "flowdef": []}]
)
def test_structural_garbage_is_an_error_not_a_crash(lab: Lab, data: Any) -> None:
    report = validate_data(data, lab)
    assert not report.ok


def test_duplicate_data_label(lab: Lab) -> None:
    data = mutate("flowdef.2.data_labels", {"x": "photo"})
    (diag,) = [d for d in validate_data(data, lab).diagnostics if d.code == "duplicate-data-label"]
    assert diag.step_index == 4 and "step 3" in diag.message


def test_parameters_supplied_or_required(lab: Lab) -> None:
    data = mutate("parameters", [{"name": "temp"}])
    assert "parameter-input" in codes(data, lab)
    assert "unsupplied-parameter" in codes(data, lab, parameters={})
    assert validate_data(data, lab, parameters={"temp": 170}).ok
    # A supplied value is type-checked like a literal.
    assert "arg-type-mismatch" in codes(data, lab, parameters={"temp": "hot"})


def test_param_in_list_and_unused_parameter(lab: Lab) -> None:
    data = mutate("flowdef.1.args.source_plate_rotation", ["$temp"])
    data["parameters"].append({"name": "unused", "default": 1})
    found = codes(data, lab)
    assert "param-in-list" in found and "unused-parameter" in found


def test_missing_required_file(lab: Lab) -> None:
    data = base()
    data["flowdef"].append({"name": "Run", "module": "ot2_pcr", "action": "run_protocol"})
    assert "missing-required-file" in validate_data(data, lab).codes("error")
    data["flowdef"][-1]["files"] = {"protocol": None}
    assert "file-not-string" in validate_data(data, lab).codes("error")
    data["flowdef"][-1]["files"] = {"protocol": "p.yaml", "extra": "e.yaml"}
    assert validate_data(data, lab).codes() == ["unknown-file"]


def test_protocol_given_as_arg_gets_a_files_hint(lab: Lab) -> None:
    data = base()
    data["flowdef"].append({"name": "Run", "module": "ot2_pcr", "action": "run_protocol", "args": {"protocol": "p.py"}})
    (diag,) = [d for d in validate_data(data, lab).diagnostics if d.code == "unknown-arg"]
    assert "files:" in (diag.hint or "")


def test_inactive_module_and_unknown_about(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "abouts").mkdir()
    workcell = yaml.safe_load((LABS / "rpl_like" / "workcell.yaml").read_text(encoding="utf-8"))
    for module in workcell["modules"]:
        if module["name"] == "camera":
            module["active"] = False
    (tmp_path / "workcell.yaml").write_text(yaml.safe_dump(workcell), encoding="utf-8")
    for about in (LABS / "rpl_like" / "abouts").glob("*.json"):
        if about.stem != "sealer":
            (tmp_path / "abouts" / about.name).write_text(about.read_text(encoding="utf-8"), encoding="utf-8")
    lab2 = lab_from_dir(tmp_path)
    report = validate_data(mutate("flowdef.2.action", "anything"), lab2)
    assert report.codes("warning").count("about-unavailable") == 1  # degraded, as WEI does
    assert "unknown-action" not in report.codes()
    assert "inactive-module" in report.codes("warning")


def test_untrusted_required_flags_fall_back_to_defaults(lab: Lab) -> None:
    """WEI 0.7.3+ reports every arg required: false; then 'no default' means probably required (a warning)."""
    about = lab.modules["sealer"].about
    assert about is not None
    untrusted = about.model_copy(deep=True)
    for action in untrusted.actions:
        for arg in action.args:
            arg.required = False
    lab2 = copy.copy(lab)
    lab2.modules = {**lab.modules, "sealer": dataclasses.replace(lab.modules["sealer"], about=untrusted)}
    assert not lab2.modules["sealer"].required_flags_trusted
    diags = [d for d in validate_data(mutate("flowdef.2.args.time", None), lab2).diagnostics]
    (diag,) = [d for d in diags if d.code == "missing-required-arg"]
    assert diag.severity == "warning" and "probably required" in diag.message


def test_yaml_parse_error_has_line_and_column(lab: Lab) -> None:
    report = validate_text("name: x\nflowdef:\n  - name: a\n    module: [b\n", lab)
    (diag,) = report.diagnostics
    assert diag.code == "yaml-parse" and diag.line is not None and diag.column is not None


def test_step_lines_point_into_the_file(lab: Lab) -> None:
    text = yaml.safe_dump(mutate("flowdef.2.module", "sealr"), sort_keys=False)
    (diag,) = validate_text(text, lab).errors
    assert diag.line is not None
    assert text.splitlines()[diag.line - 1].lstrip().startswith("- name: Seal")


def test_generated_model_round_trip(lab: Lab) -> None:
    workflow = Workflow.model_validate(base())
    text = workflow.to_yaml()
    assert "info: seal and photograph" in text
    assert validate_workflow(workflow, lab).ok
    assert Workflow.model_validate(yaml.safe_load(text)) == workflow


def test_readme_documents_every_diagnostic_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [code for code in CODES if f"`{code}`" not in readme]
    assert missing == []


def test_locations_checked_even_without_an_about(lab: Lab) -> None:
    lab2 = copy.copy(lab)
    lab2.modules = {**lab.modules, "pf400": dataclasses.replace(lab.modules["pf400"], about=None)}
    report = validate_data(mutate("flowdef.1.args.target", "sealer.defualt"), lab2)
    (diag,) = [d for d in report.diagnostics if d.code == "unknown-location"]
    assert diag.severity == "error" and diag.hint == "did you mean 'sealer.default'?"
    assert "about-unavailable" in report.codes("warning")


def test_non_string_data_label_is_an_error_not_a_crash(lab: Lab) -> None:
    report = validate_data(mutate("flowdef.4.data_labels", {"image": ["photo"]}), lab)
    assert report.codes("error") == ["step-field-type"]
