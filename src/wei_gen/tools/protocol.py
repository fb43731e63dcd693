"""OT-2 protocol configs (AD-SDL ot2 driver format): writer model, checker, deck setup, offline builder.

The format is the driver's ``ProtocolConfig`` (``ot2_driver/protopiler/config.py``): ``equipment`` (labware with a
deck ``location`` and optional ``alias``/``module``/``offset``; pipettes with a ``mount``), ``commands`` (transfers
with ``source``/``destination``/``volume`` and optional mixing and tip handling, mixes, multi-channel transfers,
module commands), ``metadata`` and optional ``resources`` (spreadsheets the driver reads well names and volumes from).

The checker replays the commands the way the driver compiles them: list fields broadcast to one transfer each; the
driver picks the smallest single-channel pipette whose nominal volume covers the transfer, a new tip whenever none is
on, and tip racks whose load name ends in that pipette's volume. Along the way it tracks every well's liquid level,
so it knows what each source must hold at the start (the setup) and when a well overflows. Labware and pipette facts
come from ``data/labware.yaml``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from wei_gen.tools.validator import Diagnostic, Severity, ValidationReport, _did_you_mean
from wei_gen.yamlio import InputError, dump_yaml, parse_yaml, read_text

# ---------------------------------------------------------------------------------------------------------------------
# What a config writer (model) fills in: one well per command keeps the schema strict-mode friendly.
# ---------------------------------------------------------------------------------------------------------------------


class Equipment(BaseModel):
    """Labware (with a deck slot) or a pipette (with a mount)."""

    name: str = Field(description="Opentrons load name, e.g. opentrons_96_tiprack_300ul or p300_single_gen2")
    location: str = Field(default="", description="deck slot '1'..'11' for labware; empty for pipettes")
    mount: str = Field(default="", description="'left' or 'right' for pipettes; empty for labware")


class Command(BaseModel):
    """One liquid transfer."""

    name: str = Field(description="what is transferred, e.g. 'master mix'")
    source: str = Field(description="slot:well, e.g. 2:A1")
    destination: str = Field(description="slot:well, e.g. 1:A1")
    volume: float = Field(description="µL per transfer, from the user's values")
    mix_cycles: int = 0
    mix_volume: float = 0
    drop_tip: bool = True


class ProtocolMetadata(BaseModel):
    """Protocol metadata."""

    protocolName: str  # noqa: N815 - the OT-2 driver's field name
    author: str = "wei-gen"
    description: str = ""
    apiLevel: str = "2.12"  # noqa: N815 - the OT-2 driver's field name


class ProtocolConfig(BaseModel):
    """An AD-SDL OT-2 driver protocol config, as a config writer answers it."""

    equipment: list[Equipment]
    commands: list[Command]
    metadata: ProtocolMetadata


def to_driver_dict(config: ProtocolConfig) -> dict[str, Any]:
    """The config in the driver's own shape: labware without ``mount``, pipettes without ``location``, no zero mixes."""
    equipment: list[dict[str, Any]] = []
    for item in config.equipment:
        if item.mount and not item.location:
            equipment.append({"name": item.name, "mount": item.mount})
        else:
            equipment.append(
                {"name": item.name, "location": item.location} | ({"mount": item.mount} if item.mount else {})
            )
    commands: list[dict[str, Any]] = []
    for c in config.commands:
        command: dict[str, Any] = {"name": c.name, "source": c.source, "destination": c.destination, "volume": c.volume}
        if c.mix_cycles:
            command |= {"mix_cycles": c.mix_cycles, "mix_volume": c.mix_volume}
        commands.append(command | {"drop_tip": c.drop_tip})
    return {"equipment": equipment, "commands": commands, "metadata": config.metadata.model_dump()}


# ---------------------------------------------------------------------------------------------------------------------
# Labware and pipette facts
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabwareInfo:
    """One labware type: kind and the capacity of every well (µL)."""

    name: str
    kind: str
    wells: dict[str, float]

    def describe_wells(self) -> str:
        """The well names in short form, e.g. ``A1 … H12``."""
        names = list(self.wells)
        return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"


@dataclass(frozen=True)
class PipetteInfo:
    """One pipette type: channels, accurate volume range and the tip-rack volume the driver pairs with it."""

    name: str
    channels: int
    min_ul: float
    max_ul: float
    tips_ul: int


@dataclass(frozen=True)
class Facts:
    """Everything ``data/labware.yaml`` says."""

    labware: dict[str, LabwareInfo]
    pipettes: dict[str, PipetteInfo]
    slots: tuple[str, ...]
    trash: str


def _grid(rows: int, columns: int) -> list[str]:
    # Opentrons order: down each column, column by column (A1, B1, …, H1, A2, …).
    return [f"{chr(ord('A') + r)}{c + 1}" for c in range(columns) for r in range(rows)]


