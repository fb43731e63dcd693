"""The offline planner: a description → clauses → lab actions with bound values, in the scientist's order.

No model and no network. Each clause maps to one action (``matcher``) or is reported as unmapped; a clause that
moves the plate to an instrument and says what to do there ("to the camera for a picture") maps to the move and that
instrument's action. A clause that needs an instrument the lab lacks (a centrifuge, "in a lyophilizer") makes the
experiment infeasible with that capability named (``capabilities``).

Plate moves follow where the plate is: a step that needs the plate at another nest gets an arm transfer first (then
``complete_transfers`` — the same completion the model path uses — checks for any still missing), and instruments
with a door or lid (``open``/``close``, ``open_lid``/``close_lid``) are opened before and closed after every transfer
into or out of them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import yaml

from wei_gen.lab import Lab
from wei_gen.offline.binding import bind_args, is_location_arg
from wei_gen.offline.capabilities import missing_capabilities
from wei_gen.offline.matcher import Candidate, LabMatcher
from wei_gen.offline.text import Clause, spans, split_clauses, stems, tokens
from wei_gen.state import ArgValue, Plan, PlanStep
from wei_gen.tools.completion import complete_transfers
from wei_gen.tools.flow import FlowStep, resolve_ops
from wei_gen.wei_types import Step, Workflow

DOOR_PAIRS = (("open", "close"), ("open_lid", "close_lid"), ("open_door", "close_door"), ("open_tray", "close_tray"))
_SOURCE_WORDS = {"from"}
_TARGET_WORDS = {"to", "into", "onto", "in", "on", "back", "at"}
_HERE_WORDS = {"there", "here"}
"""Words that name where the plate already is ("leave it there")."""

_MATCHERS: dict[int, tuple[Lab, LabMatcher]] = {}
_MATCHERS_LOCK = threading.Lock()


def matcher_for(lab: Lab) -> LabMatcher:
    """The lab's matcher, built once per Lab object (the nodes' lab cache hands out the same object)."""
    with _MATCHERS_LOCK:
        hit = _MATCHERS.get(id(lab))
        if hit is not None and hit[0] is lab:
            return hit[1]
        if len(_MATCHERS) > 16:
            _MATCHERS.clear()
        matcher = LabMatcher(lab)
        _MATCHERS[id(lab)] = (lab, matcher)
        return matcher


@dataclass
class PlannedStep:
    """One step of the offline plan."""

    module: str
    """Workcell module."""
    action: str
    """Action name."""
    args: dict[str, Any]
    """Bound args."""
    purpose: str
    """The clause it came from, or why it was added."""
    origin: str = "clause"
    """clause, transfer or door."""


@dataclass
class OfflinePlan:
    """What the offline planner made of a description."""

    clauses: list[Clause]
    """The description's clauses, in order."""
    steps: list[PlannedStep] = field(default_factory=list)
    """The plan, transfers and door steps included."""
    mapped: list[tuple[str, str, str]] = field(default_factory=list)
    """(clause, module.action, evidence) for every mapped clause."""
    unmapped: list[str] = field(default_factory=list)
    """Clauses that map to no action (reported, not guessed)."""
    missing: list[tuple[str, str]] = field(default_factory=list)
    """(capability, clause) the lab lacks."""
    notes: list[str] = field(default_factory=list)
    """Values not bound, transfers and door steps added."""
    matcher: str = ""
    """How clauses were matched."""

    @property
    def feasible(self) -> bool:
        """Nothing needed is missing and at least one clause maps to an action."""
        return not self.missing and bool(self.mapped)

    @property
    def missing_capability(self) -> str:
        """The capabilities the lab lacks, or why nothing could be planned."""
        if self.missing:
            return ", ".join(dict.fromkeys(c for c, _ in self.missing))
        return "" if self.mapped else "no action of this lab matches the description"

    def reason(self) -> str:
        """The verdict in words."""
        if self.missing:
            return "; ".join(f"'{clause}' needs a {cap}, which this lab does not have" for cap, clause in self.missing)
        if not self.mapped:
            return f"none of the clauses maps to an action of this lab: {'; '.join(self.unmapped) or '(empty)'}"
        unmapped = f"; could not map: {'; '.join(repr(u) for u in self.unmapped)}" if self.unmapped else ""
        return f"every needed instrument is in the lab ({len(self.mapped)} clause(s) mapped){unmapped}"


