"""The user's lab: a workcell plus each module's about, loaded from a directory, explicit files or a live WEI.

Everything wei-gen generates is checked against a :class:`Lab`. A module whose about cannot be had is kept as
"unknown" (its steps are checked only for what the workcell says), as WEI itself does.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from wei_gen.typestr import is_coordinate_type, parse_type
from wei_gen.wei_types import ModuleAbout, ModuleAction, ModuleDefinition, Workcell
from wei_gen.yamlio import InputError, load_json_file, load_yaml_file

AboutStatus = Literal["ok", "missing", "failed"]
WORKCELL_FILE_NAMES = ("workcell.yaml", "workcell.yml")


class LabError(InputError):
    """The lab description is unusable (missing or malformed workcell or about)."""


@dataclass
class LabModule:
    """A workcell module together with what its about says (or why there is none)."""

    definition: ModuleDefinition
    about: ModuleAbout | None = None
    about_status: AboutStatus = "missing"
    about_problem: str = "no about file"

    @property
    def name(self) -> str:
        """The workcell name steps use."""
        return self.definition.name

    @property
    def required_flags_trusted(self) -> bool:
        """False when the about marks no arg required at all: WEI 0.7.3+ reports every arg ``required: false``.

        Then "no default => required" is the better guess (wei-formats.md §3.3).
        """
        args = [arg for action in (self.about.actions if self.about else []) for arg in action.args]
        return not args or any(arg.required for arg in args)


@dataclass
class Lab:
    """A workcell, the abouts of its modules, and where optional extras live."""

    workcell: Workcell
    modules: dict[str, LabModule]
    source: str = ""
    semantics_path: Path | None = None
    example_paths: list[Path] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """What the loader assumed about a legacy workcell (empty for a WEI 0.5+ file)."""
        extra = self.workcell.metadata.__pydantic_extra__ or {}
        return list(extra.get("wei_gen_notes", []))

    def module(self, name: str) -> LabModule | None:
        """Return the module called exactly ``name``."""
        return self.modules.get(name)

    def locations(self, module: str) -> dict[str, Any]:
        """The location table of ``module`` (name -> coordinates), empty when it has none."""
        return self.workcell.locations.get(module) or {}

    def all_location_names(self) -> set[str]:
        """Every location name of any module."""
        return {name for table in self.workcell.locations.values() for name in (table or {})}

    def action(self, module: str, action: str) -> ModuleAction | None:
        """Return a module's action from its about, if both are known."""
        mod = self.modules.get(module)
        return mod.about.action(action) if mod and mod.about else None


# ---------------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------------


def load_workcell(path: Path) -> Workcell:
    """Load and check a workcell file: a mapping with a name and at least one module."""
    try:
        data = load_yaml_file(path).data
    except InputError as exc:
        raise LabError(exc.message, source=exc.source, line=exc.line, column=exc.column) from None
    if not isinstance(data, dict):
        raise LabError("a workcell file must be a YAML mapping with name, config and modules", source=str(path))
    if not data.get("modules"):
        raise LabError("the workcell has no modules (expected a non-empty 'modules:' list)", source=str(path))
    data.setdefault("config", {})  # WEI requires the key but accepts {}; real files sometimes omit it
    notes = _upgrade_legacy_workcell(data, path)
    try:
        workcell = Workcell.model_validate(data)
    except ValidationError as exc:
        raise LabError(f"not a WEI workcell: {_first_errors(exc)}", source=str(path)) from None
    names = [m.name for m in workcell.modules]
    for key in workcell.locations:
        if key not in names and key not in ("workcell", "wc"):
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean '{close[0]}'? WEI looks tables up by exact module name)" if close else ""
            notes.append(f"location table '{key}' belongs to no module{hint}")
    workcell.metadata.__pydantic_extra__ = {
        **(workcell.metadata.__pydantic_extra__ or {}),
        "wei_gen_notes": notes,
    }
    return workcell


def _upgrade_legacy_workcell(data: dict[str, Any], path: Path) -> list[str]:
    """Read a legacy (<= 0.3) workcell as WEI 0.5+ would need it; return notes saying what was assumed.

    Legacy files have no ``name``, give modules a ``type`` instead of ``interface`` and keep ``positions`` per module
    instead of a top-level ``locations`` table. We keep such labs usable (so their workflows get legacy diagnostics
    instead of a refusal), and say so.
    """
    notes: list[str] = []
    if "name" not in data:
        meta = data.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        data["name"] = str(meta.get("name") or path.stem)
        notes.append(f"legacy workcell: no top-level name (using '{data['name']}')")
    locations = data.setdefault("locations", {}) if isinstance(data.get("locations", {}), dict) else {}
    for module in data.get("modules") or []:
        if not isinstance(module, dict):
            continue
        if "type" in module and "interface" not in module:
            module["interface"] = str(module["type"])
            notes.append(f"legacy module '{module.get('name')}': 'type' read as interface")
        if isinstance(module.get("positions"), dict) and module.get("name"):
            table = locations.setdefault(str(module["name"]), {})
            table.update({f"{module['name']}.positions.{k}": v for k, v in module["positions"].items()})
            notes.append(f"legacy module '{module['name']}': positions read as locations")
    return notes


