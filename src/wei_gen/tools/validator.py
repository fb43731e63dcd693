"""Check a WEI workflow against a lab: structured diagnostics, never a crash.

Implements the rules of ``wei-formats.md`` §7.2: what WEI itself rejects (errors) and what is legal but suspicious
(warnings). Every diagnostic has a stable ``code`` (listed in :data:`CODES`), a severity, the step it concerns, the
field path, a message a scientist can read, and where possible a hint that says how to fix it.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from wei_gen.lab import Lab, LabModule
from wei_gen.typestr import Fit, accepts_string, check_value, describe_value, is_coordinate_type, parse_type
from wei_gen.wei_types import ModuleAction, ModuleActionArg, Workflow
from wei_gen.yamlio import InputError, LoadedYaml, parse_yaml, read_text

Severity = Literal["error", "warning", "info"]

CODES: dict[str, str] = {
    "yaml-parse": "the file is not valid YAML",
    "not-a-mapping": "the top level is not a mapping",
    "madsci-format": "a MADSci workflow (steps/node), not WEI (flowdef/module)",
    "legacy-no-name": "legacy (<= 0.3) file: name only under metadata",
    "legacy-command": "legacy (<= 0.3) step: 'command' instead of 'action'",
    "missing-name": "no top-level workflow name",
    "missing-flowdef": "no flowdef list",
    "empty-flowdef": "flowdef has no steps",
    "step-not-mapping": "a step is not a mapping",
    "step-missing-field": "a step lacks name, module or action",
    "step-field-type": "a step field has the wrong type",
    "schema": "does not match WEI's Workflow model",
    "bad-parameter": "a parameters entry is malformed",
    "undeclared-parameter": "$name used but not declared in parameters",
    "unsupplied-parameter": "a parameter without default was not supplied",
    "parameter-input": "a parameter without default must be supplied at run time",
    "unused-parameter": "a declared parameter is never used",
    "param-in-list": "$name inside a list is not substituted by WEI",
    "unknown-module": "module not in the workcell",
    "module-case": "module differs from a workcell module only by case",
    "inactive-module": "module is inactive in the workcell",
    "unresolved-module": "module or action is a parameter with no value; not checked",
    "payload-in-module": "payload.x in module/action is never substituted",
    "about-unavailable": "no usable about for the module; its actions are not checked",
    "unknown-action": "action not in the module's about",
    "missing-required-arg": "a required arg of the action is missing",
    "missing-required-file": "a required file of the action is missing",
    "unknown-file": "a files key the action does not take",
    "file-not-string": "a files value is not a path string",
    "unknown-arg": "an arg the action does not take (the module ignores it)",
    "unknown-location": "a location name not in the module's location table",
    "arg-type-mismatch": "an arg value of the wrong type",
    "arg-type-coerced": "an arg value that only works after conversion (e.g. '700' for an int)",
    "same-source-target": "a move whose source equals its target",
    "duplicate-data-label": "a data_labels value used twice in the workflow",
    "unknown-result-label": "a data_labels key the action does not return",
    "duplicate-step-name": "two steps share a name",
    "payload-ref": "payload.x reference (deprecated since WEI 0.7.2)",
    "payload-not-substituted": "payload.x where WEI does not substitute it",
    "payload-typo": "looks like a mistyped payload.x reference",
    "ignored-key": "a key WEI ignores",
    "unused-key": "a key WEI accepts but never uses",
    "modules-list-mismatch": "the deprecated modules list disagrees with the steps",
    # OT-2 protocol configs (tools/protocol.py)
    "config-schema": "not the OT-2 driver's config structure (equipment, commands, metadata)",
    "config-unknown-key": "a key the OT-2 driver rejects",
    "config-unknown-labware": "labware load name not in wei-gen's labware facts",
    "config-unknown-pipette": "pipette name not in wei-gen's pipette facts",
    "config-bad-slot": "labware on a slot that is not an OT-2 deck slot 1-11",
    "config-duplicate-slot": "two labware on one deck slot",
    "config-duplicate-alias": "one alias for two deck slots",
    "config-bad-mount": "pipette mount other than left/right",
    "config-duplicate-mount": "two pipettes on one mount",
    "config-no-pipette": "no pipette mounted",
    "config-no-labware": "no labware on the deck",
    "config-no-commands": "no commands (or no volumes in the values to build them from)",
    "config-no-tips": "a pipette in use has no matching tip rack",
    "config-tips-exhausted": "more tips needed than the racks hold",
    "config-unknown-location": "a source/destination names a slot or alias with no labware",
    "config-bad-well": "a well that does not exist in that labware (or is in a tip rack)",
    "config-volume": "a volume that is not a non-negative number",
    "config-over-capacity": "a well would hold more than its capacity",
    "config-pipette-range": "a volume outside the range of the pipette the driver picks",
    "config-length-mismatch": "list fields of one command with different lengths",
    "config-untraced-volume": "a volume that is not one of the user's values",
    "config-default-used": "the offline builder used a default instead of a user value",
    "config-runtime-value": "a payload/resource-file value filled in at run time; not checked",
    "config-not-checked": "a command kind that is not checked in depth (multi-channel transfers)",
    "config-metadata": "metadata apiLevel is not an Opentrons API level",
    "config-unsupported": "a step uploads a file to a module wei-gen writes no configs for",
    # run bundle, cross-artifact (tools/consistency.py)
    "bundle-missing": "an artifact is missing from the bundle",
    "bundle-runtime-file": "a files path supplied at run time (payload/$param); not bundled",
    "bundle-unsafe-path": "a files path that points outside the bundle",
    "bundle-file-missing": "a step uploads a file that was not generated",
    "bundle-config-module": "a config written for another module than the step's",
    "bundle-config-unused": "a generated config no step uploads",
    "bundle-code-workflow": "experiment.py does not name workflow.yaml",
    "bundle-code-parameter": "experiment.py's parameters do not match the workflow's",
    "bundle-code-payload": "workflow payload.x keys experiment.py does not pass",
    "bundle-no-setup": "the initial lab setup is unknown",
}

TOP_KEYS = {"name", "metadata", "parameters", "flowdef", "modules"}
STEP_KEYS = {
    "name",
    "module",
    "action",
    "args",
    "files",
    "checks",
    "locations",
    "requirements",
    "dependencies",
    "priority",
    "comment",
    "data_labels",
}
LOCATION_ARG_NAMES = {"source", "target", "location"}
_PARAM_REF = re.compile(r"(?<!\$)\$(?:\{(\w+)\}|(\w+))")
_PAYLOAD = re.compile(r"^payload\.(\w[\w.]*)$")
_PAYLOAD_TYPO = re.compile(r"^payload\s*[:/_ ]\s*\w+|^paylod\.|^payloads\.")


class Diagnostic(BaseModel):
    """One finding about a workflow."""

    code: str
    """Stable identifier (see ``CODES``)."""
    severity: Severity
    """``error``: the run would fail or do the wrong thing; ``warning``: legal but suspicious; ``info``: to know."""
    message: str
    """What is wrong, in plain words."""
    step_index: int | None = None
    """0-based index of the step in ``flowdef``."""
    step_name: str | None = None
    """The step's name."""
    field: str | None = None
    """Path of the offending field, e.g. ``flowdef[2].args.source``."""
    hint: str | None = None
    """How to fix it."""
    line: int | None = None
    """1-based line in the file, when known."""
    column: int | None = None
    """1-based column, for parse errors."""