@lru_cache(maxsize=1)
def facts() -> Facts:
    """Load the shipped labware and pipette facts (once)."""
    text = resources.files("wei_gen").joinpath("data/labware.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    labware: dict[str, LabwareInfo] = {}
    for name, spec in data["labware"].items():
        if "groups" in spec:
            wells = {w: float(g["capacity_ul"]) for g in spec["groups"] for w in g["wells"]}
        else:
            wells = dict.fromkeys(_grid(spec["rows"], spec["columns"]), float(spec["capacity_ul"]))
        labware[name] = LabwareInfo(name=name, kind=spec["kind"], wells=wells)
    pipettes = {
        name: PipetteInfo(name, int(p["channels"]), float(p["min_ul"]), float(p["max_ul"]), int(p["tips_ul"]))
        for name, p in data["pipettes"].items()
    }
    return Facts(labware, pipettes, tuple(str(s) for s in data["deck"]["slots"]), str(data["deck"]["trash"]))


def facts_text() -> str:
    """The labware and pipette facts compactly, for the config writer's prompt."""
    lines = []
    for kind in ("plate", "reservoir", "tuberack", "tiprack"):
        items = [i for i in facts().labware.values() if i.kind == kind]
        shown = [f"{i.name} ({len(i.wells)}, {max(i.wells.values()):g})" for i in items]
        lines.append(f"- {kind}s: " + ", ".join(shown))
    lines.append("- pipettes: " + ", ".join(f"{p.name} ({p.min_ul:g}-{p.max_ul:g})" for p in facts().pipettes.values()))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# The user's values
# ---------------------------------------------------------------------------------------------------------------------


def parse_values(text: str | None) -> Any:
    """The user's values, leniently: a YAML/JSON document when it parses to a mapping or list, else the text."""
    if not text or not str(text).strip():
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return str(text)
    return data if isinstance(data, dict | list) else str(text)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])|(?<![\w.])-?\d+(?:\.\d+)?(?=\s*(?:u[lL]|µ[lL]|m[lL]))")


def value_numbers(values: Any) -> set[float]:
    """Every number the user gave: numeric values anywhere in the structure and numbers written in text."""
    found: set[float] = set()
    if isinstance(values, bool):
        return found
    if isinstance(values, int | float):
        found.add(float(values))
    elif isinstance(values, str):
        found |= {float(m) for m in _NUMBER.findall(values.replace(",", " "))}
    elif isinstance(values, Mapping):
        for key, value in values.items():
            found |= value_numbers(value) | (value_numbers(key) if isinstance(key, str) else set())
    elif isinstance(values, list):
        for value in values:
            found |= value_numbers(value)
    return found


def traceable(volume: float, numbers: set[float]) -> bool:
    """A volume is the user's when it equals one of their numbers (µL, or mL given as a number x1000)."""
    return any(math.isclose(volume, n, abs_tol=1e-6) or math.isclose(volume, n * 1000, abs_tol=1e-6) for n in numbers)


# ---------------------------------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------------------------------

TOP_KEYS = {"equipment", "commands", "metadata", "resources", "requirements"}
LABWARE_KEYS = {"name", "location", "alias", "module", "offset"}
PIPETTE_KEYS = {"name", "mount"}
COMMAND_KEYS = {
    "transfer": {"name", "source", "aspirate_clearance", "destination", "dispense_clearance", "volume", "mix_cycles",
                 "mix_volume", "blow_out", "drop_tip", "return_tip"},
    "multi_transfer": {"name", "multi_source", "multi_aspirate_clearance", "multi_destination",
                       "multi_dispense_clearance", "multi_volume", "multi_mix_cycles", "multi_mix_volume",
                       "multi_blow_out", "multi_drop_tip"},
    "mix": {"name", "reps", "mix_volume", "location"},
    "deactivate": {"name", "deactivate"},
    "temperature": {"name", "change_temp"},
    "replace_tip": {"name", "replace_tip"},
    "clear": {"name", "clear"},
    "move": {"name", "move_to"},
}  # fmt: skip
METADATA_KEYS = {"protocolName", "author", "description", "apiLevel"}
_WELL = re.compile(r"^[A-Za-z]{1,2}\d{1,3}$")


def is_protocol_config(data: Any) -> bool:
    """Whether parsed YAML looks like an OT-2 protocol config rather than a WEI workflow."""
    return isinstance(data, dict) and "flowdef" not in data and ("equipment" in data or "commands" in data)


@dataclass
class WellState:
    """Liquid level bookkeeping for one well: the running level and its lowest and highest points."""

    level: float = 0.0
    low: float = 0.0
    high: float = 0.0
    liquids: list[str] = field(default_factory=list)

    def add(self, volume: float) -> None:
        """Dispense (positive) or aspirate (negative) ``volume``."""
        self.level += volume
        self.low, self.high = min(self.low, self.level), max(self.high, self.level)

    @property
    def initial(self) -> float:
        """What the well must hold at the start so that it never runs dry."""
        return -self.low

    @property
    def peak(self) -> float:
        """The most it holds during the run, starting from ``initial``."""
        return self.initial + self.high


@dataclass
class ProtocolAnalysis:
    """The result of checking one config: the report, the deck and what must be loaded before the run."""

    report: ValidationReport
    labware: dict[str, tuple[str, str]] = field(default_factory=dict)
    """slot -> (load name, alias)."""
    pipettes: dict[str, str] = field(default_factory=dict)
    """mount -> pipette name."""
    wells: dict[tuple[str, str], WellState] = field(default_factory=dict)
    """(slot, well) -> level bookkeeping."""
    tips: dict[str, int] = field(default_factory=dict)
    """pipette name -> tips used."""