def parse_about(data: Any, source: str) -> ModuleAbout:
    """Validate about JSON; a legacy or foreign shape raises :class:`LabError` with a hint."""
    if isinstance(data, dict) and "About" in data:
        raise LabError(
            "legacy pre-0.5 about format ({'About': ...}); the module needs a WEI 0.5+ /about", source=source
        )
    if isinstance(data, dict) and data.get("detail") == "Not Found":
        raise LabError("the module answered 'Not Found' for /about", source=source)
    try:
        return ModuleAbout.model_validate(data)
    except ValidationError as exc:
        raise LabError(f"not a WEI module about: {_first_errors(exc)}", source=source) from None


def load_about_file(path: Path) -> ModuleAbout:
    """Load one about JSON file."""
    try:
        data = load_json_file(path)
    except InputError as exc:
        raise LabError(exc.message, source=exc.source, line=exc.line, column=exc.column) from None
    return parse_about(data, str(path))


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{loc}: {err['msg']}")
    more = f" (+{exc.error_count() - limit} more)" if exc.error_count() > limit else ""
    return "; ".join(parts) + more


def _attach(module: ModuleDefinition, about_path: Path | None, *, strict: bool) -> LabModule:
    if about_path is None:
        return LabModule(module, None, "missing", "no about file for this module")
    try:
        return LabModule(module, load_about_file(about_path), "ok", "")
    except LabError as exc:
        if strict:
            raise
        return LabModule(module, None, "failed", str(exc))


def lab_from_files(
    workcell_path: Path,
    about_paths: Mapping[str, Path | None],
    *,
    strict: bool = True,
    source: str = "",
) -> Lab:
    """Build a lab from a workcell file and an explicit module-name -> about-file mapping.

    Modules absent from the mapping (or mapped to ``None``) are "unknown". With ``strict``, an about file that
    exists but is broken is an error; otherwise that module becomes unknown, as WEI does.
    """
    workcell = load_workcell(workcell_path)
    modules = {m.name: _attach(m, about_paths.get(m.name), strict=strict) for m in workcell.modules}
    return Lab(workcell=workcell, modules=modules, source=source or str(workcell_path))


def _about_in_dir(abouts_dir: Path, module: str) -> Path | None:
    for name in (f"{module}.json", f"{module}.about.json"):
        if (candidate := abouts_dir / name).is_file():
            return candidate
    return None


def lab_from_workcell_and_abouts(workcell_path: Path, abouts_dir: Path, *, strict: bool = True) -> Lab:
    """Build a lab from a workcell file and a folder of ``<module name>.json`` abouts."""
    if not abouts_dir.is_dir():
        raise LabError("abouts folder not found", source=str(abouts_dir))
    workcell = load_workcell(workcell_path)
    paths = {m.name: _about_in_dir(abouts_dir, m.name) for m in workcell.modules}
    return lab_from_files(workcell_path, paths, strict=strict)


def lab_from_dir(lab_dir: Path, *, strict: bool = True) -> Lab:
    """Load a lab directory: workcell.yaml, abouts/<module>.json, optional semantics.yaml and examples/."""
    if not lab_dir.is_dir():
        raise LabError("lab directory not found", source=str(lab_dir))
    workcell_path = next((lab_dir / n for n in WORKCELL_FILE_NAMES if (lab_dir / n).is_file()), None)
    if workcell_path is None:
        raise LabError("no workcell.yaml in the lab directory", source=str(lab_dir))
    abouts_dir = lab_dir / "abouts"
    workcell = load_workcell(workcell_path)
    paths = {m.name: _about_in_dir(abouts_dir, m.name) if abouts_dir.is_dir() else None for m in workcell.modules}
    lab = lab_from_files(workcell_path, paths, strict=strict, source=str(lab_dir))
    semantics = lab_dir / "semantics.yaml"
    lab.semantics_path = semantics if semantics.is_file() else None
    examples = lab_dir / "examples"
    if examples.is_dir():
        lab.example_paths = sorted([*examples.glob("*.yaml"), *examples.glob("*.yml")])
    return lab