class ValidationReport(BaseModel):
    """All diagnostics for one workflow file."""

    source: str
    """File path or a label."""
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    """Findings in file order."""
    payload_keys: list[str] = Field(default_factory=list)
    """``payload.x`` keys the run will need."""
    parameter_inputs: list[str] = Field(default_factory=list)
    """Parameters without a default (inputs the run must supply)."""

    @property
    def ok(self) -> bool:
        """True when there is no error."""
        return not self.errors

    @property
    def errors(self) -> list[Diagnostic]:
        """Diagnostics with severity error."""
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        """Diagnostics with severity warning."""
        return [d for d in self.diagnostics if d.severity == "warning"]

    def codes(self, severity: Severity | None = None) -> list[str]:
        """The diagnostic codes, optionally of one severity."""
        return [d.code for d in self.diagnostics if severity is None or d.severity == severity]


def _close(word: str, options: list[str] | set[str], cutoff: float = 0.6) -> str | None:
    matches = difflib.get_close_matches(word, sorted(options), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def _did_you_mean(word: str, options: list[str] | set[str], what: str) -> str:
    if (match := _close(word, options)) is not None:
        return f"did you mean '{match}'?"
    listed = ", ".join(sorted(options)[:12]) + (" …" if len(options) > 12 else "")
    return f"known {what}: {listed}" if options else f"there are no {what}"


def _param_refs(text: str) -> list[str]:
    return [a or b for a, b in _PARAM_REF.findall(text)]


@dataclass(frozen=True)
class At:
    """Where a finding is: the step (index and name) and the field path."""

    step: int | None = None
    name: Any = None
    field: str | None = None


NOWHERE = At()


class _Checker:
    """Runs every rule over one parsed workflow document and collects diagnostics."""

    def __init__(self, lab: Lab, source: str, step_lines: list[int], supplied: Mapping[str, Any] | None):
        self.lab = lab
        self.report = ValidationReport(source=source)
        self.step_lines = step_lines
        self.supplied = dict(supplied) if supplied is not None else None
        self.declared: dict[str, Any] = {}
        self.used_params: set[str] = set()
        self.about_warned: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------------------------

    def add(self, code: str, severity: Severity, message: str, at: At = NOWHERE, hint: str | None = None) -> None:
        """Record a finding; the step's line comes from the parsed file."""
        step = at.step
        line = self.step_lines[step] if step is not None and step < len(self.step_lines) else None
        name = at.name if isinstance(at.name, str) else None
        self.report.diagnostics.append(
            Diagnostic(
                code=code,
                severity=severity,
                message=message,
                step_index=step,
                step_name=name,
                field=at.field,
                hint=hint,
                line=line,
            )  # fmt: skip
        )

    def value_of(self, text: str) -> Any:
        """Resolve ``$name`` when the whole string is one reference with a known value, else return as is."""
        refs = _param_refs(text)
        if len(refs) == 1 and text.strip() in (f"${refs[0]}", f"${{{refs[0]}}}"):
            name = refs[0]
            if self.supplied is not None and name in self.supplied:
                return self.supplied[name]
            if self.declared.get(name) not in (None, "", 0, False):
                return self.declared[name]
        return text

    @staticmethod
    def unresolved(value: Any) -> bool:
        return isinstance(value, str) and bool(_param_refs(value))

    # -- top level -----------------------------------------------------------------------------------------------

    def run(self, data: Any) -> ValidationReport:
        if not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            self.add(
                "not-a-mapping",
                "error",
                f"the file is {kind}, not a WEI workflow mapping",
                hint="a workflow has top-level keys name, metadata, parameters and flowdef",
            )
            return self.report
        if "flowdef" not in data and "steps" in data:
            self.add(
                "madsci-format",
                "error",
                "this is a MADSci workflow (steps/node), not a WEI workflow",
                At(field="steps"),
                hint="WEI 0.7 needs 'flowdef' with steps that name a 'module'",
            )
            return self.report
        steps = self.check_top(data)
        if steps is None:
            return self.report
        self.check_parameters(data.get("parameters"))
        for index, step in enumerate(steps):
            self.check_step(index, step)
        self.check_workflow_wide(data, steps)
        self.check_schema(data)
        return self.report

    def check_top(self, data: dict[str, Any]) -> list[Any] | None:
        meta = data.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        if "name" not in data:
            if "name" in meta:
                self.add(
                    "legacy-no-name",
                    "error",
                    "legacy workflow format: the name is only under metadata",
                    At(field="name"),
                    hint=f"add a top-level 'name: {meta['name']}' (required since WEI 0.5)",
                )
            else:
                self.add(
                    "missing-name",
                    "error",
                    "the workflow has no top-level name",
                    At(field="name"),
                    hint="add 'name: <what the workflow does>'",
                )
        elif not isinstance(data["name"], str):
            self.add("step-field-type", "error", "the workflow name must be a string", At(field="name"))
        for key in data:
            if key not in TOP_KEYS:
                self.ignored_top_key(str(key))
        flowdef = data.get("flowdef")
        if flowdef is None:
            self.add("missing-flowdef", "error", "the workflow has no 'flowdef' list of steps", At(field="flowdef"))
            return None
        if not isinstance(flowdef, list):
            self.add(
                "missing-flowdef",
                "error",
                f"'flowdef' must be a list of steps, not {describe_value(flowdef)}",
                At(field="flowdef"),
            )
            return None
        if not flowdef:
            self.add("empty-flowdef", "error", "'flowdef' has no steps", At(field="flowdef"))
        return flowdef

    def ignored_top_key(self, key: str) -> None:
        if key in ("author", "info", "version", "description"):
            hint = f"move '{key}' under metadata"
        elif key == "workcell":
            hint = "legacy (<= 0.3) key; WEI 0.5+ takes the workcell from the server, remove it"
        else:
            hint = "remove it or move it under metadata"
        self.add("ignored-key", "warning", f"top-level key '{key}' is ignored by WEI", At(field=key), hint=hint)

    def check_parameters(self, params: Any) -> None:
        if params is None:
            return
        if not isinstance(params, list):
            self.add("bad-parameter", "error", "'parameters' must be a list of {name, default}", At(field="parameters"))
            return
        for i, item in enumerate(params):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                self.add("bad-parameter", "error", "each parameter needs a 'name'", At(field=f"parameters[{i}]"))
                continue
            self.declared[item["name"]] = item.get("default")
        for name, default in self.declared.items():
            # WEI treats a falsy default as "no default" (wei-formats.md §4.2).
            if default in (None, "", 0, False):
                self.report.parameter_inputs.append(name)
                if self.supplied is not None and name not in self.supplied:
                    self.add(
                        "unsupplied-parameter",
                        "error",
                        f"parameter '{name}' has no default and was not supplied",
                        At(field="parameters"),
                        hint=f"pass a value for '{name}' or give it a default",
                    )
        if self.supplied is None and self.report.parameter_inputs:
            names = ", ".join(self.report.parameter_inputs)
            self.add(
                "parameter-input", "info", f"values must be supplied at run time for: {names}", At(field="parameters")
            )

    # -- steps ---------------------------------------------------------------------------------------------------

    def check_step(self, i: int, step: Any) -> None:
        path = f"flowdef[{i}]"
        if not isinstance(step, dict):
            self.add(
                "step-not-mapping", "error", f"step {i + 1} is {describe_value(step)}, not a mapping", At(i, None, path)
            )
            return
        name = step.get("name")
        self.scan_params(step, i, name, path)
        self.check_step_keys(i, step, name, path)
        if "command" in step and "action" not in step:
            self.add(
                "legacy-command",
                "error",
                "legacy step format: 'command' instead of 'action'",
                At(i, name, f"{path}.command"),
                hint="rename 'command' to 'action' (WEI 0.3.2+)",
            )
        missing = [
            k for k in ("name", "module", "action") if k not in step and not (k == "action" and "command" in step)
        ]
        if missing:
            self.add("step-missing-field", "error", f"step {i + 1} has no {', '.join(missing)}", At(i, name, path))
        for key in ("name", "module", "action", "command"):
            if key in step and not isinstance(step[key], str):
                self.add(
                    "step-field-type",
                    "error",
                    f"'{key}' must be a string, not {describe_value(step[key])}",
                    At(i, name, f"{path}.{key}"),
                )
                return
        module_name = step.get("module")
        if not isinstance(module_name, str):
            return
        module = self.check_module(i, name, path, module_name)
        if module is None:
            self.check_locations_without_about(i, name, path, str(module_name), step.get("args"))
        action_name = step.get("action")
        if module is None or not isinstance(action_name, str):
            return  # legacy steps are reported above; their actions predate every about we know
        action = self.check_action(i, name, path, module, action_name)
        if action is not None:
            self.check_args(i, name, path, module, action, step.get("args"))
            self.check_files(i, name, path, module, action, step.get("files"))
            self.check_result_labels(i, name, path, action, step.get("data_labels"))

    def check_step_keys(self, i: int, step: dict[str, Any], name: Any, path: str) -> None:
        for key in step:
            if key in STEP_KEYS or key == "command":
                continue
            hint = "did you mean 'comment'?" if key == "comments" else _did_you_mean(str(key), STEP_KEYS, "step keys")
            self.add(
                "ignored-key", "warning", f"step key '{key}' is ignored by WEI", At(i, name, f"{path}.{key}"), hint=hint
            )
        checks = step.get("checks")
        if checks is not None:
            self.add(
                "unused-key",
                "warning",
                f"'checks: {checks}' is never evaluated by WEI",
                At(i, name, f"{path}.checks"),
                hint="remove it; WEI 0.7 does not run checks",
            )
        for key in ("requirements", "dependencies", "priority"):
            if step.get(key):
                self.add(
                    "unused-key", "warning", f"'{key}' is accepted but unused by WEI", At(i, name, f"{path}.{key}")
                )
        if step.get("locations"):
            self.add(
                "unused-key",
                "warning",
                "'locations' is filled by the WEI engine; values written here are replaced",
                At(i, name, f"{path}.locations"),
                hint="put location names in args instead",
            )

    def scan_params(self, step: dict[str, Any], i: int, name: Any, path: str) -> None:
        """Find every $name: string fields, args keys and values (recursively), list elements, files."""
        for key in ("name", "module", "action", "comment", "checks"):
            if isinstance(step.get(key), str):
                self.param_refs_in(step[key], i, name, f"{path}.{key}")
        for sub_path, value, in_list in _walk(step.get("args"), f"{path}.args"):
            if isinstance(value, str):
                self.param_refs_in(value, i, name, sub_path, in_list=in_list)
        files = step.get("files")
        if isinstance(files, dict):
            for key, value in files.items():
                if isinstance(value, str) and _param_refs(value):
                    self.add(
                        "param-in-list",
                        "warning",
                        f"files.{key} uses '{value}', which WEI does not substitute",
                        At(i, name, f"{path}.files.{key}"),
                        hint="give the file path directly or use payload.<key>",
                    )

    def param_refs_in(self, text: str, i: int, name: Any, field: str, *, in_list: bool = False) -> None:
        for ref in _param_refs(text):
            self.used_params.add(ref)
            if ref not in self.declared:
                hint = f"add '- name: {ref}' under parameters"
                if (match := _close(ref, set(self.declared))) is not None:
                    hint = f"did you mean '${match}'? otherwise {hint}"
                self.add(
                    "undeclared-parameter",
                    "error",
                    f"'${ref}' is used but not declared in parameters",
                    At(i, name, field),
                    hint=hint,
                )
            elif in_list:
                self.add(
                    "param-in-list",
                    "warning",
                    f"'${ref}' inside a list is not substituted by WEI",
                    At(i, name, field),
                    hint="use a parameter for the whole list instead",
                )

    def check_module(self, i: int, name: Any, path: str, raw: str) -> LabModule | None:
        field = f"{path}.module"
        value = self.value_of(raw)
        if self.unresolved(value):
            self.add(
                "unresolved-module",
                "warning",
                f"module '{raw}' is a parameter without a value; not checked",
                At(i, name, field),
            )
            return None
        if _PAYLOAD.match(str(value)):
            self.add(
                "payload-in-module",
                "error",
                f"module '{value}' is never substituted by WEI (only args are)",
                At(i, name, field),
                hint="use a $parameter (WEI 0.7.2+) or write the module name",
            )
            return None
        module = self.lab.module(str(value))
        if module is None:
            names = list(self.lab.modules)
            same_case = [m for m in names if m.lower() == str(value).lower()]
            if same_case:
                self.add(
                    "module-case",
                    "error",
                    f"module '{value}' is not in the workcell; names are case-sensitive",
                    At(i, name, field),
                    hint=f"did you mean '{same_case[0]}'?",
                )
            else:
                self.add(
                    "unknown-module",
                    "error",
                    f"module '{value}' is not in workcell {self.lab.workcell.name}",
                    At(i, name, field),
                    hint=_did_you_mean(str(value), names, "modules"),
                )
            return None
        if not module.definition.active:
            self.add(
                "inactive-module",
                "warning",
                f"module '{value}' is marked inactive in the workcell",
                At(i, name, field),
                hint="WEI 0.7 does not load inactive modules; activate it",
            )
        if module.about is None:
            if module.name not in self.about_warned:
                self.about_warned.add(module.name)
                self.add(
                    "about-unavailable",
                    "warning",
                    f"no usable about for '{module.name}' ({module.about_problem}); its steps are not checked",
                    At(i, name, field),
                )
            return None
        return module

    def check_locations_without_about(self, i: int, name: Any, path: str, module_name: str, args: Any) -> None:
        """Without an about we do not know the arg types, but source/target still name the module's locations."""
        mod = self.lab.module(module_name)
        if mod is None or mod.about is not None or not isinstance(args, dict) or not self.lab.locations(module_name):
            return
        for key in LOCATION_ARG_NAMES & set(args):
            value = args[key]
            known = isinstance(value, str) and not self.unresolved(value) and not _PAYLOAD.match(value)
            if known and value not in self.lab.locations(module_name):
                self.check_location(i, name, f"{path}.args.{key}", module_name, value, True)

    def check_action(self, i: int, name: Any, path: str, module: LabModule, raw: str) -> ModuleAction | None:
        assert module.about is not None
        field = f"{path}.action"
        value = self.value_of(raw)
        if self.unresolved(value):
            self.add(
                "unresolved-module",
                "warning",
                f"action '{raw}' is a parameter without a value; not checked",
                At(i, name, field),
            )
            return None
        action = module.about.action(str(value))
        if action is None:
            names = [a.name for a in module.about.actions]
            self.add(
                "unknown-action",
                "error",
                f"module '{module.name}' has no action '{value}'",
                At(i, name, field),
                hint=_did_you_mean(str(value), names, f"actions of {module.name}"),
            )
        return action

    # -- args ----------------------------------------------------------------------------------------------------

    def check_args(self, i: int, name: Any, path: str, module: LabModule, action: ModuleAction, args: Any) -> None:
        if args is None:
            args = {}
        if not isinstance(args, dict):
            self.add(
                "schema", "error", f"'args' must be a mapping, not {describe_value(args)}", At(i, name, f"{path}.args")
            )
            return
        trusted = module.required_flags_trusted
        file_names = {f.name for f in action.files}
        for arg in action.args:
            required = arg.required if trusted else arg.default is None
            if required and arg.name not in args:
                self.missing_arg(i, name, path, module, action, arg, args, trusted)
        known = {a.name for a in action.args}
        for key, raw in args.items():
            key_text = str(self.value_of(str(key)))
            arg_path = f"{path}.args.{key}"
            self.check_payload(i, name, arg_path, raw)
            spec = action.arg(key_text)
            if spec is None:
                if not self.unresolved(key_text):
                    self.unknown_arg(i, name, arg_path, action, key_text, known, file_names)
                continue
            self.check_arg_value(i, name, arg_path, module, spec, self.value_of(raw) if isinstance(raw, str) else raw)
        source, target = args.get("source"), args.get("target")
        if isinstance(source, str) and source == target:
            self.add(
                "same-source-target", "warning", f"source and target are both '{source}'", At(i, name, f"{path}.args")
            )

    def missing_arg(
        self,
        i: int,
        name: Any,
        path: str,
        module: LabModule,
        action: ModuleAction,
        arg: ModuleActionArg,
        args: dict[str, Any],
        trusted: bool,
    ) -> None:
        hint = f"add '{arg.name}: <{arg.type}>'" + (f" ({arg.description})" if arg.description else "")
        if (typo := _close(arg.name, {str(k) for k in args}, cutoff=0.75)) is not None:
            hint = f"'{typo}' looks like a misspelling of '{arg.name}'"
        if trusted:
            self.add(
                "missing-required-arg",
                "error",
                f"{module.name}.{action.name} requires arg '{arg.name}'",
                At(i, name, f"{path}.args"),
                hint=hint,
            )
        else:
            self.add(
                "missing-required-arg",
                "warning",
                f"{module.name}.{action.name} arg '{arg.name}' has no default, so it is probably required "
                "(this about marks no arg required, as WEI 0.7.3+ does for every module)",
                At(i, name, f"{path}.args"),
                hint=hint,
            )

    def unknown_arg(
        self,
        i: int,
        name: Any,
        arg_path: str,
        action: ModuleAction,
        key: str,
        known: set[str],
        file_names: set[str],
    ) -> None:
        if key in file_names:
            hint = f"'{key}' is a file parameter: put it under files:, not args:"
        elif known:
            hint = _did_you_mean(key, known, f"args of {action.name}")
        else:
            hint = f"{action.name} takes no args"
        self.add(
            "unknown-arg",
            "warning",
            f"{action.name} has no arg '{key}'; the module ignores it",
            At(i, name, arg_path),
            hint=hint,
        )

    def check_arg_value(
        self, i: int, name: Any, arg_path: str, module: LabModule, spec: ModuleActionArg, value: Any
    ) -> None:
        if self.unresolved(value) or (isinstance(value, str) and (_PAYLOAD.match(value) or _PAYLOAD_TYPO.match(value))):
            return  # known only at run time
        table = self.lab.locations(module.name)
        if isinstance(value, str) and value in table:
            return  # WEI replaces any arg value that names one of the module's locations by its coordinates
        if value is None and not (spec.required and module.required_flags_trusted):
            return  # null is what the module gets by default anyway (``x: int = None`` in its source)
        type_node = parse_type(spec.type)
        location_arg = (
            is_coordinate_type(type_node)
            or (spec.name in LOCATION_ARG_NAMES and bool(table))
            or (isinstance(value, str) and value in self.lab.all_location_names())
        )
        if location_arg and isinstance(value, str):
            self.check_location(i, name, arg_path, module.name, value, accepts_string(type_node))
            return
        fit = check_value(type_node, value)
        if fit is Fit.MISMATCH:
            required = " (required, no default)" if value is None else ""
            self.add(
                "arg-type-mismatch",
                "error",
                f"'{spec.name}'{required} expects {type_node}, got {describe_value(value)}",
                At(i, name, arg_path),
                hint=spec.description or None,
            )
        elif fit is Fit.COERCIBLE:
            self.add(
                "arg-type-coerced",
                "warning",
                f"'{spec.name}' expects {type_node}, got {describe_value(value)}; it works only if the module "
                "converts it",
                At(i, name, arg_path),
            )

    def check_location(
        self,
        i: int,
        name: Any,
        arg_path: str,
        module: str,
        value: str,
        takes_string: bool,
    ) -> None:
        table = self.lab.locations(module)
        if value in table:
            return
        elsewhere = sorted(m for m, t in self.lab.workcell.locations.items() if value in (t or {}))
        typo = _close(value, set(table), cutoff=0.8)
        if elsewhere:
            message = f"'{value}' is a location of {', '.join(elsewhere)}, not of {module}"
        elif table:
            message = f"'{value}' is not a location of {module}"
        else:
            message = f"'{value}' is not a location: {module} has no location table in the workcell"
        hint = f"did you mean '{typo}'?" if typo else _did_you_mean(value, set(table), f"locations of {module}")
        if takes_string and not typo and not elsewhere:
            # The module also takes raw strings (device-internal names such as 'Stack4'): legal, but worth a look.
            self.add(
                "unknown-location",
                "warning",
                message + "; it is passed to the module as a plain string",
                At(i, name, arg_path),
                hint=hint,
            )
        else:
            self.add("unknown-location", "error", message, At(i, name, arg_path), hint=hint)

    def check_payload(self, i: int, name: Any, arg_path: str, raw: Any) -> None:
        if isinstance(raw, str):
            if match := _PAYLOAD.match(raw):
                key = match.group(1)
                if key not in self.report.payload_keys:
                    self.report.payload_keys.append(key)
                self.add(
                    "payload-ref",
                    "warning",
                    f"'{raw}' needs payload key '{key}' at run time (deprecated)",
                    At(i, name, arg_path),
                    hint=f"declare a parameter '{key.replace('.', '_')}' and use '${key.replace('.', '_')}'",
                )
            elif _PAYLOAD_TYPO.match(raw):
                self.add(
                    "payload-typo",
                    "warning",
                    f"'{raw}' looks like a mistyped payload reference",
                    At(i, name, arg_path),
                    hint="write payload.<key>; anything else reaches the module as text",
                )
            return
        for sub_path, value, _ in _walk(raw, arg_path):
            if isinstance(value, str) and value.startswith("payload."):
                self.add(
                    "payload-not-substituted",
                    "warning",
                    f"'{value}' is nested; WEI substitutes only top-level arg values",
                    At(i, name, sub_path),
                )

    # -- files and results ---------------------------------------------------------------------------------------

    def check_files(self, i: int, name: Any, path: str, module: LabModule, action: ModuleAction, files: Any) -> None:
        files = files or {}
        if not isinstance(files, dict):
            self.add(
                "schema",
                "error",
                f"'files' must be a mapping, not {describe_value(files)}",
                At(i, name, f"{path}.files"),
            )
            return
        trusted = module.required_flags_trusted or not action.args
        for spec in action.files:
            if spec.name not in files and (spec.required or not trusted):
                self.add(
                    "missing-required-file",
                    "error" if spec.required else "warning",
                    f"{module.name}.{action.name} needs file '{spec.name}'",
                    At(i, name, f"{path}.files"),
                    hint=f"add 'files: {{{spec.name}: <path>}}'"
                    + (f" ({spec.description})" if spec.description else ""),
                )
        known = {f.name for f in action.files}
        for key, value in files.items():
            if not isinstance(value, str):
                self.add(
                    "file-not-string",
                    "error",
                    f"files.{key} must be a path, not {describe_value(value)}",
                    At(i, name, f"{path}.files.{key}"),
                )
            if key not in known:
                self.add(
                    "unknown-file",
                    "warning",
                    f"{action.name} takes no file '{key}'",
                    At(i, name, f"{path}.files.{key}"),
                    hint=_did_you_mean(str(key), known, "file parameters"),
                )

    def check_result_labels(self, i: int, name: Any, path: str, action: ModuleAction, labels: Any) -> None:
        if not isinstance(labels, dict) or not action.results:
            return
        known = {r.label for r in action.results}
        for key in labels:
            if key not in known:
                self.add(
                    "unknown-result-label",
                    "warning",
                    f"{action.name} returns no result '{key}'",
                    At(i, name, f"{path}.data_labels.{key}"),
                    hint=_did_you_mean(str(key), known, "results"),
                )

    # -- whole workflow ------------------------------------------------------------------------------------------

    def check_workflow_wide(self, data: dict[str, Any], steps: list[Any]) -> None:
        labels: dict[str, int] = {}
        names = Counter(s.get("name") for s in steps if isinstance(s, dict) and isinstance(s.get("name"), str))
        seen_names: set[str] = set()
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            step_name = step.get("name")
            if isinstance(step_name, str) and names[step_name] > 1 and step_name in seen_names:
                self.add(
                    "duplicate-step-name",
                    "warning",
                    f"step name '{step_name}' is used {names[step_name]} times",
                    At(i, step_name, f"flowdef[{i}].name"),
                    hint="give each step its own name so logs and results are unambiguous",
                )
            if isinstance(step_name, str):
                seen_names.add(step_name)
            self.check_data_labels(i, step_name, step.get("data_labels"), labels)
        for unused in sorted(set(self.declared) - self.used_params):
            self.add(
                "unused-parameter",
                "warning",
                f"parameter '{unused}' is declared but never used",
                At(field="parameters"),
            )
        self.check_modules_list(data.get("modules"), steps)

    def check_data_labels(self, i: int, step_name: Any, data_labels: Any, seen: dict[str, int]) -> None:
        """Labels must be strings, unique across the workflow (WEI's workflow-level validator)."""
        if not isinstance(data_labels, dict):
            return
        for key, label in data_labels.items():
            at = At(i, step_name, f"flowdef[{i}].data_labels.{key}")
            if not isinstance(label, str):
                self.add(
                    "step-field-type",
                    "error",
                    f"data label for '{key}' must be a string, not {describe_value(label)}",
                    at,
                )
            elif label in seen:
                self.add(
                    "duplicate-data-label",
                    "error",
                    f"data label '{label}' is already used by step {seen[label] + 1}",
                    at,
                    hint="data labels must be unique across the workflow",
                )
            else:
                seen[label] = i

    def check_modules_list(self, listed: Any, steps: list[Any]) -> None:
        if not isinstance(listed, list):
            return
        names = {str(m.get("name") if isinstance(m, dict) else m) for m in listed}
        used = {str(s["module"]) for s in steps if isinstance(s, dict) and isinstance(s.get("module"), str)}
        used = {u for u in used if not _param_refs(u) and not u.startswith("payload.")}
        if missing := sorted(used - names):
            self.add(
                "modules-list-mismatch",
                "warning",
                f"the deprecated modules list lacks {', '.join(missing)}",
                At(field="modules"),
                hint="remove the modules list; WEI 0.7 does not use it",
            )
        if extra := sorted(names - used):
            self.add(
                "modules-list-mismatch",
                "warning",
                f"the modules list names unused modules: {', '.join(extra)}",
                At(field="modules"),
                hint="remove the modules list; WEI 0.7 does not use it",
            )

    def check_schema(self, data: dict[str, Any]) -> None:
        """Report what WEI's own model would reject and no rule above covered (one line per problem)."""
        if any(d.severity == "error" for d in self.report.diagnostics):
            return  # the structural rules have already said what is wrong
        try:
            Workflow.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                loc = ".".join(str(p) for p in err["loc"])
                self.add("schema", "error", f"{loc}: {err['msg']}", At(field=loc))


def _walk(value: Any, path: str, in_list: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """Yield (path, value, inside_a_list) for every nested key and value of args."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield f"{path}.{key}", key, in_list
            yield from _walk(sub, f"{path}.{key}", in_list)
    elif isinstance(value, list):
        for n, sub in enumerate(value):
            yield from _walk(sub, f"{path}[{n}]", True)
    else:
        yield path, value, in_list


# ---------------------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------------------


def validate_data(
    data: Any,
    lab: Lab,
    *,
    source: str = "<workflow>",
    step_lines: list[int] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> ValidationReport:
    """Validate already-parsed workflow data against ``lab``.

    ``parameters``: values that will be supplied at run time; when given, a parameter without default that is
    missing from it is an error.
    """
    return _Checker(lab, source, step_lines or [], parameters).run(data)


def validate_text(
    text: str, lab: Lab, *, source: str = "<workflow>", parameters: Mapping[str, Any] | None = None
) -> ValidationReport:
    """Validate workflow YAML text; a syntax error is reported as a ``yaml-parse`` diagnostic with line and column."""
    try:
        loaded: LoadedYaml = parse_yaml(text, source)
    except InputError as exc:
        report = ValidationReport(source=source)
        report.diagnostics.append(
            Diagnostic(
                code="yaml-parse",
                severity="error",
                message=exc.message,
                line=exc.line,
                column=exc.column,
                hint="fix the YAML syntax at that line (indentation, a missing ':' or quotes)",
            )
        )
        return report
    return validate_data(loaded.data, lab, source=source, step_lines=loaded.step_lines, parameters=parameters)


def validate_file(path: Path, lab: Lab, *, parameters: Mapping[str, Any] | None = None) -> ValidationReport:
    """Validate a workflow file; an unreadable file raises :class:`InputError` (the caller cannot go on)."""
    return validate_text(read_text(path), lab, source=str(path), parameters=parameters)


def validate_workflow(
    workflow: Workflow, lab: Lab, *, source: str = "<generated>", parameters: Mapping[str, Any] | None = None
) -> ValidationReport:
    """Validate a workflow model (as generated) by validating its YAML rendering, so lines match what users see."""
    return validate_text(workflow.to_yaml(), lab, source=source, parameters=parameters)