@dataclass(frozen=True)
class Item:
    """One transfer after broadcasting list fields, as the driver runs it."""

    index: int
    name: str
    source: str
    destination: str
    volume: Any
    mix_cycles: Any
    mix_volume: Any
    drop_tip: bool


class _ProtocolChecker:
    """Runs every rule over one parsed config and collects diagnostics."""

    def __init__(self, source: str, values: Any | None):
        self.a = ProtocolAnalysis(report=ValidationReport(source=source))
        self.values = values
        self.numbers = value_numbers(values) if values is not None else set()
        self.aliases: dict[str, str] = {}
        self.has_resources = False
        self.tip_on: dict[str, bool] = {}
        self.untraced: list[str] = []
        self.facts = facts()

    def add(
        self, code: str, severity: Severity, message: str, field_path: str | None = None, hint: str | None = None
    ) -> None:
        self.a.report.diagnostics.append(
            Diagnostic(code=code, severity=severity, message=message, field=field_path, hint=hint)
        )

    # -- top level -----------------------------------------------------------------------------------------------

    def run(self, data: Any) -> ProtocolAnalysis:
        if not isinstance(data, dict):
            self.add("config-schema", "error", "an OT-2 protocol config is a mapping (equipment, commands, metadata)")
            return self.a
        for key in sorted(set(data) - TOP_KEYS, key=str):
            self.add("config-unknown-key", "error", f"unknown top-level key '{key}' (the driver rejects it)", str(key))
        self.has_resources = bool(data.get("resources"))
        self.check_equipment(data.get("equipment"))
        self.check_metadata(data.get("metadata"))
        commands = data.get("commands")
        if not isinstance(commands, list) or not commands:
            self.add("config-no-commands", "error", "no commands: the protocol would do nothing", "commands")
        else:
            for index, command in enumerate(commands):
                self.check_command(index, command)
        self.check_tips()
        self.check_wells()
        self.report_untraced()
        return self.a

    def check_metadata(self, metadata: Any) -> None:
        if not isinstance(metadata, dict):
            self.add("config-schema", "error", "metadata is missing (protocolName, author, description, apiLevel)",
                     "metadata")  # fmt: skip
            return
        for key in sorted(set(metadata) - METADATA_KEYS, key=str):
            self.add("config-unknown-key", "error", f"unknown metadata key '{key}' (the driver rejects it)",
                     f"metadata.{key}")  # fmt: skip
        api = metadata.get("apiLevel", "2.12")
        if not re.fullmatch(r"2\.\d{1,2}", str(api)):
            self.add("config-metadata", "warning", f"apiLevel '{api}' is not an Opentrons API level like '2.12'",
                     "metadata.apiLevel")  # fmt: skip

    # -- equipment -----------------------------------------------------------------------------------------------

    def check_equipment(self, equipment: Any) -> None:
        if not isinstance(equipment, list):
            self.add("config-schema", "error", "equipment is missing or not a list", "equipment")
            equipment = []
        for index, item in enumerate(equipment):
            path = f"equipment[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                self.add("config-schema", "error", f"{path} is not labware or a pipette (needs a name)", path)
            elif "mount" in item and "location" not in item:
                self.check_pipette(item, path)
            elif "location" in item:
                self.check_labware(item, path)
            else:
                self.add("config-schema", "error", f"{path} '{item['name']}' has neither a deck location nor a mount",
                         path, "labware needs location: '<slot>', a pipette needs mount: left|right")  # fmt: skip
        if not self.a.pipettes:
            self.add("config-no-pipette", "error", "no pipette is mounted", "equipment")
        if not self.a.labware:
            self.add("config-no-labware", "error", "no labware on the deck", "equipment")

    def check_labware(self, item: dict[str, Any], path: str) -> None:
        name, slot = item["name"], str(item["location"]).strip()
        for key in sorted(set(item) - LABWARE_KEYS, key=str):
            self.add("config-unknown-key", "error", f"{path}: unknown labware key '{key}'", f"{path}.{key}")
        if name not in self.facts.labware:
            self.add("config-unknown-labware", "error", f"unknown labware '{name}'", f"{path}.name",
                     _did_you_mean(name, set(self.facts.labware), "labware"))  # fmt: skip
        if slot not in self.facts.slots:
            why = "holds the fixed trash" if slot == self.facts.trash else "is not an OT-2 deck slot"
            self.add("config-bad-slot", "error", f"'{name}' on slot '{slot}', which {why}", f"{path}.location",
                     "use a slot from 1 to 11")  # fmt: skip
            return
        if slot in self.a.labware:
            other = self.a.labware[slot][0]
            self.add("config-duplicate-slot", "error", f"slot {slot} holds both '{other}' and '{name}'",
                     f"{path}.location", "give each labware its own slot")  # fmt: skip
            return
        alias = str(item.get("alias") or "")
        if alias:
            if alias in self.aliases and self.aliases[alias] != slot:
                self.add("config-duplicate-alias", "error", f"alias '{alias}' names slots {self.aliases[alias]} "
                         f"and {slot}", f"{path}.alias")  # fmt: skip
            self.aliases[alias] = slot
        self.a.labware[slot] = (name, alias)

    def check_pipette(self, item: dict[str, Any], path: str) -> None:
        name, mount = item["name"], str(item["mount"]).strip()
        for key in sorted(set(item) - PIPETTE_KEYS, key=str):
            self.add("config-unknown-key", "error", f"{path}: unknown pipette key '{key}'", f"{path}.{key}")
        if name not in self.facts.pipettes:
            self.add("config-unknown-pipette", "error", f"unknown pipette '{name}'", f"{path}.name",
                     _did_you_mean(name, set(self.facts.pipettes), "pipettes"))  # fmt: skip
        if mount not in ("left", "right"):
            self.add("config-bad-mount", "error", f"pipette '{name}' on mount '{mount}'", f"{path}.mount",
                     "the OT-2 has a left and a right mount")  # fmt: skip
            return
        if mount in self.a.pipettes:
            self.add("config-duplicate-mount", "error", f"the {mount} mount holds both '{self.a.pipettes[mount]}' "
                     f"and '{name}'", f"{path}.mount")  # fmt: skip
            return
        self.a.pipettes[mount] = name
        self.tip_on[mount] = False

    # -- commands ------------------------------------------------------------------------------------------------

    def check_command(self, index: int, command: Any) -> None:
        path = f"commands[{index}]"
        if not isinstance(command, dict):
            self.add("config-schema", "error", f"{path} is not a mapping", path)
            return
        label = f"command {index + 1}" + (f" '{command['name']}'" if command.get("name") else "")
        kind = next((k for k, keys in COMMAND_KEYS.items() if set(command) - {"name"} <= keys and
                     set(command) - {"name"}), None)  # fmt: skip
        if kind is None:
            self.add("config-schema", "error", f"{label}: not a command the driver knows (keys: "
                     f"{', '.join(map(str, command))})", path,
                     "a transfer has source, destination and volume")  # fmt: skip
            return
        if kind == "transfer":
            missing = [k for k in ("source", "destination", "volume") if command.get(k) in (None, "", [])]
            if missing:
                self.add("config-schema", "error", f"{label}: missing {', '.join(missing)}", path)
                return
            for item in self.expand(index, label, command):
                self.run_transfer(item, label, path)
        elif kind == "mix":
            self.check_mix(label, command, path)
        elif kind == "multi_transfer":
            self.add("config-not-checked", "info", f"{label}: multi-channel transfers are not checked in depth", path)

    def expand(self, index: int, label: str, command: dict[str, Any]) -> Iterator[Item]:
        """Broadcast list fields as the driver does: every list has one length (or one element)."""
        fields_ = ("source", "destination", "volume", "mix_cycles", "mix_volume", "drop_tip")
        raw = {k: command.get(k) for k in fields_}
        raw["source"], raw["destination"] = self.unpack(raw["source"]), self.unpack(raw["destination"])
        lengths = {k: len(v) for k, v in raw.items() if isinstance(v, list) and len(v) != 1}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} {n}" for k, n in lengths.items())
            self.add("config-length-mismatch", "error", f"{label}: list fields have different lengths ({shown})",
                     f"commands[{index}]", "give lists of one length, or single values")  # fmt: skip
            return
        count = max(lengths.values(), default=1)

        def at(key: str, i: int, default: Any) -> Any:
            value = raw[key]
            if isinstance(value, list):
                return value[0] if len(value) == 1 else value[i]
            return default if value is None else value

        for i in range(count):
            drop = at("drop_tip", i, True)
            ret = command.get("return_tip", False)
            ret = ret[i] if isinstance(ret, list) and i < len(ret) else ret
            yield Item(index, str(command.get("name") or ""), str(at("source", i, "")), str(at("destination", i, "")),
                       at("volume", i, None), at("mix_cycles", i, 0), at("mix_volume", i, 0),
                       bool(drop) or bool(ret))  # fmt: skip

    @staticmethod
    def unpack(value: Any) -> Any:
        """``alias:[A1, A2]`` -> ``[alias:A1, alias:A2]`` (the driver's alias list syntax)."""
        if isinstance(value, str) and ":[" in value:
            prefix, _, rest = value.partition(":")
            return [w if ":" in w else f"{prefix}:{w}" for w in (x.strip() for x in rest.strip("[] ").split(",")) if w]
        return value

    def resolve(self, location: str, label: str, path: str, role: str) -> tuple[str, str] | None:
        """``slot:well`` or ``alias:well`` -> (slot, well) when it is checkable and correct; diagnostics otherwise."""
        text = location.strip()
        if "payload" in text or (self.has_resources and not _WELL.match(text.split(":")[-1])):
            self.add("config-runtime-value", "info", f"{label}: {role} '{text}' is filled in at run time "
                     "(payload or resource file); not checked", path)  # fmt: skip
            return None
        ref, sep, well = text.rpartition(":")
        if not sep:
            self.add("config-bad-well", "error", f"{label}: {role} '{text}' is not slot:well", path,
                     "write e.g. 2:A1")  # fmt: skip
            return None
        slot = self.aliases.get(ref, ref)
        if slot not in self.a.labware:
            loaded = ", ".join(f"{s} ({n})" for s, (n, _) in sorted(self.a.labware.items(), key=lambda x: int(x[0])))
            self.add("config-unknown-location", "error", f"{label}: {role} '{text}' names slot/alias '{ref}', where "
                     "no labware is loaded", path, f"loaded: {loaded or 'nothing'}")  # fmt: skip
            return None
        name = self.a.labware[slot][0]
        info = self.facts.labware.get(name)
        if info is None:
            return None  # unknown labware: already reported on the equipment entry
        if info.kind == "tiprack":
            self.add("config-bad-well", "error", f"{label}: {role} '{text}' is in tip rack '{name}'", path,
                     "pipette from and into plates, reservoirs or tubes")  # fmt: skip
            return None
        well = well.strip().upper()
        if well not in info.wells:
            self.add("config-bad-well", "error", f"{label}: {role} well '{well}' does not exist in '{name}' (slot "
                     f"{slot})", path, f"its wells are {info.describe_wells()}")  # fmt: skip
            return None
        return slot, well

    def pipette_for(self, volume: float) -> tuple[str, str] | None:
        """The driver's choice: the smallest single-channel pipette whose nominal volume covers ``volume``."""
        best: tuple[float, str, str] | None = None
        for mount, name in self.a.pipettes.items():
            info = self.facts.pipettes.get(name)
            if info is None or info.channels != 1:
                continue
            if info.max_ul >= volume and (best is None or info.max_ul < best[0]):
                best = (info.max_ul, mount, name)
        return (best[1], best[2]) if best else None

    def check_volume(self, volume: Any, label: str, path: str) -> float | None:
        if isinstance(volume, str) and ("payload" in volume or self.has_resources):
            self.add("config-runtime-value", "info", f"{label}: volume '{volume}' is filled in at run time", path)
            return None
        if isinstance(volume, bool) or not isinstance(volume, int | float):
            self.add("config-volume", "error", f"{label}: volume {volume!r} is not a number of µL", path)
            return None
        if volume < 0:
            self.add("config-volume", "error", f"{label}: volume {volume} µL is negative", path)
            return None
        return float(volume)

    def check_range(self, volume: float, label: str, path: str, what: str = "") -> tuple[str, str] | None:
        chosen = self.pipette_for(volume)
        singles = [self.facts.pipettes[n] for n in self.a.pipettes.values() if n in self.facts.pipettes]
        singles = [p for p in singles if p.channels == 1]
        if chosen is None:
            if singles:
                largest = max(singles, key=lambda p: p.max_ul)
                self.add("config-pipette-range", "error", f"{label}: {what}{volume:g} µL is more than any mounted "
                         f"pipette takes (largest: {largest.name}, {largest.max_ul:g} µL)", path,
                         "split the volume into several transfers or mount a larger pipette")  # fmt: skip
            return None
        info = self.facts.pipettes[chosen[1]]
        if volume < info.min_ul:
            self.add("config-pipette-range", "error", f"{label}: {what}{volume:g} µL is below the range of "
                     f"{info.name} ({info.min_ul:g}–{info.max_ul:g} µL), the pipette the driver picks for it", path,
                     "mount a smaller pipette for small volumes")  # fmt: skip
        return chosen

    def run_transfer(self, item: Item, label: str, path: str) -> None:
        volume = self.check_volume(item.volume, label, path)
        src = self.resolve(item.source, label, path, "source")
        dst = self.resolve(item.destination, label, path, "destination")
        if volume is None or volume == 0:  # the driver skips zero volumes
            return
        if self.values is not None and not traceable(volume, self.numbers):
            self.untraced.append(f"{label}: {volume:g} µL")
        chosen = self.check_range(volume, label, path)
        if chosen is not None:
            mount, name = chosen
            if not self.tip_on[mount]:
                self.a.tips[name] = self.a.tips.get(name, 0) + 1
                self.tip_on[mount] = True
            if item.mix_cycles and isinstance(item.mix_volume, int | float) and item.mix_volume > 0:
                info = self.facts.pipettes[name]
                if item.mix_volume > info.max_ul:
                    self.add("config-pipette-range", "error", f"{label}: mix volume {item.mix_volume:g} µL is more "
                             f"than {name} takes ({info.max_ul:g} µL)", path)  # fmt: skip
            if item.drop_tip:
                self.tip_on[mount] = False
        # The command's name says what moves ("Add master mix"); the setup lists the liquid ("master mix").
        liquid = _LIQUID_VERB.sub("", item.name or "").strip() or "liquid"
        if src is not None:
            self.a.wells.setdefault(src, WellState()).add(-volume)
            state = self.a.wells[src]
            if liquid not in state.liquids and state.initial > 0:
                state.liquids.append(liquid)
        if dst is not None:
            self.a.wells.setdefault(dst, WellState()).add(volume)

    def check_mix(self, label: str, command: dict[str, Any], path: str) -> None:
        locations = self.unpack(command.get("location"))
        for location in locations if isinstance(locations, list) else [locations]:
            self.resolve(str(location), label, path, "location")
        volumes = command.get("mix_volume")
        for volume in volumes if isinstance(volumes, list) else [volumes]:
            checked = self.check_volume(volume, label, path)
            if checked:
                chosen = self.check_range(checked, label, path, "mix volume ")
                if chosen is not None and not self.tip_on[chosen[0]]:
                    self.a.tips[chosen[1]] = self.a.tips.get(chosen[1], 0) + 1
                    self.tip_on[chosen[0]] = True

    # -- after the replay ----------------------------------------------------------------------------------------

    def check_tips(self) -> None:
        racks: dict[int, int] = defaultdict(int)
        for name, _ in self.a.labware.values():
            rack = self.facts.labware.get(name)
            match = re.search(r"(\d+)ul$", name)
            if rack is not None and rack.kind == "tiprack" and match:
                racks[int(match.group(1))] += 1
        for name in self.a.pipettes.values():
            info = self.facts.pipettes.get(name)
            if info is None:
                continue
            used = self.a.tips.get(name, 0)
            if not racks[info.tips_ul] and used:
                self.add("config-no-tips", "error", f"no tip rack for {name}: the driver takes its tips only from "
                         f"racks named …_{info.tips_ul}ul", "equipment",
                         f"load opentrons_96_tiprack_{info.tips_ul}ul on a free slot")  # fmt: skip
            elif used > 96 * racks[info.tips_ul]:
                self.add("config-tips-exhausted", "error", f"{name} needs {used} tips but its {racks[info.tips_ul]} "
                         f"rack(s) hold {96 * racks[info.tips_ul]}", "equipment",
                         "load another tip rack or reuse tips (drop_tip: false)")  # fmt: skip

    def check_wells(self) -> None:
        for (slot, well), state in sorted(self.a.wells.items()):
            name = self.a.labware[slot][0]
            capacity = self.facts.labware[name].wells[well]
            if state.peak <= capacity + 1e-9:
                continue
            if state.initial > 0 and state.high <= 0:
                message = (f"source {slot}:{well} ({name}) must hold {state.initial:g} µL for the transfers drawn "
                           f"from it, but a well holds at most {capacity:g} µL")  # fmt: skip
                hint = "spread the liquid over several source wells or use larger labware"
            else:
                message = f"well {slot}:{well} ({name}) would hold {state.peak:g} µL; its capacity is {capacity:g} µL"
                hint = "lower the volumes or use labware with larger wells"
            self.add("config-over-capacity", "error", message, "commands", hint)

    def report_untraced(self) -> None:
        if self.values is None or not self.untraced:
            return
        if not self.numbers:
            self.add("config-untraced-volume", "warning", "the user's values give no volumes, so every volume in "
                     f"this protocol ({len(self.untraced)} transfer(s)) is the writer's choice: check them",
                     "commands")  # fmt: skip
            return
        shown = ", ".join(f"{n:g}" for n in sorted(self.numbers)[:12])
        for entry in dict.fromkeys(self.untraced):
            self.add("config-untraced-volume", "error", f"{entry} is not one of the user's values ({shown})",
                     "commands", "take every volume from the user's values, or ask for the missing one")  # fmt: skip


