"""Validate every real workflow of the WEI corpus against its real workcell and abouts.

Every error the validator reports must be a real problem, pinned with its reason in ``expected_diagnostics.yaml``;
every other corpus workflow must have no error at all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests import corpus
from wei_gen.lab import LabError, load_about_file, load_workcell
from wei_gen.tools.validator import validate_file
from wei_gen.typestr import KNOWN_NAMES, alternatives, parse_type

pytestmark = [pytest.mark.corpus, pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)]

EXPECTED_FILE = Path(__file__).with_name("expected_diagnostics.yaml")


def expected() -> dict[str, dict[str, object]]:
    return yaml.safe_load(EXPECTED_FILE.read_text(encoding="utf-8"))


def test_corpus_has_the_documented_size() -> None:
    assert len(corpus.workflows()) == 93
    assert all(wf.workcell is not None for wf in corpus.workflows())


def test_every_expectation_names_a_corpus_file_and_a_reason() -> None:
    names = {wf.name for wf in corpus.workflows()}
    for name, entry in expected().items():
        assert name in names, f"{name} is not a corpus workflow"
        assert str(entry["why"]).strip(), f"{name} has no reason"
        assert entry["errors"], f"{name} lists no errors"


@pytest.mark.parametrize("wf", corpus.workflows() if corpus.available() else [], ids=lambda wf: wf.name)
def test_corpus_workflow_errors_match_expectations(wf: corpus.CorpusWorkflow) -> None:
    assert wf.workcell is not None
    report = validate_file(wf.path, corpus.lab_for(wf.workcell))
    got = dict(Counter(report.codes("error")))
    want = dict(expected().get(wf.name, {}).get("errors", {}))
    assert got == want, "\n".join(f"{d.code}: {d.message}" for d in report.errors)
    for diagnostic in report.diagnostics:
        assert diagnostic.message and diagnostic.code


def test_clean_share_of_corpus() -> None:
    """Most real, current-format workflows are clean: a guard against a rule that fires everywhere."""
    clean = [wf for wf in corpus.workflows() if wf.name not in expected()]
    assert len(clean) >= 45


@pytest.mark.parametrize(
    "path",
    sorted((corpus.CORPUS / "abouts").glob("*/*.json")) if corpus.available() else [],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_corpus_abouts_load_and_their_types_parse(path: Path) -> None:
    if path.parent.name == "catalog":
        pytest.skip("wei_gen v2's hand-curated catalogue is not a ModuleAbout (a list of categories)")
    if path.parent.name == "legacy":
        with pytest.raises(LabError, match="legacy"):
            load_about_file(path)
        return
    about = load_about_file(path)
    assert about.actions
    known = set(KNOWN_NAMES) | {"List", "Dict", "Union", "Any"}
    for action in about.actions:
        for arg in action.args:
            leaves = alternatives(parse_type(arg.type))
            for leaf in leaves:
                assert leaf.name in known, f"{action.name}.{arg.name}: {arg.type!r} parsed to unknown {leaf.name}"


@pytest.mark.parametrize(
    "path",
    sorted((corpus.CORPUS / "workcells").rglob("*.yaml")) if corpus.available() else [],
    ids=lambda p: p.name,
)
def test_corpus_workcells_load(path: Path) -> None:
    workcell = load_workcell(path)
    assert workcell.modules


def test_legacy_workcell_loads_with_notes() -> None:
    path = corpus.CORPUS / "workcells" / "rpl_workcell@6baf20d__pcr_workcell__pcr_workcell.yaml"
    lab = corpus.lab_for(path)
    assert any("legacy" in note for note in lab.notes)


def test_about_that_is_not_json_is_a_lab_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"About": {"name": "liconic"}})[:-3], encoding="utf-8")
    with pytest.raises(LabError, match="invalid JSON"):
        load_about_file(bad)


def test_round_trip_through_real_wei_types_when_installed() -> None:
    """Our models accept what ``wei.types`` accepts (optional: ad-sdl-wei is not a dependency)."""
    wei_types = pytest.importorskip("wei.types")
    from wei_gen.wei_types import Workflow

    checked = 0
    for wf in corpus.workflows():
        data = yaml.safe_load(wf.path.read_text(encoding="utf-8"))
        try:
            theirs = wei_types.Workflow.model_validate(data)
        except Exception:  # noqa: BLE001 - legacy files are rejected by WEI; ours must reject them too
            with pytest.raises(Exception):  # noqa: B017
                Workflow.model_validate(data)
            continue
        ours = Workflow.model_validate(data)
        assert [s.name for s in ours.flowdef] == [s.name for s in theirs.flowdef]
        assert [s.args for s in ours.flowdef] == [s.args for s in theirs.flowdef]
        checked += 1
    assert checked >= 70
