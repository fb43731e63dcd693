"""Fault injection: break every clean corpus workflow in known ways and check the validator catches each break.

A workflow is *clean* when its manifest workcell loads and the validator reports no error for it. Each fault kind
below is injected (into a deep copy of the parsed YAML) at every place a clean workflow offers for it, one fault per
copy; the validator must then report the expected code, on the mutated step and field, with the expected severity,
and that diagnostic must be new (absent from the unmutated workflow's report). The catch rate must be 100 %.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from tests import corpus
from wei_gen.lab import Lab, LabError, LabModule
from wei_gen.tools.validator import ValidationReport, validate_data
from wei_gen.typestr import accepts_string, alternatives, parse_type
from wei_gen.wei_types import ModuleAction
from wei_gen.yamlio import InputError, parse_yaml, read_text

pytestmark = [pytest.mark.corpus, pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)]

MIN_CLEAN = 30
ERROR = frozenset({"error"})
WARNING = frozenset({"warning"})
ANY_SEVERITY = frozenset({"error", "warning", "info"})

UNKNOWN_MODULE = "no_such_module"
UNKNOWN_ACTION = "no_such_action"
UNDECLARED = "$undeclared_param_x"
DUP_LABEL = "injected_duplicate_label"
LOCATION_ARG_NAMES = {"source", "target", "location"}  # the validator treats these as location args

FAULT_KINDS = [
    "unknown-module",
    "module-case",
    "unknown-action",
    "missing-required-arg",
    "missing-required-file",
    "unknown-location-nowhere",
    "unknown-location-typo",
    "undeclared-parameter",
    "duplicate-data-label",
    "arg-type-mismatch",
    "legacy-command",
    "missing-name",
    "step-not-mapping",
]


# ---------------------------------------------------------------------------------------------------------------------
# The clean set
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanWorkflow:
    name: str
    lab: Lab
    data: dict[str, Any]
    baseline: ValidationReport


@cache
def clean_workflows() -> list[CleanWorkflow]:
    """Corpus workflows whose workcell loads and whose report has no error."""
    out = []
    for wf in corpus.workflows():
        if wf.workcell is None:
            continue
        try:
            lab = corpus.lab_for(wf.workcell)
            data = parse_yaml(read_text(wf.path), str(wf.path)).data
        except (LabError, InputError):
            continue
        report = validate_data(data, lab, source=str(wf.path))
        if isinstance(data, dict) and isinstance(data.get("flowdef"), list) and not report.errors:
            out.append(CleanWorkflow(wf.name, lab, data, report))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Injection sites
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injection:
    """One fault at one place: how to apply it and which diagnostic must then appear."""

    detail: str
    mutate: Callable[[dict[str, Any]], None]
    code: str
    step: int | None
    field: str | None
    severities: frozenset[str] = ERROR


@dataclass(frozen=True)
class Resolved:
    """A step whose module is a literal workcell module with an about, and whose action the about knows."""

    index: int
    step: dict[str, Any]
    module: LabModule
    action: ModuleAction


def _steps(data: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, step in enumerate(data["flowdef"]):
        if isinstance(step, dict):
            yield i, step


def _lab_module(lab: Lab, step: dict[str, Any]) -> LabModule | None:
    name = step.get("module")
    return lab.module(name) if isinstance(name, str) else None


def _resolved(data: dict[str, Any], lab: Lab) -> Iterator[Resolved]:
    for i, step in _steps(data):
        module = _lab_module(lab, step)
        if module is None or module.about is None or not isinstance(step.get("action"), str):
            continue
        action = module.about.action(step["action"])
        if action is not None:
            yield Resolved(i, step, module, action)


def _literal_args(step: dict[str, Any]) -> dict[str, Any]:
    """The step's args whose key is a plain string (no ``$param`` key)."""
    args = step.get("args")
    return {k: v for k, v in args.items() if isinstance(k, str) and "$" not in k} if isinstance(args, dict) else {}