def analyze_protocol(data: Any, source: str = "<config>", values: Any | None = None) -> ProtocolAnalysis:
    """Check parsed config data; ``values`` (parsed user values) enables the traceability check."""
    return _ProtocolChecker(source, values).run(data)


def validate_protocol_text(text: str, source: str = "<config>", values: Any | None = None) -> ValidationReport:
    """Check config text; a YAML syntax error is a ``yaml-parse`` diagnostic."""
    try:
        data = parse_yaml(text, source).data
    except InputError as exc:
        return ValidationReport(
            source=source,
            diagnostics=[Diagnostic(code="yaml-parse", severity="error", message=exc.message, line=exc.line,
                                    column=exc.column)],
        )  # fmt: skip
    return analyze_protocol(data, source, values).report


def validate_protocol_file(path: Path, values: Any | None = None) -> ValidationReport:
    """Check a config file; an unreadable file raises :class:`InputError`."""
    return validate_protocol_text(read_text(path), str(path), values)


# ---------------------------------------------------------------------------------------------------------------------
# The deck setup a protocol needs
# ---------------------------------------------------------------------------------------------------------------------


def deck_setup(module: str, path: str, analysis: ProtocolAnalysis) -> str:
    """Markdown lines: what goes on each slot and mount of this OT-2, and how much liquid each source needs."""
    lines = [f"### {module} (`{path}`)", ""]
    for slot, (name, alias) in sorted(analysis.labware.items(), key=lambda x: int(x[0])):
        line = f"- slot {slot}: `{name}`" + (f" (alias `{alias}`)" if alias else "")
        loads = [
            f"{well}: at least {state.initial:g} µL" + (f" of {', '.join(state.liquids)}" if state.liquids else "")
            for (s, well), state in sorted(analysis.wells.items())
            if s == slot and state.initial > 0
        ]
        info = facts().labware.get(name)
        if info is not None and info.kind == "tiprack":
            used = sum(n for p, n in analysis.tips.items() if name.endswith(f"_{facts().pipettes[p].tips_ul}ul"))
            line += f" — a full rack (the protocol uses {used} tip(s) of this size)" if used else " — a full rack"
        lines.append(line + (" — load " + "; ".join(loads) if loads else ""))
    for mount, name in sorted(analysis.pipettes.items()):
        lines.append(f"- {mount} mount: `{name}`")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Deterministic builder (offline runs)
