"""The labware-flow check in z3: where plates are and in which state, step by step.

Each location has three facts: it holds a plate, that plate is sealed, it has its lid. The initial facts are free z3
variables; every step is applied symbolically (an effect rewrites the facts it touches, so unaffected locations cost
nothing and the encoding grows linearly with the steps). Every precondition is asserted under a label naming its step
and rule, so an unsat core maps back to plain-language reasons. A satisfiable model gives the required initial lab
setup: which plates must be where, in which state.

A plate may be assumed present at the start only where the workflow picks one up first (a move out of it, a lid
operation) or where an instrument works before any plate has moved (smoke tests); elsewhere a plate must be brought
by a step. That is what makes a dropped transfer an error instead of "another plate was already there".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import z3
from pydantic import BaseModel, Field

from wei_gen.lab import Lab
from wei_gen.tools.semantics import ActionSemantics, LabSemantics
from wei_gen.tools.validator import Diagnostic, Severity

Verdict = Literal["sat", "unsat"]
_PARAM = re.compile(r"^\$\{?(\w+)\}?$")
_UNLIMITED = re.compile(r"stack|tower|hotel", re.I)


# ---------------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------------


class SetupItem(BaseModel):
    """A plate the scientist must put in place before the run."""

    location: str
    """Where."""
    sealed: bool | None = None
    """Must be sealed (True), unsealed (False), or either (None)."""
    lid: bool | None = None
    """Must have its lid (True), not (False), or either (None)."""

    def describe(self) -> str:
        """E.g. ``a sealed plate on peeler.default``."""
        state = {True: "sealed ", False: "unsealed ", None: ""}[self.sealed]
        lid = {True: " with its lid", False: " without a lid", None: ""}[self.lid]
        article = "an" if state.startswith("u") else "a"
        return f"{article} {state}plate{lid} on {self.location}"


class FlowReport(BaseModel):
    """The verdict of the flow check."""

    verdict: Verdict
    """sat: the steps can run as written; unsat: they cannot (see ``diagnostics``)."""
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    """Reasons (errors), unchecked steps and the setup (info)."""
    setup: list[SetupItem] = Field(default_factory=list)
    """Required initial lab setup (when sat)."""
    unchecked: list[int] = Field(default_factory=list)
    """0-based indexes of steps whose action has no semantics or whose locations are not known."""
    supplies: list[str] = Field(default_factory=list)
    """Stocks the workflow draws new plates from, e.g. ``1 fresh plate from sciclops (pos: tower1) for step 1``."""

    def setup_text(self) -> str:
        """The initial setup as lines for ``setup.md``."""
        lines = [f"- {item.describe()}" for item in self.setup]
        if not lines:
            lines = ["No labware needs to be in place before the run."]
        # A plate crane's tower is no place the z3 model tracks, but it must hold the plates the run takes from it.
        lines += [f"- stock: {supply}" for supply in self.supplies]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class FlowStep:
    """A step as the flow check sees it: module, action and args with parameters substituted."""

    index: int
    name: str
    module: str
    action: str
    args: dict[str, Any] = field(default_factory=dict)


def steps_from_workflow(data: Any, parameters: Mapping[str, Any] | None = None) -> list[FlowStep]:
    """Flow steps of workflow data; ``$name`` args take supplied values, else the parameter defaults."""
    if not isinstance(data, dict) or not isinstance(data.get("flowdef"), list):
        return []
    declared = data.get("parameters")
    params = declared if isinstance(declared, list) else []
    values = {p["name"]: p.get("default") for p in params if isinstance(p, dict) and "name" in p}
    values.update(parameters or {})
    steps = []
    for i, raw in enumerate(data["flowdef"]):
        if not isinstance(raw, dict):
            continue
        raw_args = raw.get("args")
        args = raw_args if isinstance(raw_args, dict) else {}
        # WEI 0.7.2+ substitutes parameters in arg keys too (``$aim: $pos``).
        resolved = {str(_resolve(k, values)): _resolve(v, values) for k, v in args.items()}
        steps.append(
            FlowStep(
                i,
                str(raw.get("name", f"step {i + 1}")),
                str(raw.get("module", "")),
                str(raw.get("action") or raw.get("command") or ""),
                resolved,
            )
        )
    return steps


def _resolve(value: Any, values: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and (m := _PARAM.match(value)) and values.get(m.group(1)) is not None:
        return values[m.group(1)]
    return value


# ---------------------------------------------------------------------------------------------------------------------
# Operations: semantics applied to one step
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Op:
    """What one step does to labware, with its locations resolved."""

    step: FlowStep
    kind: str
    source: str | None = None
    target: str | None = None
    at: list[str] = field(default_factory=list)
    sem: ActionSemantics | None = None
    why_unchecked: str = ""


def _location(ref: str | None, step: FlowStep) -> str | None:
    """A location reference: an arg of the step (its value), or a literal with ``{module}``."""
    if ref is None:
        return None
    if ref in step.args:
        value = step.args[ref]
        return value if isinstance(value, str) and not value.startswith(("$", "payload.")) else None
    # A fixed location written with {module}; anything else names an arg this step did not give.
    return ref.replace("{module}", step.module) if "{module}" in ref else None


def resolve_ops(steps: list[FlowStep], sem: LabSemantics) -> list[Op]:
    """Apply the semantics to each step."""
    ops = []
    for step in steps:
        action = sem.action(step.module, step.action)
        if action is None:
            reason = (
                "no semantics for this module"
                if sem.module_type(step.module) is None
                else "no semantics for this action"
            )
            ops.append(Op(step, "unchecked", why_unchecked=reason))
            continue
        op = Op(step, action.kind, sem=action)
        if action.kind == "move":
            op.source, op.target = _location(action.source, step), _location(action.target, step)
            if op.source is None and op.target is None:
                op.kind, op.why_unchecked = "unchecked", "its source and target are not known locations"
            elif op.source is None:  # e.g. a stack position from the payload: a plate arrives from somewhere
                op.kind, op.at = "arrive", [str(op.target)]
            elif op.target is None:  # a plate leaves for somewhere we cannot see
                op.kind, op.at = "depart", [op.source]
        elif action.kind != "noop":
            at = _location(action.at, step) if action.at else None
            op.at = [at] if at else sem.nests(step.module)
            if not op.at:
                op.kind, op.why_unchecked = "unchecked", f"no location of {step.module} is known as its nest"
        ops.append(op)
    return ops


# ---------------------------------------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Facts:
    occ: dict[str, z3.BoolRef]
    sealed: dict[str, z3.BoolRef]
    lid: dict[str, z3.BoolRef]


def _is_trash(location: str) -> bool:
    return "trash" in location.lower()


def _is_unlimited(location: str) -> bool:
    return bool(_UNLIMITED.search(location))


def _initially_allowed(ops: list[Op]) -> set[str]:
    """Locations where a plate may be assumed at the start (see the module docstring)."""
    allowed: set[str] = set()
    seen: set[str] = set()
    moved = False
    # After a plate left for a place known only at run time, it may be at any location not seen yet.
    anywhere = False
    for op in ops:
        if op.kind == "move":
            assert op.source is not None and op.target is not None
            if op.source not in seen:
                allowed.add(op.source)
            seen |= {op.source, op.target}
            moved = True
        elif op.kind in ("lid_off", "lid_on", "process", "dispose", "store"):
            for loc in op.at:
                if loc not in seen and (op.kind in ("lid_off", "lid_on") or not moved or anywhere):
                    allowed.add(loc)
            seen |= set(op.at)
            moved = moved or op.kind in ("dispose", "store")
        elif op.kind == "depart":
            allowed |= set(op.at) - seen
            seen |= set(op.at)
            moved = anywhere = True
        elif op.kind in ("new_plate", "retrieve", "arrive"):
            seen |= set(op.at)
            moved = True
    return allowed


class _Encoder:
    """Symbolic execution of the ops into z3 facts; preconditions become tracked assertions."""

    def __init__(self, ops: list[Op], lab: Lab):
        self.ops = ops
        self.lab = lab
        self.solver = z3.Solver()
        self.solver.set("core.minimize", True)
        self.labels: dict[str, tuple[int | None, str, str]] = {}
        self.assumptions: dict[str, z3.BoolRef] = {}
        self.initial = _Facts({}, {}, {})
        self.facts = _Facts({}, {}, {})
        self.fresh = 0

    def _var(self, kind: str, location: str) -> z3.BoolRef:
        self.fresh += 1
        return z3.Bool(f"{kind}|{location}|{self.fresh}")

    def _ensure(self, location: str) -> None:
        if location in self.facts.occ:
            return
        occ = z3.BoolVal(False) if _is_trash(location) else z3.Bool(f"occ0|{location}")
        sealed, lid = z3.Bool(f"sealed0|{location}"), z3.Bool(f"lid0|{location}")
        for facts in (self.initial, self.facts):
            facts.occ[location], facts.sealed[location], facts.lid[location] = occ, sealed, lid

    def require(self, expr: z3.BoolRef, step: int | None, rule: str, location: str) -> None:
        label = f"s{step}:{rule}:{location}" if step is not None else f"init:{location}"
        self.labels[label] = (step, rule, location)
        literal = z3.Bool(label)
        self.solver.add(z3.Implies(literal, expr))  # checked under assumptions, so a core can be set aside
        self.assumptions[label] = literal

    def run(self) -> None:
        for op in self.ops:
            for loc in [op.source, op.target, *op.at]:
                if loc:
                    self._ensure(loc)
        allowed = _initially_allowed(self.ops)
        for loc, occ in self.initial.occ.items():
            if loc not in allowed and not _is_unlimited(loc) and not _is_trash(loc):
                self.require(z3.Not(occ), None, "initially-empty", loc)
            if _is_unlimited(loc):
                self.solver.add(occ)  # a stack or tower always has plates to give
        for op in self.ops:
            getattr(self, f"_{op.kind}", self._noop)(op)
            self._ranges(op)

    # -- effects ---------------------------------------------------------------------------------------------------

    def _noop(self, op: Op) -> None:
        return

    def _move(self, op: Op) -> None:
        f, i = self.facts, op.step.index
        src, dst = op.source, op.target
        assert src is not None and dst is not None
        if not _is_unlimited(src):
            self.require(f.occ[src], i, "source-has-plate", src)
        if not _is_trash(dst) and not _is_unlimited(dst) and src != dst:
            self.require(z3.Not(f.occ[dst]), i, "target-free", dst)
        sealed = self._var("sealed", src) if _is_unlimited(src) else f.sealed[src]
        lid = self._var("lid", src) if _is_unlimited(src) else f.lid[src]
        if not _is_unlimited(src):
            f.occ[src] = z3.BoolVal(False)
        f.occ[dst] = z3.BoolVal(not _is_trash(dst)) if not _is_unlimited(dst) else z3.BoolVal(True)
        f.sealed[dst], f.lid[dst] = sealed, lid

    def _new_plate(self, op: Op) -> None:
        f, i = self.facts, op.step.index
        loc = op.at[0]
        self.require(z3.Not(f.occ[loc]), i, "target-free", loc)
        f.occ[loc], f.sealed[loc], f.lid[loc] = z3.BoolVal(True), z3.BoolVal(False), self._var("lid", loc)

    _retrieve = _new_plate

    def _arrive(self, op: Op) -> None:
        f, loc = self.facts, op.at[0]
        if not _is_trash(loc) and not _is_unlimited(loc):
            self.require(z3.Not(f.occ[loc]), op.step.index, "target-free", loc)
            f.occ[loc], f.sealed[loc], f.lid[loc] = z3.BoolVal(True), self._var("sealed", loc), self._var("lid", loc)

    def _depart(self, op: Op) -> None:
        loc = op.at[0]
        if not _is_unlimited(loc):
            self.require(self.facts.occ[loc], op.step.index, "source-has-plate", loc)
            self.facts.occ[loc] = z3.BoolVal(False)

    def _with_plate(self, op: Op) -> None:
        f, i = self.facts, op.step.index
        self.require(z3.Or(*[f.occ[n] for n in op.at]), i, "needs-plate", op.at[0])
        for state, value in op.sem.requires.items() if op.sem else []:
            table = f.sealed if state == "sealed" else f.lid
            cond = z3.And(*[z3.Implies(f.occ[n], table[n] == z3.BoolVal(value)) for n in op.at])
            self.require(cond, i, f"{state}-{str(value).lower()}", op.at[0])

    def _process(self, op: Op) -> None:
        self._with_plate(op)
        for state, value in op.sem.sets.items() if op.sem else []:
            table = self.facts.sealed if state == "sealed" else self.facts.lid
            for n in op.at:
                table[n] = z3.If(self.facts.occ[n], z3.BoolVal(value), table[n])

    def _dispose(self, op: Op) -> None:
        self._with_plate(op)
        for n in op.at:
            self.facts.occ[n] = z3.BoolVal(False)

    _store = _dispose

    def _lid_off(self, op: Op) -> None:
        self._with_plate(op)
        self.require(z3.Or(*[self.facts.lid[n] for n in op.at]), op.step.index, "has-lid", op.at[0])
        for n in op.at:
            self.facts.lid[n] = z3.BoolVal(False)

    def _lid_on(self, op: Op) -> None:
        self._with_plate(op)
        for n in op.at:
            self.facts.lid[n] = z3.BoolVal(True)

    def _ranges(self, op: Op) -> None:
        for arg, (low, high) in op.sem.ranges.items() if op.sem else []:
            value = op.step.args.get(arg)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue  # not a literal number (a parameter without default, payload): known only at run time
            v = z3.RealVal(str(value))
            self.require(
                z3.And(v >= z3.RealVal(str(low)), v <= z3.RealVal(str(high))), op.step.index, f"range:{arg}", arg
            )


# ---------------------------------------------------------------------------------------------------------------------
# Check and explanations
# ---------------------------------------------------------------------------------------------------------------------


_Z3_LOCK = threading.Lock()
"""z3's default context is process-wide and not thread-safe; the LangGraph server runs sessions' nodes on threads."""


def check_flow(steps: list[FlowStep], lab: Lab, semantics: LabSemantics | None = None) -> FlowReport:
    """Check the labware flow of a step sequence against the lab; explain an unsat verdict.

    Thread-safe: one check at a time per process (a check takes milliseconds). Every z3 object is created and
    released inside the lock — they live only in ``_check_flow``'s frame, which ends before the lock is released.
    """
    with _Z3_LOCK:
        return _check_flow(steps, lab, semantics)


def _check_flow(steps: list[FlowStep], lab: Lab, semantics: LabSemantics | None) -> FlowReport:
    sem = semantics or LabSemantics(lab)
    ops = resolve_ops(steps, sem)
    enc = _Encoder(ops, lab)
    enc.run()
    report = FlowReport(verdict="sat", unchecked=[op.step.index for op in ops if op.kind == "unchecked"])
    for op in ops:
        if op.kind == "unchecked":
            report.diagnostics.append(
                _diag(
                    "flow-unchecked",
                    "info",
                    op.step,
                    f"{op.step.module}.{op.step.action} is not checked for labware flow ({op.why_unchecked})",
                )
            )
    cores = _cores(enc)
    if cores:
        report.verdict = "unsat"
        labels = sorted({label for core in cores for label in core}, key=_label_order)
        # "Nothing may be there at the start" only explains a step's need for a plate; say it once, through the step.
        needed = {enc.labels[c][2] for c in labels if enc.labels[c][0] is not None}
        labels = [c for c in labels if enc.labels[c][0] is not None or enc.labels[c][2] not in needed]
        labels = _without_supporting(labels, enc.labels)
        report.diagnostics = [_explain(enc.labels[label], ops, steps) for label in labels] + report.diagnostics
        return report
    report.setup = _setup(enc)
    report.supplies = _supplies(ops)
    return report


def _supplies(ops: list[Op]) -> list[str]:
    """New-plate steps grouped by where they take the plate from (module and its args, e.g. the tower)."""
    groups: dict[str, list[int]] = {}
    for op in ops:
        if op.kind == "new_plate":
            args = ", ".join(f"{k}: {v}" for k, v in sorted(op.step.args.items()) if not isinstance(v, dict | list))
            groups.setdefault(f"{op.step.module}" + (f" ({args})" if args else ""), []).append(op.step.index + 1)
    return [
        f"{len(steps)} fresh plate{'s' if len(steps) > 1 else ''} from {where} "
        f"for step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}"
        for where, steps in groups.items()
    ]


def _cores(enc: _Encoder, limit: int = 8) -> list[list[str]]:
    """Unsat cores, one per independent problem: each found core is set aside and the rest checked again."""
    active = dict(enc.assumptions)
    cores: list[list[str]] = []
    while len(cores) < limit and enc.solver.check(*active.values()) == z3.unsat:
        core = [str(c) for c in enc.solver.unsat_core()]
        if not core:
            break  # unsat without any assumption: the hard constraints alone conflict (a bug, not the workflow)
        cores.append(core)
        for label in core:
            active.pop(label, None)
    return cores


_PRESENCE = {"needs-plate", "source-has-plate"}
_STATE = ("sealed-", "lid-", "has-lid")


def _without_supporting(labels: list[str], info: dict[str, tuple[int | None, str, str]]) -> list[str]:
    """Drop "a plate is needed here" at a location when a later rule at that location is the real conflict.

    In ``peel; peel`` the core holds both the first peel's need for a plate (it is what unseals the plate) and the
    second peel's need for a sealed one; only the second is wrong.
    """
    later = {(info[c][2], info[c][0]) for c in labels if info[c][1].startswith(_STATE) and info[c][0] is not None}

    def supporting(label: str) -> bool:
        step, rule, loc = info[label]
        return rule in _PRESENCE and any(
            where == loc and s is not None and step is not None and s > step for where, s in later
        )

    kept = [c for c in labels if not supporting(c)]
    return kept or labels


def _label_order(label: str) -> tuple[int, str]:
    head = label.split(":", 1)[0]
    return (int(head[1:]) if head.startswith("s") and head[1:].isdigit() else -1, label)


def _setup(enc: _Encoder) -> list[SetupItem]:
    assumptions = list(enc.assumptions.values())
    enc.solver.check(*assumptions)
    model = enc.solver.model()
    items = []
    for loc, occ in enc.initial.occ.items():
        if _is_trash(loc) or _is_unlimited(loc) or not z3.is_true(model.eval(occ, model_completion=True)):
            continue
        if not _forced(enc.solver, assumptions, occ):
            continue  # a plate may be there but nothing needs one
        item = SetupItem(location=loc)
        for attr, var in (("sealed", enc.initial.sealed[loc]), ("lid", enc.initial.lid[loc])):
            value = z3.is_true(model.eval(var, model_completion=True))
            if _forced(enc.solver, assumptions, var if value else z3.Not(var), given=occ):
                setattr(item, attr, value)
        items.append(item)
    return items


def _forced(
    solver: z3.Solver, assumptions: list[z3.BoolRef], fact: z3.BoolRef, given: z3.BoolRef | None = None
) -> bool:
    """Whether every model satisfies ``fact`` (under ``given``)."""
    solver.push()
    if given is not None:
        solver.add(given)
    solver.add(z3.Not(fact))
    forced: bool = solver.check(*assumptions) == z3.unsat
    solver.pop()
    return forced


def _diag(code: str, severity: Severity, step: FlowStep | None, message: str, hint: str | None = None) -> Diagnostic:
    index, name = (step.index, step.name) if step else (None, None)
    return Diagnostic(code=code, severity=severity, message=message, hint=hint, step_index=index, step_name=name)


@dataclass
class _Plate:
    """A plate in the concrete simulation: whether it is sealed (None: unknown) and the step that brought it."""

    sealed: bool | None
    arrived: int | None


class _Tracker:
    """A concrete, forgiving simulation of where plates are: for explanations and transfer planning, not proofs.

    Plates assumed at the start (see ``_initially_allowed``) are placed up front; a step that needs a plate which is
    not there is skipped over without failing, so later steps still get a sensible picture.
    """

    def __init__(self, ops: list[Op]):
        self.plates: dict[str, _Plate] = {loc: _Plate(None, None) for loc in _initially_allowed(ops)}

    def apply(self, op: Op) -> None:
        index = op.step.index
        if op.kind == "move" and op.source and op.target:
            self.move(op.source, op.target, index)
        elif op.kind in ("new_plate", "retrieve", "arrive") and op.at:
            self.plates[op.at[0]] = _Plate(False if op.kind == "new_plate" else None, index)
        elif op.kind in ("dispose", "store", "depart"):
            for n in op.at:
                self.plates.pop(n, None)
        elif op.kind == "process" and op.sem and "sealed" in op.sem.sets:
            for n in op.at:
                if n in self.plates:
                    self.plates[n].sealed = op.sem.sets["sealed"]

    def move(self, source: str, target: str, index: int) -> None:
        plate = _Plate(None, index) if _is_unlimited(source) else self.plates.pop(source, _Plate(None, index))
        if not _is_trash(target) and not _is_unlimited(target):
            self.plates[target] = _Plate(plate.sealed, index)

    def latest(self, exclude: list[str], sealed: bool | None = None) -> str | None:
        """The most recently arrived plate's location, optionally only plates that may have this sealed state."""
        fits = [
            (p.arrived if p.arrived is not None else -1, loc)
            for loc, p in self.plates.items()
            if loc not in exclude and (sealed is None or p.sealed in (None, sealed))
        ]
        return max(fits)[1] if fits else None