def parse_values(values: str | dict[str, Any] | None) -> dict[str, Any]:
    """The scientist's values as a mapping (YAML text or a mapping); free text gives none."""
    if isinstance(values, dict):
        return dict(values)
    try:
        data = yaml.safe_load(values or "")
    except yaml.YAMLError:
        return {}
    return {str(k): v for k, v in data.items()} if isinstance(data, dict) else {}


class _Builder:
    """Assembles the steps while following where the plate is."""

    def __init__(self, lab: Lab, matcher: LabMatcher, values: dict[str, Any], out: OfflinePlan):
        self.lab, self.m, self.values, self.out = lab, matcher, values, out
        self.at: str | None = None  # where the plate is now (None: not known yet)

    def nest(self, module: str, action: str, args: dict[str, Any]) -> list[str]:
        ops = resolve_ops([FlowStep(0, action, module, action, args)], self.m.semantics)
        return ops[0].at if ops else []

    def mover(self, source: str, target: str) -> PlannedStep | None:
        """An arm move from source to target (a module whose location table has both)."""
        for name in self.lab.modules:
            entry = self.m.semantics.module_type(name)
            table = self.lab.locations(name)
            if entry is None or source not in table or target not in table:
                continue
            for action, spec in entry.actions.items():
                if spec.kind == "move" and spec.source and spec.target and self.lab.action(name, action) is not None:
                    args = {str(spec.source): source, str(spec.target): target}
                    return PlannedStep(name, action, args, f"Move plate from {source} to {target}", "transfer")
        return None

    def bring(self, target: str) -> None:
        if self.at is not None and self.at != target:
            move = self.mover(self.at, target)
            if move is None:
                self.out.notes.append(f"no arm serves both {self.at} and {target}")
            else:
                self.out.steps.append(move)
                self.out.notes.append(f"added a transfer from {self.at} to {target}")
        self.at = target

    def places(self, clause: Clause, words: set[str], module: str) -> list[str]:
        return [
            loc
            for prep, span in spans(clause.text)
            if prep in words and (loc := self.m.locate(stems(" ".join(span)), module))
        ]

    def add(self, clause: Clause, cand: Candidate, places: bool = True) -> bool:
        """Add the clause's step (and the transfer it needs first); ``places=False``: its places are another step's.

        False when the clause adds nothing: a move to where the plate already is ("leave it in the reader" after the
        reading) keeps it there.
        """
        module, action = cand.module, cand.action.name
        text = clause.original or clause.text
        args, from_values, unbound = bind_args(cand, text, self.values, bool(self.lab.locations(module)))
        sem = self.m.semantics.action(module, action)
        sources = self.places(clause, _SOURCE_WORDS, module) if places else []
        targets = self.places(clause, _TARGET_WORDS, module) if places else []
        trash = self.m.trash_location() if self.m.is_trash(clause.words) else None
        if sem is not None and sem.kind == "move" and sem.source and sem.target:
            source = sources[0] if sources else next((t for t in targets if t != trash), None) if trash else None
            source = source or self.at
            target = trash or next((t for t in targets if t != source), None)
            if self._stays(clause, source, target, targets):
                self.out.notes.append(f"'{clause.text}': the plate is already at {source}, so it stays (no move)")
                return False
            if source is not None:
                args[str(sem.source)] = source
            if target is not None:
                args[str(sem.target)] = target
            self.at = None if target is None or target == trash else target
        elif sem is not None and sem.kind in ("lid_off", "lid_on") and sem.at:
            plate = (sources + [t for t in targets if t != trash])[:1] if sem.kind == "lid_on" else sources[:1]
            where = plate[0] if plate else self.at
            other = next((t for t in targets if t != where), None) if sem.kind == "lid_off" else None
            other = trash or other
            lid_arg = "target" if sem.at == "source" else "source"
            if where is not None:
                args[str(sem.at)] = where
                self.bring(where)
            if other is not None and lid_arg in {a.name for a in cand.action.args}:
                args[lid_arg] = other
        else:
            nests = self.nest(module, action, args) if sem is not None and sem.kind != "noop" else []
            if sem is not None and sem.kind in ("new_plate", "retrieve"):
                self.at = nests[0] if nests else None
            elif nests:
                hint = next((loc for loc in sources + targets if loc not in nests), None)
                if hint is not None:
                    self.at = hint
                self.bring(nests[0])
        missing = [a.name for a in cand.action.args if is_location_arg(a, bool(self.lab.locations(module)))
                   and a.required and a.name not in args]  # fmt: skip
        for name in unbound + missing:
            self.out.notes.append(f"no value for {module}.{action} {name} in '{clause.text}'")
        for name, key in from_values.items():
            self.out.notes.append(f"{module}.{action} {name} = values[{key!r}]")
        said = clause.original or clause.text  # the scientist's letter case in the step name ("PCR", "OT-2")
        self.out.steps.append(PlannedStep(module, action, args, said[:1].upper() + said[1:]))
        return True

    def _stays(self, clause: Clause, source: str | None, target: str | None, targets: list[str]) -> bool:
        """A move that names no other place than where the plate is: it stays ("leave it in the reader", "there")."""
        if target is not None or source is None or source != self.at:
            return False
        return source in targets or bool(_HERE_WORDS & set(tokens(clause.text)))