# ---------------------------------------------------------------------------------------------------------------------

DEFAULT_PLATE = "corning_96_wellplate_360ul_flat"
DEFAULT_SOURCE = "nest_12_reservoir_15ml"
DEFAULT_PIPETTES = ("p20_single_gen2", "p300_single_gen2", "p1000_single_gen2")
_VOLUME_KEY = re.compile(r"^(?:volume[_ ](?P<pre>.+)|(?P<post>.+?)[_ ](?:ul|µl|microliters?|volume))$", re.IGNORECASE)
PLATE_KEYS = ("plate", "labware", "destination_labware")
SOURCE_KEYS = ("source_labware", "reservoir", "tube_rack")


@dataclass
class Built:
    """A deterministic protocol and the diagnostics about what did not come from the user's values."""

    data: dict[str, Any]
    diagnostics: list[Diagnostic]


def _section(values: Any, module: str, multi: bool) -> tuple[dict[str, Any], str]:
    """The values for this module: its own section (``<module>:``) if there is one, else the top level."""
    if not isinstance(values, dict):
        return {}, "the values are not a mapping"
    own = values.get(module)
    if isinstance(own, dict):
        return own, ""
    note = (
        f"the values have no '{module}:' section; every liquid handler gets the same top-level values" if multi else ""
    )
    return {k: v for k, v in values.items() if not isinstance(v, dict)}, note