def _plates_before(ops: list[Op], before: int) -> _Tracker:
    tracker = _Tracker(ops)
    for op in ops:
        if op.step.index >= before:
            break
        tracker.apply(op)
    return tracker


def _last_touch(ops: list[Op], before: int, location: str, kinds: set[str]) -> Op | None:
    for op in reversed(ops):
        if op.step.index < before and op.kind in kinds and (location in op.at or location == op.target):
            return op
    return None


def _named(op: Op) -> str:
    return f"step {op.step.index + 1} '{op.step.name}'"


def _explain(label: tuple[int | None, str, str], ops: list[Op], steps: list[FlowStep]) -> Diagnostic:
    index, rule, loc = label
    by_index = {op.step.index: op for op in ops}
    if index is None:
        first = next((op for op in ops if loc in op.at or loc in (op.source, op.target)), None)
        step = first.step if first else None
        user = _named(first) if first else "it is used"
        message = f"no step brings a plate to {loc} before {user} needs one"
        return _diag("flow-unsat", "error", step, message, hint=f"add a transfer to {loc} before that step")
    op = by_index[index]
    where = _named(op)
    if rule == "needs-plate" or rule == "source-has-plate":
        tracker = _plates_before(ops, index)
        at = tracker.latest(exclude=[loc])
        arrived = tracker.plates[at].arrived if at else None
        prev = by_index.get(arrived) if arrived is not None else None
        place = loc if rule == "needs-plate" else f"{loc} to pick up"
        if at and prev:
            context = f"after {_named(prev)} the plate is on {at}"
        elif at:
            context = f"the plate is on {at} (from the start)"
        else:
            context = "no earlier step brings a plate there"
        hint = (
            f"add a transfer from {at} to {loc} before {where}" if at and at != loc else f"bring a plate to {loc} first"
        )
        return _diag("flow-unsat", "error", op.step, f"{where} needs a plate on {place}, but {context}", hint)
    if rule == "target-free":
        prev = _last_touch(ops, index, loc, {"move", "new_plate", "retrieve", "arrive"})
        by = f"{_named(prev)} put a plate there" if prev else "a plate is there from the start"
        return _diag(
            "flow-unsat",
            "error",
            op.step,
            f"{where} puts a plate on {loc}, but it is occupied: {by}",
            f"move that plate away before {where}, or use a free location",
        )
    if rule.startswith(("sealed-", "lid-")):
        state, wanted = rule.split("-")
        prev = _last_touch(ops, index, loc, {"process"})
        if state == "sealed" and wanted == "true":
            message, hint = (
                f"{where} needs a sealed plate on {loc}, but it is not sealed",
                f"seal the plate before {where}",
            )
        elif state == "sealed":
            done = f" (sealed by {_named(prev)})" if prev and prev.sem and prev.sem.sets.get("sealed") else ""
            message, hint = (
                f"{where} needs an unsealed plate on {loc}, but it is sealed{done}",
                "peel the seal first, or do not seal twice",
            )
        else:
            message, hint = f"{where} needs the plate on {loc} {'with' if wanted == 'true' else 'without'} its lid", ""
        return _diag("flow-unsat", "error", op.step, message, hint or None)
    if rule == "has-lid":
        return _diag(
            "flow-unsat",
            "error",
            op.step,
            f"{where} removes a lid on {loc}, but the plate has none",
            "replace the lid first, or drop this step",
        )
    if rule.startswith("range:"):
        arg = rule.split(":", 1)[1]
        low, high = op.sem.ranges[arg] if op.sem else (0, 0)
        message = f"{where} sets {arg} = {op.step.args.get(arg)}, outside {low:g}..{high:g}"
        return _diag("flow-range", "error", op.step, message, f"use a value between {low:g} and {high:g}")
    return _diag("flow-unsat", "error", op.step, f"{where} breaks rule {rule} at {loc}")