def lab_from_live(workcell_path: Path, *, timeout: float = 5.0, client: httpx.Client | None = None) -> Lab:
    """Load a workcell file and fetch each active module's ``GET /about``.

    A module that cannot be reached, answers with an error or with something that is not an about is "unknown"
    (with the reason kept), as WEI treats it; the run does not stop.
    """
    workcell = load_workcell(workcell_path)
    own_client = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        # Ask all modules at once: a lab with several unreachable modules should not wait for each in turn.
        with ThreadPoolExecutor(max_workers=min(16, len(workcell.modules))) as pool:
            fetched = list(pool.map(lambda m: _fetch_about(http, m), workcell.modules))
        modules = {m.name: lab_module for m, lab_module in zip(workcell.modules, fetched, strict=True)}
    finally:
        if own_client:
            http.close()
    return Lab(workcell=workcell, modules=modules, source=f"live:{workcell_path}")


def _fetch_about(http: httpx.Client, module: ModuleDefinition) -> LabModule:
    address = module.rest_address
    if not module.active:
        return LabModule(module, None, "missing", "module is inactive; its about was not fetched")
    if not address:
        return LabModule(module, None, "missing", f"no rest_node_address (interface {module.interface})")
    url = address.rstrip("/") + "/about"
    try:
        response = http.get(url)
    except httpx.TimeoutException:
        return LabModule(module, None, "failed", f"GET {url} timed out")
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return LabModule(module, None, "failed", f"GET {url} failed: {type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return LabModule(module, None, "failed", f"GET {url} answered HTTP {response.status_code}")
    try:
        about = parse_about(response.json(), url)
    except (json.JSONDecodeError, ValueError):
        return LabModule(module, None, "failed", f"GET {url} did not return JSON")
    except LabError as exc:
        return LabModule(module, None, "failed", str(exc))
    return LabModule(module, about, "ok", "")


# ---------------------------------------------------------------------------------------------------------------------
# Rendering for prompts
# ---------------------------------------------------------------------------------------------------------------------


def _is_location_arg(module: str, lab: Lab, arg: Any) -> bool:
    return is_coordinate_type(parse_type(arg.type)) and bool(lab.locations(module))


def _render_arg(module: str, lab: Lab, arg: Any) -> str:
    type_text = "location" if _is_location_arg(module, lab, arg) else str(parse_type(arg.type))
    text = f"{arg.name}: {type_text}"
    if arg.default is None and arg.required:
        return text + "*"
    if arg.default is not None:
        text += f" = {json.dumps(arg.default)}"
    return text


def _short(text: str | None, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_capability_cards(lab: Lab) -> str:
    """Render the lab compactly for prompts: per module what it is, its actions and args, and its locations.

    ``*`` marks a required arg; ``location`` means "a location name from this module's list".
    """
    lines = [f"Workcell {lab.workcell.name}. Args marked * are required; 'location' args take a name from the list."]
    for name, mod in lab.modules.items():
        about = mod.about
        what = _short(about.description if about else "") or (mod.definition.model or "")
        status = "" if mod.definition.active else " [inactive]"
        lines.append(f"\n## {name}{status} — {what} (model {mod.definition.model or (about and about.model) or '?'})")
        if about is None:
            lines.append(f"  actions unknown: {mod.about_problem}")
        for action in about.actions if about else []:
            args = ", ".join(_render_arg(name, lab, a) for a in action.args)
            files = "".join(f"; file {f.name}{'*' if f.required else ''}" for f in action.files)
            results = "".join(f" -> {r.label}" for r in action.results)
            desc = _short(action.description, 70)
            lines.append(f"  - {action.name}({args}{files}){results}" + (f"  # {desc}" if desc else ""))
            # Required args are what a model must fill in: their units and allowed values matter (°C, 'tower1').
            lines += [
                f"      {a.name}: {_short(a.description, 90)}"
                for a in action.args
                if a.required and a.description and not _is_location_arg(name, lab, a)
            ]
        if locs := lab.locations(name):
            lines.append(f"  locations: {', '.join(locs)}")
    return "\n".join(lines) + "\n"


def raw_lab_json(lab: Lab) -> str:
    """The same lab as a raw JSON dump (workcell + abouts), the predecessor's prompt format, for size comparison."""
    return json.dumps(
        {
            "workcell": lab.workcell.model_dump(mode="json"),
            "abouts": {n: m.about.model_dump(mode="json") if m.about else None for n, m in lab.modules.items()},
        },
        indent=2,
    )