def _wells(value: Any) -> list[str]:
    """Wells from a list, ``A1, A2``, or a range ``A1-A4`` / ``A1-H1`` / ``A1:H12`` (a block)."""
    if isinstance(value, list):
        return [str(v).strip().upper() for v in value]
    text = str(value).strip().upper()
    match = re.fullmatch(r"([A-P])(\d{1,2})\s*[-:]\s*([A-P])(\d{1,2})", text)
    if match:
        r0, c0, r1, c1 = match.group(1), int(match.group(2)), match.group(3), int(match.group(4))
        rows = [chr(r) for r in range(ord(r0), ord(r1) + 1)]
        return [f"{r}{c}" for c in range(c0, c1 + 1) for r in rows]
    return [w.strip() for w in re.split(r"[,\s]+", text) if w.strip()]


_TEXT_VOLUME = re.compile(
    r"(\d+(?:\.\d+)?)\s*(µl|ul|ml)\b\s*(?:of\s+)?([a-z][a-z0-9 _-]*?)"
    r"\s*(?=,|;|\.(?!\d)|\band\b|\binto\b|\bto\b|\bin\b|$)",
    re.IGNORECASE,
)
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(µl|ul|ml)\s*$", re.IGNORECASE)


def _microlitres(number: str, unit: str) -> float:
    return float(number) * (1000 if unit.lower() == "ml" else 1)


