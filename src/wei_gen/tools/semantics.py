"""Action semantics: what a module's action needs from labware and does to it, in a declarative YAML format.

wei-gen ships semantics for the common WEI module types (``data/semantics.yaml``); a lab's ``semantics.yaml`` (same
format) is matched first and may name each instrument's nest locations. A module is matched by its workcell name, its
about name or its model (case-insensitive substring of any ``match`` pattern). Actions without semantics are
"unchecked": they change nothing in the flow model and are reported, never silently "ok".
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from wei_gen.lab import Lab, LabModule
from wei_gen.yamlio import InputError, parse_yaml, read_text

Kind = Literal["move", "new_plate", "process", "dispose", "store", "retrieve", "lid_off", "lid_on", "noop"]
PlateState = Literal["sealed", "lid"]
_NOT_A_NEST = {"safe", "path", "approach", "above", "height", "home"}


class SemanticsError(InputError):
    """A semantics file is unusable."""


class ActionSemantics(BaseModel):
    """What one action needs and does."""

    kind: Kind
    """The kind of effect (see the shipped semantics.yaml)."""
    source: str | None = None
    """``move``: the arg (or location) the plate comes from."""
    target: str | None = None
    """``move``: the arg (or location) the plate goes to."""
    at: str | None = None
    """Other kinds: the arg or location acted on; default: the module's nest(s)."""
    requires: dict[PlateState, bool] = Field(default_factory=dict)
    """Plate state needed before the action (e.g. ``sealed: true`` for a thermocycler)."""
    sets: dict[PlateState, bool] = Field(default_factory=dict)
    """Plate state after the action (e.g. ``sealed: true`` for a sealer)."""
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Inclusive bounds of numeric args."""


class ModuleSemantics(BaseModel):
    """Semantics of one module type."""

    id: str
    """A name for messages."""
    match: list[str]
    """Patterns matched against the workcell module name, the about name and the model."""
    actions: dict[str, ActionSemantics]
    """Per action name."""


class SemanticsFile(BaseModel):
    """A semantics file."""

    version: int = 1
    """Format version."""
    modules: list[ModuleSemantics] = Field(default_factory=list)
    """Module types, matched in order."""
    nests: dict[str, list[str]] = Field(default_factory=dict)
    """Explicit nest locations per workcell module name."""


def parse_semantics(text: str, source: str) -> SemanticsFile:
    """Parse and validate a semantics file."""
    try:
        data = parse_yaml(text, source).data
    except InputError as exc:
        raise SemanticsError(exc.message, source=exc.source, line=exc.line, column=exc.column) from None
    try:
        return SemanticsFile.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SemanticsError(f"not a semantics file: {where}: {err['msg']}", source=source) from None


@cache
def default_semantics() -> SemanticsFile:
    """The semantics wei-gen ships."""
    text = resources.files("wei_gen").joinpath("data/semantics.yaml").read_text(encoding="utf-8")
    return parse_semantics(text, "wei_gen/data/semantics.yaml")


def load_semantics(path: Path) -> SemanticsFile:
    """Load a lab's semantics file."""
    return parse_semantics(read_text(path), str(path))


class LabSemantics:
    """Semantics resolved for one lab: per module, its matched type and its nest locations."""

    def __init__(self, lab: Lab, overrides: SemanticsFile | None = None):
        """Match lab overrides first, then the shipped semantics."""
        if overrides is None and lab.semantics_path is not None:
            overrides = load_semantics(lab.semantics_path)
        self.lab = lab
        self.files = [f for f in (overrides, default_semantics()) if f is not None]
        self._types = {name: self._match(module) for name, module in lab.modules.items()}

    def _match(self, module: LabModule) -> ModuleSemantics | None:
        names = [module.name, module.definition.model or ""]
        if module.about is not None:
            names += [module.about.name, module.about.model or ""]
        haystack = [n.lower() for n in names if n]
        for file in self.files:
            for entry in file.modules:
                if any(p.lower() in h for p in entry.match for h in haystack):
                    return entry
        return None

    def module_type(self, module: str) -> ModuleSemantics | None:
        """The semantics entry a module matched, if any."""
        return self._types.get(module)

    def action(self, module: str, action: str) -> ActionSemantics | None:
        """Semantics of one action, or None (unchecked)."""
        entry = self._types.get(module)
        return entry.actions.get(action) if entry else None

    def nests(self, module: str) -> list[str]:
        """Where the instrument holds the plate: explicit nests, else locations named after the module."""
        for file in self.files:
            if module in file.nests:
                return list(file.nests[module])
        return nests_by_name(module, sorted(self.lab.all_location_names()))


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[._\-\s]+", name.lower()) if t]


def nests_by_name(module: str, locations: list[str]) -> list[str]:
    """Locations whose name says they belong to ``module`` (``sealer.default``, ``bio_biometra3_nest``).

    A location belongs to a module when every significant token of the module name (not a generic prefix such as
    ``bio`` or a bare number) is a token of the location name; approach paths and safe heights are not nests.
    """
    generic = {"bio", "module", "node"}
    wanted = [t for t in _tokens(module) if t not in generic and not t.isdigit()] or _tokens(module)
    found = []
    for location in locations:
        tokens = _tokens(location)
        if _NOT_A_NEST & set(tokens):
            continue
        if all(any(tok == w or tok.startswith(w) and tok[len(w) :].isdigit() for tok in tokens) for w in wanted):
            found.append(location)
    return found