def _set_arg(i: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        step = data["flowdef"][i]
        if not isinstance(step.get("args"), dict):
            step["args"] = {}
        step["args"][key] = value

    return mutate


def _set_key(i: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["flowdef"][i][key] = value

    return mutate


def _delete(i: int, section: str, key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data["flowdef"][i][section][key]

    return mutate


def sites_unknown_module(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i, step in _steps(data):
        if "module" in step:
            yield Injection(
                f"step {i}: module {step['module']!r} -> {UNKNOWN_MODULE!r}",
                _set_key(i, "module", UNKNOWN_MODULE),
                "unknown-module",
                i,
                f"flowdef[{i}].module",
            )


def sites_module_case(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i, step in _steps(data):
        if _lab_module(lab, step) is None:
            continue
        name = step["module"]
        variant = next((v for v in (name.upper(), name.capitalize(), name.swapcase()) if v not in lab.modules), None)
        if variant is not None:
            yield Injection(
                f"step {i}: module {name!r} -> {variant!r}",
                _set_key(i, "module", variant),
                "module-case",
                i,
                f"flowdef[{i}].module",
            )


def sites_unknown_action(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i, step in _steps(data):
        module = _lab_module(lab, step)
        if module is not None and module.about is not None and "action" in step:
            yield Injection(
                f"step {i}: {module.name}.{step['action']} -> {UNKNOWN_ACTION!r}",
                _set_key(i, "action", UNKNOWN_ACTION),
                "unknown-action",
                i,
                f"flowdef[{i}].action",
            )


def sites_missing_required_arg(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for r in _resolved(data, lab):
        trusted = r.module.required_flags_trusted
        args = _literal_args(r.step)
        for spec in r.action.args:
            required = spec.required if trusted else spec.default is None
            if required and spec.name in args:
                yield Injection(
                    f"step {r.index}: drop {r.module.name}.{r.action.name} arg {spec.name!r}"
                    f" ({'trusted' if trusted else 'untrusted'} required flags)",
                    _delete(r.index, "args", spec.name),
                    "missing-required-arg",
                    r.index,
                    f"flowdef[{r.index}].args",
                    ERROR if trusted else WARNING,
                )


def sites_missing_required_file(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for r in _resolved(data, lab):
        files = r.step.get("files")
        if not isinstance(files, dict):
            continue
        trusted = r.module.required_flags_trusted or not r.action.args
        for spec in r.action.files:
            if spec.name in files and (spec.required or not trusted):
                yield Injection(
                    f"step {r.index}: drop {r.module.name}.{r.action.name} file {spec.name!r}",
                    _delete(r.index, "files", spec.name),
                    "missing-required-file",
                    r.index,
                    f"flowdef[{r.index}].files",
                    ERROR if spec.required else WARNING,
                )


def _location_args(data: dict[str, Any], lab: Lab) -> Iterator[tuple[Resolved, str, str, bool]]:
    """(step, arg, location name, arg type accepts strings) for each about-known arg given a location name."""
    for r in _resolved(data, lab):
        table = lab.locations(r.module.name)
        for key, value in _literal_args(r.step).items():
            spec = r.action.arg(key)
            if spec is not None and isinstance(value, str) and value in table:
                yield r, key, value, accepts_string(parse_type(spec.type))


def excluded_location_args(data: dict[str, Any], lab: Lab) -> Iterator[str]:
    """Args given a location name that the validator cannot check: no about for the module, or an arg it lacks.

    The validator checks args only against an about (as WEI does; a module without one gets a single
    ``about-unavailable`` warning), so a location fault there is not injected; these are listed in the summary.
    """
    covered = {(r.index, key) for r, key, _, _ in _location_args(data, lab)}
    for i, step in _steps(data):
        module = step.get("module")
        table = lab.locations(module) if isinstance(module, str) else {}
        args = step.get("args") if isinstance(step.get("args"), dict) else {}
        for key, value in args.items():
            if isinstance(value, str) and value in table and (i, key) not in covered:
                about = (m := lab.module(module)) is not None and m.about is not None
                why = "arg not in the about" if about else "no about"
                yield f"step {i}: {module}.{step.get('action')} {key}={value!r} ({why})"


def sites_unknown_location_nowhere(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for r, key, value, takes_string in _location_args(data, lab):
        bad = value + "_nowhere"
        yield Injection(
            f"step {r.index}: {key} {value!r} -> {bad!r}",
            _set_arg(r.index, key, bad),
            "unknown-location",
            r.index,
            f"flowdef[{r.index}].args.{key}",
            ANY_SEVERITY if takes_string else ERROR,
        )


def sites_unknown_location_typo(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for r, key, value, _ in _location_args(data, lab):
        typo = value[:-1]
        if typo and typo not in lab.all_location_names():
            yield Injection(
                f"step {r.index}: {key} {value!r} -> {typo!r}",
                _set_arg(r.index, key, typo),
                "unknown-location",
                r.index,
                f"flowdef[{r.index}].args.{key}",
            )


def sites_undeclared_parameter(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i, step in _steps(data):
        key = next(iter(_literal_args(step)), "injected_arg")
        yield Injection(
            f"step {i}: args.{key} -> {UNDECLARED!r}",
            _set_arg(i, key, UNDECLARED),
            "undeclared-parameter",
            i,
            f"flowdef[{i}].args.{key}",
        )


def _add_label(i: int, key: str, label: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        step = data["flowdef"][i]
        if not isinstance(step.get("data_labels"), dict):
            step["data_labels"] = {}
        step["data_labels"][key] = label

    return mutate


def _both(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        for m in mutations:
            m(data)

    return mutate


def sites_duplicate_data_label(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    steps = list(_steps(data))
    for i, _ in steps:  # the same label twice within one step
        yield Injection(
            f"step {i}: two data_labels with value {DUP_LABEL!r}",
            _both(_add_label(i, "injected_a", DUP_LABEL), _add_label(i, "injected_b", DUP_LABEL)),
            "duplicate-data-label",
            i,
            f"flowdef[{i}].data_labels.injected_b",
        )
    for (i, first), (j, _) in zip(steps, steps[1:], strict=False):  # a label of step i reused by the next step
        existing = first.get("data_labels")
        if isinstance(existing, dict) and existing and isinstance(next(iter(existing.values())), str):
            label, make_first = next(iter(existing.values())), _both()
        else:
            label, make_first = DUP_LABEL, _add_label(i, "injected_a", DUP_LABEL)
        yield Injection(
            f"steps {i} and {j}: data_labels value {label!r} in both",
            _both(make_first, _add_label(j, "injected_b", label)),
            "duplicate-data-label",
            j,
            f"flowdef[{j}].data_labels.injected_b",
        )


_NUMERIC = {"int", "float", "bool"}


def sites_arg_type_mismatch(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for r in _resolved(data, lab):
        table = lab.locations(r.module.name)
        for spec in r.action.args:
            kinds = {alt.name for alt in alternatives(parse_type(spec.type))}
            bad_values: list[Any] = []
            if kinds - {"NoneType"} and kinds <= _NUMERIC | {"NoneType"}:
                bad_values.append({"x": 1})
                if not (spec.name in LOCATION_ARG_NAMES and table):  # else a string is checked as a location name
                    bad_values.append("not-a-number")
            elif "List" in kinds and kinds <= {"List", "NoneType"}:
                bad_values.append(42)
            for bad in bad_values:
                yield Injection(
                    f"step {r.index}: {r.module.name}.{r.action.name} {spec.name} ({spec.type}) = {bad!r}",
                    _set_arg(r.index, spec.name, bad),
                    "arg-type-mismatch",
                    r.index,
                    f"flowdef[{r.index}].args.{spec.name}",
                )


def _rename_action(i: int) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        step = data["flowdef"][i]
        data["flowdef"][i] = {("command" if k == "action" else k): v for k, v in step.items()}

    return mutate


def sites_legacy_command(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i, step in _steps(data):
        if "action" in step and "command" not in step:
            yield Injection(
                f"step {i}: action -> command", _rename_action(i), "legacy-command", i, f"flowdef[{i}].command"
            )


def sites_missing_name(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    if "name" not in data:
        return
    meta = data.get("metadata")
    # With a name under metadata the file reads as a legacy (<= 0.3) one, which has its own code.
    code = "legacy-no-name" if isinstance(meta, dict) and "name" in meta else "missing-name"

    def mutate(data: dict[str, Any]) -> None:
        del data["name"]

    yield Injection(f"drop top-level name (expect {code})", mutate, code, None, "name")


def sites_step_not_mapping(data: dict[str, Any], lab: Lab) -> Iterator[Injection]:
    for i in range(len(data["flowdef"])):

        def mutate(data: dict[str, Any], i: int = i) -> None:
            data["flowdef"][i] = "this step is a string"

        yield Injection(f"step {i}: replaced by a string", mutate, "step-not-mapping", i, f"flowdef[{i}]")


SITES: dict[str, Callable[[dict[str, Any], Lab], Iterator[Injection]]] = {
    "unknown-module": sites_unknown_module,
    "module-case": sites_module_case,
    "unknown-action": sites_unknown_action,
    "missing-required-arg": sites_missing_required_arg,
    "missing-required-file": sites_missing_required_file,
    "unknown-location-nowhere": sites_unknown_location_nowhere,
    "unknown-location-typo": sites_unknown_location_typo,
    "undeclared-parameter": sites_undeclared_parameter,
    "duplicate-data-label": sites_duplicate_data_label,
    "arg-type-mismatch": sites_arg_type_mismatch,
    "legacy-command": sites_legacy_command,
    "missing-name": sites_missing_name,
    "step-not-mapping": sites_step_not_mapping,
}
assert list(SITES) == FAULT_KINDS


# ---------------------------------------------------------------------------------------------------------------------
# Running the injections
# ---------------------------------------------------------------------------------------------------------------------


def _key(d: Any) -> tuple[Any, ...]:
    return (d.code, d.severity, d.step_index, d.field, d.message)


@dataclass
class KindResult:
    kind: str
    workflows_offering: set[str] = field(default_factory=set)
    workflows_injected: set[str] = field(default_factory=set)
    workflows_missed: set[str] = field(default_factory=set)
    injections: int = 0
    caught: int = 0
    misses: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)


def run_kind(kind: str) -> KindResult:
    result = KindResult(kind)
    for wf in clean_workflows():
        injections = list(SITES[kind](wf.data, wf.lab))
        if injections:
            result.workflows_offering.add(wf.name)
        if kind.startswith("unknown-location"):
            result.excluded += [f"{wf.name}: {why}" for why in excluded_location_args(wf.data, wf.lab)]
        before = {_key(d) for d in wf.baseline.diagnostics}
        for inj in injections:
            mutated = copy.deepcopy(wf.data)
            inj.mutate(mutated)
            assert mutated != wf.data, f"{wf.name}: {inj.detail} changed nothing"
            report = validate_data(mutated, wf.lab, source=f"{wf.name} [{kind}]")
            result.workflows_injected.add(wf.name)
            result.injections += 1
            hits = [
                d
                for d in report.diagnostics
                if d.code == inj.code and d.step_index == inj.step and d.field == inj.field and _key(d) not in before
            ]
            if any(d.severity in inj.severities for d in hits):
                result.caught += 1
                continue
            result.workflows_missed.add(wf.name)
            same_code = [
                f"{d.severity} step={d.step_index} {d.field}: {d.message}"
                for d in report.diagnostics
                if d.code == inj.code
            ] or ["none"]
            new = [
                f"{d.code}/{d.severity} step={d.step_index} {d.field}"
                for d in report.diagnostics
                if _key(d) not in before
            ] or ["none"]
            result.misses.append(
                f"{wf.name}: {inj.detail}: expected {inj.code} ({'/'.join(sorted(inj.severities))}) at step "
                f"{inj.step} field {inj.field}; same-code diagnostics: {same_code}; new diagnostics: {new}"
            )
    return result


@cache
def results() -> dict[str, KindResult]:
    return {kind: run_kind(kind) for kind in FAULT_KINDS}


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------


def test_clean_set_is_large_enough() -> None:
    clean = clean_workflows()
    assert len(clean) >= MIN_CLEAN, f"only {len(clean)} clean corpus workflows (expected >= {MIN_CLEAN})"
    assert len({wf.name for wf in clean}) == len(clean)


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_fault_kind_is_always_caught(kind: str) -> None:
    result = results()[kind]
    assert result.workflows_injected, f"{kind}: no clean workflow offers a site for this fault"
    assert result.workflows_injected == result.workflows_offering
    assert result.injections >= len(result.workflows_injected)
    assert not result.misses, f"{kind}: {len(result.misses)} of {result.injections} injections missed:\n" + "\n".join(
        result.misses
    )


def test_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        ("fault kind", "clean wfs", "offering", "injected", "injections", "caught", "wfs missed", "rate", "excluded")
    ]
    total = len(clean_workflows())
    for kind, r in results().items():
        rate = f"{100 * r.caught / r.injections:.1f} %" if r.injections else "n/a"
        rows.append(
            (
                kind,
                str(total),
                str(len(r.workflows_offering)),
                str(len(r.workflows_injected)),
                str(r.injections),
                str(r.caught),
                str(len(r.workflows_missed)),
                rate,
                str(len(r.excluded)),
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    excluded = sorted(set(results()["unknown-location-nowhere"].excluded))
    lines += ["", "Location sites not injected (the validator checks args only against an about):", *excluded]
    with capsys.disabled():
        print("\n\nFault injection over clean corpus workflows\n" + "\n".join(lines))  # noqa: T201
    for kind, r in results().items():
        assert len(r.workflows_injected) >= 1, kind
        assert len(r.workflows_injected) == len(r.workflows_offering), kind
        assert r.caught == r.injections, f"{kind}: caught {r.caught} of {r.injections}"