_LIQUID_VERB = re.compile(r"^(?:add|transfer|dispense|distribute|pipette|aliquot|load|move)\s+", re.IGNORECASE)


def text_liquids(text: str) -> list[tuple[str, float, str]]:
    """Volumes written in prose: ``15 uL master mix, 5 µL template`` -> (liquid, µL, '')."""
    return [(name.strip(), _microlitres(n, unit), "") for n, unit, name in _TEXT_VOLUME.findall(text)]


def _liquids(section: dict[str, Any]) -> list[tuple[str, float, str]]:
    """(liquid, µL, source well or '') from ``transfers:`` or from keys like ``master_mix_ul`` / ``volume_dye``."""
    found: list[tuple[str, float, str]] = []
    for key, value in section.items():  # "master_mix: 15 uL"
        if isinstance(value, str) and (amount := _AMOUNT.match(value)):
            found.append((str(key).replace("_", " "), _microlitres(amount.group(1), amount.group(2)), ""))
    transfers = section.get("transfers")
    if isinstance(transfers, list):
        for t in transfers:
            if isinstance(t, dict) and isinstance(t.get("volume"), int | float) and not isinstance(t["volume"], bool):
                name = str(t.get("liquid") or t.get("name") or f"liquid {len(found) + 1}")
                found.append((name, float(t["volume"]), str(t.get("source") or "")))
        return found
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or key in ("mix_volume",):
            continue
        match = _VOLUME_KEY.match(str(key))
        if match or str(key).lower() == "volume":
            name = (match.group("pre") or match.group("post")) if match else "sample"
            found.append((name.replace("_", " "), float(value), ""))
    return found


def _pipettes_for(volumes: list[float]) -> list[str]:
    """The fewest standard pipettes (at most two) whose ranges cover the volumes (smallest fitting one each)."""
    chosen: list[str] = []
    for volume in volumes:
        fit = next((p for p in DEFAULT_PIPETTES if facts().pipettes[p].min_ul <= volume <= facts().pipettes[p].max_ul),
                   None)  # fmt: skip
        if fit is not None and fit not in chosen:
            chosen.append(fit)
    return sorted(chosen, key=lambda p: facts().pipettes[p].max_ul)[:2] or ["p300_single_gen2"]