def plan_offline(description: str, values: str | dict[str, Any] | None, lab: Lab) -> OfflinePlan:
    """Plan an experiment without a model."""
    matcher = matcher_for(lab)
    clauses = split_clauses(description, matcher.verbs(), matcher.is_instruction)
    out = OfflinePlan(clauses=clauses, matcher=matcher.matcher_name)
    mapping = parse_values(values)
    builder = _Builder(lab, matcher, mapping, out)
    for clause in clauses:
        match = matcher.match(clause)
        named = match is not None and matcher.module_score(match.candidate.module, clause.words)[0] > 0
        lacking = missing_capabilities(clause, lab, matcher, named)
        if lacking:
            out.missing += [(cap, clause.text) for cap in lacking]
            continue
        if match is None:
            out.unmapped.append(clause.text)
            continue
        fresh = matcher.new_plate_for(clause, match.candidate)
        if fresh is not None:  # "the absorbance of an empty plate from tower 3": get the plate, then read it
            out.mapped.append((clause.text, fresh.key, "the clause asks for a new plate"))
            builder.add(clause, fresh)
        out.mapped.append((clause.text, match.candidate.key, match.why))
        if not builder.add(clause, match.candidate, places=fresh is None):
            out.mapped[-1] = (clause.text, match.candidate.key, f"{match.why}; the plate is already there: no step")
            continue
        purpose = _purpose(builder, clause, match.candidate)
        if purpose is not None:
            out.mapped.append((clause.text, purpose.key, f"{purpose.module} is where the clause moves the plate"))
            builder.add(clause, purpose, places=False)
    if out.feasible:
        _complete(out, lab)
        _add_doors(out, lab, matcher, mapping)
    return out


def _purpose(builder: _Builder, clause: Clause, head: Candidate) -> Candidate | None:
    """The action a move's clause asks for at its destination ("to the camera for a picture"), if any."""
    if head.kind != "move" or builder.at is None:
        return None
    owner = builder.m.owner(builder.at)
    return builder.m.purpose_at(clause, owner, head) if owner is not None else None


def steps_to_workflow(steps: list[PlannedStep], name: str) -> Workflow:
    """Planned steps as a workflow (for transfer completion and the flow check)."""
    return Workflow(
        name=name,
        flowdef=[Step(name=f"{i + 1}. {s.purpose}", module=s.module, action=s.action, args=s.args)
                 for i, s in enumerate(steps)],
    )  # fmt: skip


def _complete(out: OfflinePlan, lab: Lab) -> None:
    """Insert any transfer still missing (the pipeline's transfer completion)."""
    workflow, notes = complete_transfers(steps_to_workflow(out.steps, "offline plan"), lab)
    if not notes:
        return
    by_name = {f"{i + 1}. {s.purpose}": s for i, s in enumerate(out.steps)}
    out.steps = [
        by_name.get(step.name) or PlannedStep(step.module, step.action, dict(step.args), step.name, "transfer")
        for step in workflow.flowdef
    ]
    out.notes += notes