# ---------------------------------------------------------------------------------------------------------------------
# Transfer completion
# ---------------------------------------------------------------------------------------------------------------------

_NEEDS_PLATE = {"process", "dispose", "store", "lid_off", "lid_on"}


@dataclass
class Transfer:
    """A move step to insert: which module and action, and how its args are called."""

    module: str
    action: str
    source_arg: str
    target_arg: str
    source: str
    target: str
    before: int


def _mover(lab: Lab, sem: LabSemantics, source: str, targets: list[str]) -> Transfer | None:
    """A module whose move action serves both ``source`` and one of ``targets`` (from its location table)."""
    for name in lab.modules:
        entry = sem.module_type(name)
        table = lab.locations(name)
        if entry is None or source not in table:
            continue
        target = next((t for t in targets if t in table), None)
        for action, spec in entry.actions.items():
            about_action = lab.action(name, action)
            if spec.kind != "move" or not spec.source or not spec.target or about_action is None or not target:
                continue
            if {spec.source, spec.target} <= {a.name for a in about_action.args}:
                return Transfer(name, action, str(spec.source), str(spec.target), source, target, -1)
    return None


def plan_transfers(steps: list[FlowStep], lab: Lab, semantics: LabSemantics | None = None) -> list[Transfer]:
    """Moves missing between consecutive steps: where a step needs the plate at a nest other than where it is.

    Deterministic: it simulates where plates are, picks the most recently arrived plate that can meet the step's
    needs (e.g. a sealed one for a thermocycler) and asks the lab's location tables which arm serves both places.
    A step with no such arm is left alone (the flow check then explains it).
    """
    sem = semantics or LabSemantics(lab)
    ops = resolve_ops(steps, sem)
    tracker = _Tracker(ops)
    found: list[Transfer] = []
    for op in ops:
        if op.kind in _NEEDS_PLATE and not any(n in tracker.plates for n in op.at):
            wanted = op.sem.requires.get("sealed") if op.sem else None
            source = tracker.latest(exclude=op.at, sealed=wanted)
            transfer = _mover(lab, sem, source, op.at) if source else None
            if transfer is not None:
                transfer.before = op.step.index
                found.append(transfer)
                tracker.move(transfer.source, transfer.target, op.step.index)
        tracker.apply(op)
    return found