def deck_slot_from_lab(module: str, location_names: list[str]) -> str:
    """The deck slot of the module's plate nest from the lab's location names (``ot2_pcr.deck1`` -> ``1``)."""
    for name in location_names:
        match = re.fullmatch(rf"{re.escape(module)}\.deck_?(\d+)\w*", name)
        if match and match.group(1) in facts().slots:
            return match.group(1)
    return ""


def build_protocol(
    module: str, step_name: str, values: Any, *, lab_slot: str = "", multi: bool = False, path: str = ""
) -> Built:
    """A protocol config for one step from the user's values; every default it uses becomes a diagnostic.

    Keys read (in a ``<module>:`` section, else at the top level): ``transfers`` (list of ``liquid``, ``volume``,
    optional ``source`` well), else every number whose key ends in ``_ul``/``_volume`` or starts with ``volume_``
    (one liquid each); ``wells`` / ``destination_wells`` (list or range ``A1-A4``); ``plate`` / ``labware``,
    ``plate_slot``; ``source_labware`` / ``reservoir``, ``source_slot``; ``pipette``; ``mix_cycles``, ``mix_volume``.
    """
    label = path or module
    notes: list[Diagnostic] = []

    def default(what: str, chosen: Any, severity: Severity = "warning") -> Any:
        notes.append(Diagnostic(code="config-default-used", severity=severity,
                                message=f"{label}: {what} is not in the values; used {chosen}"))  # fmt: skip
        return chosen

    section, note = _section(values, module, multi)
    liquids = text_liquids(values) if isinstance(values, str) else _liquids(section)
    if note and not liquids:
        notes.append(Diagnostic(code="config-default-used", severity="warning", message=f"{label}: {note}"))
    plate = next((str(section[k]) for k in PLATE_KEYS if section.get(k)), "") or default("the plate", DEFAULT_PLATE)
    slot = str(section.get("plate_slot") or "") or (
        default("the plate's deck slot", lab_slot, "info") if lab_slot else default("the plate's deck slot", "1")
    )
    source = next((str(section[k]) for k in SOURCE_KEYS if section.get(k)), "") or default(
        "the source labware", DEFAULT_SOURCE
    )
    free = [s for s in facts().slots if s != slot]
    source_slot = str(section.get("source_slot") or "") or default("the source labware's slot", free[0])
    free = [s for s in free if s != source_slot]
    wells_value = section.get("wells") or section.get("destination_wells")
    wells = _wells(wells_value) if wells_value else default("the destination wells", ["A1"])
    volumes = [v for _, v, _ in liquids]
    pipette = str(section.get("pipette") or "")
    pipettes = [pipette] if pipette else [default("the pipette", p) for p in _pipettes_for(volumes)]
    source_info = facts().labware.get(source)
    source_wells = list(source_info.wells) if source_info is not None else []
    equipment: list[dict[str, Any]] = [{"name": plate, "location": slot}, {"name": source, "location": source_slot}]
    commands: list[dict[str, Any]] = []
    mix_cycles, mix_volume = section.get("mix_cycles"), section.get("mix_volume")
    for n, (liquid, volume, well) in enumerate(liquids):
        src_well = well or (source_wells[n] if n < len(source_wells) else "A1")
        if not well:
            default(f"the source well of {liquid}", f"{source_slot}:{src_well}", "info")
        command: dict[str, Any] = {
            "name": f"Add {liquid}",
            "source": f"{source_slot}:{src_well}",
            "destination": [f"{slot}:{w}" for w in wells] if len(wells) > 1 else f"{slot}:{wells[0]}",
            "volume": volume,
        }
        if isinstance(mix_cycles, int) and mix_cycles > 0 and n == len(liquids) - 1:
            command |= {"mix_cycles": mix_cycles, "mix_volume": mix_volume if mix_volume else volume}
        commands.append(command | {"drop_tip": True})
    tips_needed = len(liquids) * len(wells)
    for mount, name in zip(("left", "right"), pipettes, strict=False):
        equipment.append({"name": name, "mount": mount})
        tips = facts().pipettes[name].tips_ul if name in facts().pipettes else 300
        for _ in range(max(1, math.ceil(tips_needed / 96))):
            if free:
                equipment.append({"name": f"opentrons_96_tiprack_{tips}ul", "location": free.pop()})
    if not liquids:
        notes.append(
            Diagnostic(code="config-no-commands", severity="error", message=f"{label}: the values name no volumes, "
                       "so there is nothing to pipette", hint="give volumes as <liquid>_ul: <µL> (e.g. dye_ul: 50) "
                       f"or a transfers: list, under '{module}:' when several liquid handlers are used")
        )  # fmt: skip
    metadata = {"protocolName": step_name, "author": "wei-gen (offline)",
                "description": f"{module}: " + (", ".join(f"{v:g} µL {n}" for n, v, _ in liquids) or "no transfers"),
                "apiLevel": "2.12"}  # fmt: skip
    return Built({"equipment": equipment, "commands": commands, "metadata": metadata}, notes)


def protocol_yaml(data: Mapping[str, Any]) -> str:
    """A config as the YAML file written to the bundle."""
    return dump_yaml(dict(data))