def _add_doors(out: OfflinePlan, lab: Lab, matcher: LabMatcher, values: dict[str, Any]) -> None:
    """Open an instrument's door or lid before each transfer into or out of it, and close it after."""
    doors: dict[str, tuple[Candidate, Candidate]] = {}
    by_key = {c.key: c for c in matcher.candidates}
    for module in lab.modules:
        for opener, closer in DOOR_PAIRS:
            if f"{module}.{opener}" in by_key and f"{module}.{closer}" in by_key:
                for nest in matcher.semantics.nests(module):
                    doors[nest] = (by_key[f"{module}.{opener}"], by_key[f"{module}.{closer}"])
                break
    if not doors:
        return
    steps: list[PlannedStep] = []
    for i, step in enumerate(out.steps):
        sem = matcher.semantics.action(step.module, step.action)
        touched = (
            [v for v in (step.args.get(str(sem.source)), step.args.get(str(sem.target))) if v in doors]
            if sem is not None and sem.kind == "move"
            else []
        )
        after: list[PlannedStep] = []
        for nest in touched:
            open_step, close_step = doors[nest]
            if not steps or (steps[-1].module, steps[-1].action) != (open_step.module, open_step.action.name):
                steps.append(_door_step(open_step, values, f"Open {open_step.module} for the transfer", out, i))
            following = out.steps[i + 1] if i + 1 < len(out.steps) else None
            if following is None or (following.module, following.action) != (close_step.module, close_step.action.name):
                after.append(_door_step(close_step, values, f"Close {close_step.module} after the transfer", out, i))
        steps.append(step)
        steps += after
    added = len(steps) - len(out.steps)
    if added:
        out.notes.append(f"added {added} door/lid step(s) around transfers into or out of instruments")
    out.steps = steps


def _door_step(cand: Candidate, values: dict[str, Any], purpose: str, out: OfflinePlan, at: int) -> PlannedStep:
    """A door/lid step for the transfer at ``out.steps[at]``.

    Its required args come first from the nearest step of the same module that has an arg of that name (the lid of
    a thermocycler takes the plate type its program runs with), then from the values; each source is noted.
    """
    args, from_values, _ = bind_args(cand, "", values, False)
    for arg in cand.action.args:
        if not arg.required or arg.default is not None:
            continue
        inherited = _inherit(out.steps, at, cand.module, arg.name)
        if inherited is not None:
            args[arg.name] = inherited.args[arg.name]
            from_values.pop(arg.name, None)
            note = f"{cand.key} {arg.name} = {args[arg.name]!r} (as in {inherited.module}.{inherited.action})"
        elif arg.name in from_values:
            note = f"{cand.key} {arg.name} = values[{from_values[arg.name]!r}]"
        else:
            note = f"no value for {cand.key} {arg.name} (no step of {cand.module} and no value gives one)"
        if note not in out.notes:
            out.notes.append(note)
    return PlannedStep(cand.module, cand.action.name, args, purpose, "door")


def _inherit(steps: list[PlannedStep], at: int, module: str, arg: str) -> PlannedStep | None:
    """The step of ``module`` nearest to ``at`` (the following one on a tie) that has ``arg`` bound."""
    having = [(abs(j - at), j < at, j) for j, s in enumerate(steps) if s.module == module and arg in s.args]
    return steps[min(having)[2]] if having else None


def to_plan(result: OfflinePlan, description: str) -> Plan:
    """The offline plan as the pipeline's Plan artifact."""
    first = result.clauses[0].text if result.clauses else "experiment"
    title = first[:1].upper() + first[1:60]
    added = sum(1 for s in result.steps if s.origin != "clause")
    summary = (
        f"Offline plan of '{description.strip()[:200]}': {len(result.mapped)} clause(s) mapped, "
        f"{added} transfer/door step(s) added."
        + (f" Not mapped: {'; '.join(result.unmapped)}." if result.unmapped else "")
    )
    return Plan(
        title=title,
        summary=summary,
        steps=[
            PlanStep(
                instrument=s.module,
                action=s.action,
                args=[ArgValue(name=k, value=json.dumps(v)) for k, v in s.args.items()],
                purpose=s.purpose,
            )
            for s in result.steps
        ],
    )
