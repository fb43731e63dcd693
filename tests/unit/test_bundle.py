"""The run bundle: consistent across artifacts, complete on a finished session, honest on a partial one, confined."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import experiment_code
from tests.support.scenarios import fake_context, pcr_plate
from wei_gen.bundle import BundleError, bundle_zip, write_bundle
from wei_gen.session import WEIGen
from wei_gen.state import CodeArtifact, ConfigArtifact, ConfigFile, WorkflowArtifact
from wei_gen.tools.consistency import check_bundle, safe_relative, script_inputs
from wei_gen.wei_types import Workflow


@pytest.fixture(scope="module")
def done_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    scenario = pcr_plate()
    app = WEIGen(context=fake_context(scenario, name="fake:bundle"), data_dir=tmp_path_factory.mktemp("sessions"))
    session = app.new_session()
    session.execute_experiment(scenario.description, scenario.values)
    assert session.status.state == "done"
    return dict(session.state())


def with_workflow(state: dict[str, Any], edit: Any) -> dict[str, Any]:
    data = yaml.safe_load(state["workflow"].yaml)
    edit(data)
    workflow = Workflow.model_validate(data)
    return {**state, "workflow": WorkflowArtifact(workflow=workflow, yaml=workflow.to_yaml())}


def codes(state: dict[str, Any]) -> list[str]:
    return check_bundle(state).codes()


def test_the_bundle_of_a_finished_session_is_consistent(done_state: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    written = {p.relative_to(out.resolve()).as_posix() for p in write_bundle(done_state, out)}
    assert written == {"workflow.yaml", "experiment.py", "tests/test_experiment.py", "configs/ot2_pcr_protocol.yaml",
                       "setup.md", "report.md"}  # fmt: skip
    # Every file a step uploads exists in the bundle, at the path the workflow names (relative to the bundle).
    workflow = Workflow.model_validate(yaml.safe_load((out / "workflow.yaml").read_text()))
    uploads = [path for step in workflow.flowdef for path in step.files.values()]
    assert uploads and all((out / path).is_file() for path in uploads)
    # The script runs this workflow file and passes exactly the parameters it declares.
    script = (out / "experiment.py").read_text()
    assert "workflow.yaml" in script
    passed = script_inputs(script)[0]["parameters"]
    assert passed == {p.name for p in workflow.parameters} == {"temp"}
    assert check_bundle(done_state).diagnostics == []
    report = (out / "report.md").read_text()
    for section in ("## plan: OK", "## workflow: OK", "## code: OK", "## config: OK", "## bundle (cross-artifact): OK"):
        assert section in report
    setup = (out / "setup.md").read_text()
    assert "## OT-2 decks" in setup and "left mount: `p20_single_gen2`" in setup
    # The zip holds the same files with the same content.
    archive = zipfile.ZipFile(io.BytesIO(bundle_zip(done_state)))
    assert set(archive.namelist()) == written
    assert all(archive.read(name).decode() == (out / name).read_text() for name in written)


def test_cross_artifact_faults_are_caught(done_state: dict[str, Any]) -> None:
    renamed = {**done_state, "config": ConfigArtifact(
        files=[f.model_copy(update={"path": "configs/other.yaml"}) for f in done_state["config"].files],
        setup=done_state["config"].setup)}  # fmt: skip
    assert codes(renamed) == ["bundle-file-missing", "bundle-config-unused"]
    moved = [f.model_copy(update={"module": "ot2_prep"}) for f in done_state["config"].files]
    foreign = {**done_state, "config": ConfigArtifact(files=moved, setup="x")}
    assert codes(foreign) == ["bundle-config-module"]
    undeclared = {**done_state, "code": CodeArtifact(script=experiment_code.script({"temp": 175, "speed": 3}),
                                                    tests=experiment_code.TESTS)}  # fmt: skip
    report = check_bundle(undeclared)
    assert report.codes() == ["bundle-code-parameter"] and "'speed'" in report.errors[0].message
    other_file = {**done_state, "code": CodeArtifact(
        script=experiment_code.script({"temp": 175}).replace("workflow.yaml", "pcr.yaml"), tests="x")}  # fmt: skip
    assert codes(other_file) == ["bundle-code-workflow"]

    def no_default(data: dict[str, Any]) -> None:
        data["parameters"].append({"name": "tower"})
        data["flowdef"][0]["args"]["pos"] = "$tower"

    report = check_bundle(with_workflow(done_state, no_default))
    assert report.codes() == ["bundle-code-parameter"]
    assert "parameter 'tower' has no default and experiment.py does not pass it" in report.errors[0].message

    def payload(data: dict[str, Any]) -> None:
        data["flowdef"][0]["args"]["pos"] = "payload.tower"

    assert codes(with_workflow(done_state, payload)) == ["bundle-code-payload"]

    def escape(data: dict[str, Any]) -> None:
        data["flowdef"][2]["files"]["protocol"] = "../../etc/protocol.yaml"

    assert codes(with_workflow(done_state, escape)) == ["bundle-unsafe-path", "bundle-config-unused"]


def test_a_partial_state_writes_what_exists_and_says_what_is_missing(
    done_state: dict[str, Any], tmp_path: Path
) -> None:
    partial = {k: v for k, v in done_state.items() if k not in ("code", "config", "code_tests")}
    partial["reports"] = {k: v for k, v in done_state["reports"].items() if k in ("plan", "workflow")}
    written = {p.name for p in write_bundle(partial, tmp_path)}
    assert written == {"workflow.yaml", "setup.md", "report.md"}
    report = (tmp_path / "report.md").read_text()
    assert "Missing from this bundle: experiment.py, instrument configs." in report
    assert "## code: not checked (no code yet)" in report and "## config: not checked (no config yet)" in report
    assert "`bundle-missing`" in report
    assert {p.name for p in write_bundle({}, tmp_path / "empty")} == {"setup.md", "report.md"}


def test_nothing_is_written_outside_the_bundle(done_state: dict[str, Any], tmp_path: Path) -> None:
    evil = {**done_state, "config": ConfigArtifact(files=[
        ConfigFile(path="../../escaped.yaml", module="ot2_pcr", content="x: 1\n"),
        ConfigFile(path="/tmp/abs.yaml", module="ot2_pcr", content="x: 1\n"),
        ConfigFile(path="report.md", module="ot2_pcr", content="overwrite\n"),
        ConfigFile(path="configs/ok.yaml", module="ot2_pcr", content="x: 1\n"),
    ])}  # fmt: skip
    out = tmp_path / "a" / "bundle"
    write_bundle(evil, out)
    assert not (tmp_path / "escaped.yaml").exists() and not (tmp_path / "a" / "escaped.yaml").exists()
    report = (out / "report.md").read_text()
    assert report.startswith("# wei-gen check report")
    assert "config '../../escaped.yaml' for ot2_pcr was not written: unsafe path" in report
    assert (out / "configs" / "ok.yaml").is_file()
    # A symlinked folder inside the bundle that leads elsewhere is not followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "configs").symlink_to(outside, target_is_directory=True)
    write_bundle(done_state, linked)
    assert list(outside.iterdir()) == []
    assert (
        "'configs/ot2_pcr_protocol.yaml' was not written: it resolves outside the bundle folder"
        in (linked / "report.md").read_text()
    )
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(BundleError):
        write_bundle(done_state, target)


def test_safe_relative() -> None:
    assert str(safe_relative("./configs/a.yaml")) == "configs/a.yaml"
    assert safe_relative("configs/../../a.yaml") is None
    assert safe_relative("C:\\x\\a.yaml") is None
    assert safe_relative("") is None
