"""Flow fault injection: break satisfiable corpus workflows in labware-flow ways and check the flow check catches each.

Subjects are corpus workflows the flow check finds sat that have flow-relevant steps (a move, an instrument acting on
a plate, a lid step...). Each fault kind is injected, one per copy of the parsed YAML, at every place a subject offers:

(a) drop-transfer       delete a transfer whose target a later step needs a plate on; must fail: that later step.
(b) swap-instrument     swap an instrument step with the transfer that brings its plate; must fail: the instrument
                        step at its new place (no plate there yet) or, where a plate may be assumed there at the start,
                        the transfer at its new place (it puts a plate onto that plate).
(c) seal-twice          duplicate a seal step right after it; must fail: the copy (the plate is already sealed).
(d) peel-unsealed       peel a plate that is known to be unsealed; must fail: the peel. Sites: a peel duplicated right
                        after it; or, before the first seal of a plate known unsealed (fresh, or through a liquid
                        handler), a transfer to the peeler, a peel and a transfer back.
(e) target-occupied     change a transfer's target to a location that holds a plate at that time; must fail: the
                        transfer.
(f) instrument-no-plate insert an instrument step (after plates have started moving) at an instrument whose nests
                        hold no plate then; must fail: the inserted step.

"Must fail" is checked independently of z3 by a three-valued replay of the steps (plate there: yes / no / unknown)
under the flow check's documented rule for the start (a plate may be assumed present only where the workflow first
picks one up or works with a lid, or where an instrument acts before any plate has moved). A candidate whose defined
step does not provably fail under that rule (e.g. dropping the first transfer of a workflow, which just means the plate
may start at its target) is not a site; such candidates are counted as "not provable". Caught = verdict unsat and an
error diagnostic on the defined step. Example-lab workflows (examples/labs/rpl_like/examples) are used only for a kind
the corpus offers no site for. The rate must be 100 % for every kind, with at least one site each.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests import corpus
from wei_gen.lab import Lab, lab_from_dir
from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
from wei_gen.tools.semantics import ActionSemantics, LabSemantics, PlateState
from wei_gen.yamlio import parse_yaml, read_text

pytestmark = [pytest.mark.corpus, pytest.mark.skipif(not corpus.available(), reason=corpus.SKIP_REASON)]

EXAMPLE_LAB = Path(__file__).resolve().parents[2] / "examples" / "labs" / "rpl_like"
FAULT_KINDS = [
    "drop-transfer",
    "swap-instrument",
    "seal-twice",
    "peel-unsealed",
    "target-occupied",
    "instrument-no-plate",
]
FLOW_KINDS = {"move", "new_plate", "retrieve", "process", "dispose", "store", "lid_off", "lid_on"}
WITH_PLATE = {"process", "dispose", "store", "lid_off", "lid_on"}
_UNLIMITED = re.compile(r"stack|tower|hotel", re.I)  # the flow check's convention: these always have plates to give
_VARIANT_TOKENS = {"narrow", "wide", "high", "low"}  # BIO 446 names one nest per approach: exchange_deck_low_narrow


def _unlimited(location: str) -> bool:
    return bool(_UNLIMITED.search(location))


def _trash(location: str) -> bool:
    return "trash" in location.lower()


def _stem(location: str) -> str:
    """The place a location name denotes, without approach/height variants (the flow check tells them apart)."""
    return "_".join(t for t in re.split(r"[._\-\s]+", location.lower()) if t and t not in _VARIANT_TOKENS)


# ---------------------------------------------------------------------------------------------------------------------
# Steps as labware operations (from the lab's semantics, independently of the z3 encoding)
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    index: int
    module: str
    kind: str
    source: str | None = None
    target: str | None = None
    target_arg: str | None = None
    at: tuple[str, ...] = ()
    sem: ActionSemantics | None = None


def _ref(ref: str | None, module: str, args: dict[str, Any]) -> str | None:
    if ref is None:
        return None
    if ref in args:
        value = args[ref]
        return value if isinstance(value, str) and not value.startswith(("$", "payload.")) else None
    # A fixed location written with {module}; anything else names an arg the step did not give: unknown.
    return ref.replace("{module}", module) if "{module}" in ref else None


def ops_of(data: dict[str, Any], sem: LabSemantics) -> list[Op]:
    ops = []
    for step in steps_from_workflow(data):
        action = sem.action(step.module, step.action)
        if action is None:
            ops.append(Op(step.index, step.module, "unchecked"))
        elif action.kind == "move":
            source, target = _ref(action.source, step.module, step.args), _ref(action.target, step.module, step.args)
            if source is None and target is None:
                ops.append(Op(step.index, step.module, "unchecked"))
                continue
            if source is None or target is None:  # one end known only at run time: a plate arrives or departs
                kind, loc = ("arrive", target) if source is None else ("depart", source)
                ops.append(Op(step.index, step.module, kind, at=(str(loc),), sem=action))
                continue
            target_arg = action.target if action.target in step.args else None
            ops.append(Op(step.index, step.module, "move", source, target, target_arg, sem=action))
        elif action.kind == "noop":
            ops.append(Op(step.index, step.module, "noop", sem=action))
        else:
            at = _ref(action.at, step.module, step.args) if action.at else None
            nests = tuple([at] if at else sem.nests(step.module))
            ops.append(
                Op(step.index, step.module, action.kind, at=nests, sem=action)
                if nests
                else Op(step.index, step.module, "unchecked")
            )
    return ops


# ---------------------------------------------------------------------------------------------------------------------
# Three-valued replay: which step provably cannot run
# ---------------------------------------------------------------------------------------------------------------------


def initially_allowed(ops: list[Op]) -> set[str]:
    """Where a plate may be assumed at the start: first picked up / lid-handled there, or used before any move."""
    allowed: set[str] = set()
    seen: set[str] = set()
    moved = anywhere = False  # after a plate left for a run-time place, it may be at any location not seen yet
    for op in ops:
        if op.kind == "move":
            assert op.source is not None and op.target is not None
            if op.source not in seen:
                allowed.add(op.source)
            seen |= {op.source, op.target}
            moved = True
        elif op.kind in WITH_PLATE:
            allowed |= {
                n for n in op.at if n not in seen and (op.kind in ("lid_off", "lid_on") or not moved or anywhere)
            }
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


@dataclass
class Replay:
    """Plate facts per location: True / False / None (unknown), and the first step that provably fails."""

    ops: list[Op]
    occ: dict[str, bool | None] = field(default_factory=dict)
    sealed: dict[str, bool | None] = field(default_factory=dict)
    lid: dict[str, bool | None] = field(default_factory=dict)
    violation: int | None = None
    before: dict[int, tuple[dict[str, bool | None], dict[str, bool | None]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.allowed = initially_allowed(self.ops)
        for op in self.ops:
            self.before[op.index] = ({k: self.has(k) for k in self._known()}, dict(self.sealed))
            if self._apply(op) and self.violation is None:
                self.violation = op.index
        end = self.ops[-1].index + 1 if self.ops else 0
        self.before[end] = ({k: self.has(k) for k in self._known()}, dict(self.sealed))

    def _known(self) -> set[str]:
        return {loc for op in self.ops for loc in (op.source, op.target, *op.at) if loc} | set(self.occ)

    def has(self, loc: str) -> bool | None:
        if _unlimited(loc):
            return True
        if _trash(loc):
            return False
        return self.occ.get(loc, None if loc in self.allowed else False)

    def _apply(self, op: Op) -> bool:
        bad = False
        if op.kind == "move":
            src, dst = op.source, op.target
            assert src is not None and dst is not None
            bad = (not _unlimited(src) and self.has(src) is False) or (
                not _trash(dst) and not _unlimited(dst) and src != dst and self.has(dst) is True
            )
            sealed, lid = (None, None) if _unlimited(src) else (self.sealed.get(src), self.lid.get(src))
            if not _unlimited(src):
                self.occ[src] = False
            self.occ[dst] = not _trash(dst)
            self.sealed[dst], self.lid[dst] = sealed, lid
        elif op.kind in ("new_plate", "retrieve", "arrive"):
            loc = op.at[0]
            if op.kind == "arrive" and (_trash(loc) or _unlimited(loc)):
                return False
            bad = self.has(loc) is True
            self.occ[loc], self.sealed[loc], self.lid[loc] = True, False if op.kind == "new_plate" else None, None
        elif op.kind == "depart":
            loc = op.at[0]
            if _unlimited(loc):
                return False
            bad = self.has(loc) is False
            self.occ[loc] = False
        elif op.kind in WITH_PLATE:
            live = [n for n in op.at if self.has(n) is not False]
            bad = not live
            sem = op.sem
            assert sem is not None
            if len(live) == 1:
                n = live[0]
                for state, value in sem.requires.items():
                    table = self.sealed if state == "sealed" else self.lid
                    bad = bad or table.get(n) is (not value)
                    table[n] = value
                if op.kind == "lid_off":
                    bad = bad or self.lid.get(n) is False
                self.occ[n] = op.kind not in ("dispose", "store")
            else:
                for n in live:
                    self.occ[n] = False if op.kind in ("dispose", "store") else self.has(n)
            for n in live:
                for state, value in sem.sets.items():
                    (self.sealed if state == "sealed" else self.lid)[n] = value if self.has(n) is True else None
                if op.kind in ("lid_off", "lid_on"):
                    self.lid[n] = (op.kind == "lid_on") if self.has(n) is True else None
        return bad


# ---------------------------------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    name: str
    origin: str
    lab: Lab
    sem: LabSemantics
    data: dict[str, Any]
    ops: tuple[Op, ...]


def _subject(name: str, origin: str, lab: Lab, data: Any, skipped: list[str]) -> Subject | None:
    if not isinstance(data, dict) or not isinstance(data.get("flowdef"), list):
        return None
    sem = LabSemantics(lab)
    report = check_flow(steps_from_workflow(data), lab, sem)
    if report.verdict != "sat":
        return None
    ops = ops_of(data, sem)
    if not any(op.kind in FLOW_KINDS for op in ops):
        return None
    return Subject(name, origin, lab, sem, data, tuple(ops))


@cache
def subjects() -> tuple[list[Subject], list[Subject], list[str]]:
    """(corpus subjects, example-lab subjects, corpus workflows left out and why)."""
    skipped: list[str] = []
    found = []
    for wf in corpus.workflows():
        assert wf.workcell is not None
        data = parse_yaml(read_text(wf.path), str(wf.path)).data
        if (s := _subject(wf.name, "corpus", corpus.lab_for(wf.workcell), data, skipped)) is not None:
            found.append(s)
    lab = lab_from_dir(EXAMPLE_LAB)
    examples = []
    for path in lab.example_paths:
        data = parse_yaml(read_text(path), str(path)).data
        if (s := _subject(f"examples/{path.name}", "example", lab, data, [])) is not None:
            examples.append(s)
    return found, examples, skipped


# ---------------------------------------------------------------------------------------------------------------------
# Fault sites
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Injection:
    detail: str
    mutate: Callable[[dict[str, Any]], None]
    expected: frozenset[int]
    """The step(s) the fault makes impossible (indexes in the mutated workflow); the first one must fail."""


def _delete(i: int) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data["flowdef"][i]

    return mutate


def _swap(i: int, j: int) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        flow = data["flowdef"]
        flow[i], flow[j] = flow[j], flow[i]

    return mutate


def _insert(i: int, steps: list[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["flowdef"][i:i] = copy.deepcopy(steps)

    return mutate


def _set_arg(i: int, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["flowdef"][i]["args"][key] = value

    return mutate


def _touches(op: Op, loc: str) -> bool:
    return loc in (op.source, op.target) or loc in op.at


def sites_drop_transfer(s: Subject) -> Iterator[Injection]:
    for n, op in enumerate(s.ops):
        if op.kind != "move" or op.target is None or _trash(op.target) or _unlimited(op.target):
            continue
        later = next((o for o in s.ops[n + 1 :] if _touches(o, op.target)), None)
        consumer = later is not None and (
            later.kind in WITH_PLATE or later.kind == "move" and later.source == op.target
        )
        if later is None or not consumer:
            continue  # nothing later needs the plate this transfer brings
        yield Injection(
            f"drop step {op.index} ({op.source} -> {op.target}); step {later.index} needs a plate on {op.target}",
            _delete(op.index),
            frozenset({later.index - 1}),
        )


def sites_swap_instrument(s: Subject) -> Iterator[Injection]:
    for n, op in enumerate(s.ops):
        if op.kind != "process":
            continue
        bringer = next((o for o in reversed(s.ops[:n]) if any(_touches(o, loc) for loc in op.at)), None)
        if bringer is None or bringer.kind != "move" or bringer.target not in op.at:
            continue
        yield Injection(
            f"swap step {op.index} ({op.module} at {op.at}) with step {bringer.index} (-> {bringer.target})",
            _swap(bringer.index, op.index),
            frozenset({bringer.index, op.index}),
        )


def _sets(op: Op, state: PlateState, value: bool) -> bool:
    return op.kind == "process" and op.sem is not None and op.sem.sets.get(state) is value


def sites_seal_twice(s: Subject) -> Iterator[Injection]:
    for op in s.ops:
        if _sets(op, "sealed", True):
            step = s.data["flowdef"][op.index]
            yield Injection(
                f"repeat seal step {op.index} ({op.module})", _insert(op.index + 1, [step]), frozenset({op.index + 1})
            )


def _peeler(s: Subject) -> tuple[str, str, str] | None:
    """(module, action, its single nest) of a peeler in the lab."""
    for module in sorted(s.lab.modules):
        entry = s.sem.module_type(module)
        nests = s.sem.nests(module)
        for name, action in sorted(entry.actions.items()) if entry else []:
            peels = action.kind == "process" and action.requires.get("sealed") is True
            if peels and action.sets.get("sealed") is False and len(nests) == 1:
                return module, name, nests[0]
    return None


def sites_peel_unsealed(s: Subject) -> Iterator[Injection]:
    for op in s.ops:  # a peel right after a peel: the plate is known unsealed
        if _sets(op, "sealed", False) and op.sem is not None and op.sem.requires.get("sealed") is True:
            step = s.data["flowdef"][op.index]
            yield Injection(
                f"repeat peel step {op.index} ({op.module})", _insert(op.index + 1, [step]), frozenset({op.index + 1})
            )
    seal = next((op for op in s.ops if _sets(op, "sealed", True)), None)
    peeler = _peeler(s)
    if seal is None or peeler is None or len(seal.at) != 1:
        return
    nest = seal.at[0]
    occ, sealed = Replay(list(s.ops)).before[seal.index]
    arm = next((o for o in reversed(s.ops) if o.index < seal.index and o.kind == "move" and o.target == nest), None)
    if occ.get(nest) is not True or sealed.get(nest) is not False or arm is None:
        return  # the plate on the sealer is not known to be there and unsealed
    module, action, peel_nest = peeler
    arm_step = s.data["flowdef"][arm.index]
    verb = arm_step.get("action") or arm_step.get("command")
    key = "action" if "action" in arm_step else "command"
    steps = [
        {
            "name": "injected: to the peeler",
            "module": arm.module,
            key: verb,
            "args": {"source": nest, "target": peel_nest},
        },
        {"name": "injected: peel the unsealed plate", "module": module, key: action, "args": {}},
        {
            "name": "injected: back to the sealer",
            "module": arm.module,
            key: verb,
            "args": {"source": peel_nest, "target": nest},
        },
    ]
    yield Injection(
        f"before seal step {seal.index}: plate {nest} -> {peel_nest}, {module}.{action}, back",
        _insert(seal.index, steps),
        frozenset({seal.index + 1}),
    )


def _reachable(s: Subject, module: str) -> set[str]:
    """Where a plate mover can put a plate: its location table, else the places its moves in this workflow use."""
    table = set(s.lab.locations(module))
    return table or {
        loc for o in s.ops if o.kind == "move" and o.module == module for loc in (o.source, o.target) if loc
    }


def sites_target_occupied(s: Subject) -> Iterator[Injection]:
    replay = Replay(list(s.ops))
    for op in s.ops:
        if op.kind != "move" or op.target_arg is None or op.source is None or op.target is None:
            continue
        occ, _ = replay.before[op.index]
        reachable = _reachable(s, op.module)
        busy = sorted(
            loc
            for loc, has in occ.items()
            if has is True
            and loc in reachable
            and not _unlimited(loc)
            and not _trash(loc)
            and _stem(loc) not in (_stem(op.source), _stem(op.target))  # another name for the same nest is no fault
        )
        for loc in busy:
            yield Injection(
                f"step {op.index}: target {op.target} -> {loc} (holds a plate then)",
                _set_arg(op.index, op.target_arg, loc),
                frozenset({op.index}),
            )


def sites_instrument_no_plate(s: Subject) -> Iterator[Injection]:
    first_move = next((op for op in s.ops if op.kind in ("move", "new_plate", "retrieve")), None)
    if first_move is None:
        return
    where = first_move.index + 1
    occ, _ = Replay(list(s.ops)).before.get(where, ({}, {}))
    for module in sorted(s.lab.modules):
        entry = s.sem.module_type(module)
        about = s.lab.modules[module].about
        process = sorted(
            name
            for name, a in (entry.actions.items() if entry else [])
            if a.kind == "process" and a.at is None and (about is None or about.action(name) is not None)
        )
        nests = s.sem.nests(module)
        if not process or not nests or any(occ.get(n) is not False and n in occ for n in nests):
            continue  # no plate-handling action, no known nest, or a plate may be on a nest then
        step = {
            "name": f"injected: {module}.{process[0]} with no plate",
            "module": module,
            "action": process[0],
            "args": {},
        }
        yield Injection(f"insert {module}.{process[0]} at step {where}", _insert(where, [step]), frozenset({where}))


SITES: dict[str, Callable[[Subject], Iterator[Injection]]] = {
    "drop-transfer": sites_drop_transfer,
    "swap-instrument": sites_swap_instrument,
    "seal-twice": sites_seal_twice,
    "peel-unsealed": sites_peel_unsealed,
    "target-occupied": sites_target_occupied,
    "instrument-no-plate": sites_instrument_no_plate,
}


# ---------------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class KindResult:
    kind: str
    origin: str = "corpus"
    candidates: int = 0
    not_provable: list[str] = field(default_factory=list)
    workflows: set[str] = field(default_factory=set)
    injected: int = 0
    caught: int = 0
    misses: list[str] = field(default_factory=list)
    also_other_steps: int = 0
    """Caught injections whose report also puts errors on other steps."""


def _errors(report: FlowReport) -> str:
    return "; ".join(f"step {d.step_index}: {d.message}" for d in report.diagnostics if d.severity == "error") or "none"


def _run(kind: str, subjects_: list[Subject], result: KindResult) -> None:
    for s in subjects_:
        for inj in SITES[kind](s):
            result.candidates += 1
            mutated = copy.deepcopy(s.data)
            inj.mutate(mutated)
            assert mutated != s.data, f"{s.name}: {inj.detail} changed nothing"
            first = Replay(ops_of(mutated, s.sem)).violation
            if first is None or first not in inj.expected:
                result.not_provable.append(f"{s.name}: {inj.detail} (first provable failure: {first})")
                continue
            result.injected += 1
            result.workflows.add(s.name)
            report = check_flow(steps_from_workflow(mutated), s.lab, s.sem)
            named = any(d.severity == "error" and d.step_index == first for d in report.diagnostics)
            if report.verdict == "unsat" and named:
                result.caught += 1
                steps = {d.step_index for d in report.diagnostics if d.severity == "error"}
                result.also_other_steps += bool(steps - {first})
            else:
                result.misses.append(
                    f"{s.name}: {inj.detail}: want an error on step {first}; got {report.verdict}: {_errors(report)}"
                )


def back_to_back(singles: list[Subject]) -> list[Subject]:
    """Two subjects of one lab run one after the other (as an application runs its workflows), where that is sat.

    Single real workflows move one plate at a time; a pair is where a second plate is in play, the only way a
    transfer can be aimed at an occupied nest (fault e) without also inventing the occupant.
    """
    out = []
    for first in singles:
        for second in singles:
            if first is second or first.lab is not second.lab:
                continue
            data = {
                "name": f"{first.data.get('name')} + {second.data.get('name')}",
                "parameters": [*(first.data.get("parameters") or []), *(second.data.get("parameters") or [])],
                "flowdef": [*copy.deepcopy(first.data["flowdef"]), *copy.deepcopy(second.data["flowdef"])],
            }
            if check_flow(steps_from_workflow(data), first.lab, first.sem).verdict != "sat":
                continue
            ops = ops_of(data, first.sem)
            if Replay(ops).violation is None:
                out.append(
                    Subject(f"{first.name} + {second.name}", first.origin, first.lab, first.sem, data, tuple(ops))
                )
    return out


@cache
def pools() -> list[tuple[str, list[Subject]]]:
    """Where sites are looked for, in order: corpus first, the example lab only for a kind the corpus lacks."""
    found, examples, _ = subjects()
    return [
        ("corpus", found),
        ("corpus, back to back", back_to_back(found)),
        ("example lab", examples),
        ("example lab, back to back", back_to_back(examples)),
    ]


@cache
def results() -> dict[str, KindResult]:
    out = {}
    for kind in FAULT_KINDS:
        for origin, pool in pools():
            result = KindResult(kind, origin)
            _run(kind, pool, result)
            if result.injected:
                break
        out[kind] = result
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------


def test_subjects() -> None:
    found, examples, _ = subjects()
    assert len(found) >= 10, f"only {len(found)} sat corpus workflows with flow-relevant steps"
    assert examples, "the example lab's workflows should be sat subjects"


def test_replay_agrees_with_the_unmutated_subjects() -> None:
    """The independent replay finds no failing step in any subject (all are sat)."""
    found, examples, _ = subjects()
    for s in found + examples:
        assert Replay(list(s.ops)).violation is None, s.name


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_flow_fault_kind_is_always_caught(kind: str) -> None:
    result = results()[kind]
    assert result.injected >= 1, f"{kind}: no site (candidates not provable: {result.not_provable})"
    assert not result.misses, f"{kind}: {len(result.misses)} of {result.injected} missed:\n" + "\n".join(result.misses)
    assert result.caught == result.injected


def test_flow_fault_summary_table(capsys: pytest.CaptureFixture[str]) -> None:
    found, examples, skipped = subjects()
    rows = [
        (
            "fault kind",
            "from",
            "candidates",
            "not provable",
            "sites",
            "workflows",
            "injected",
            "caught",
            "rate",
            "+other err",
        )
    ]
    for kind, r in results().items():
        rate = f"{100 * r.caught / r.injected:.1f} %" if r.injected else "n/a"
        rows.append(
            (
                kind,
                r.origin,
                str(r.candidates),
                str(len(r.not_provable)),
                str(r.injected),
                str(len(r.workflows)),
                str(r.injected),
                str(r.caught),
                rate,
                str(r.also_other_steps),
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines += [
        "",
        f"subjects: {len(found)} sat corpus workflows with flow-relevant steps, {len(examples)} example-lab workflows",
        *(f"left out: {why}" for why in skipped),
    ]
    with capsys.disabled():
        print("\n\nFlow fault injection\n" + "\n".join(lines))  # noqa: T201
    for kind, r in results().items():
        assert r.injected >= 1, kind
        assert r.caught == r.injected, f"{kind}: caught {r.caught} of {r.injected}"
