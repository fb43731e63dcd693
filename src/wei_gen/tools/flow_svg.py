"""A picture of a workflow as SVG: instruments as boxes, plate moves as numbered arrows, failing steps in red.

What a scientist would rather look at than read: each instrument the workflow uses is a box listing its actions
with their step numbers; each transfer is an arrow from the instrument (or place) the plate leaves to the one it
reaches, labelled with the step number(s). Steps that fail a check (validator errors, z3 labware-flow problems) are
drawn in red, with the reasons in a ``<title>`` tooltip; warnings in amber. The plates the flow check says must be in
place before the run are marked "start".

Which steps move plates comes from the action semantics (``semantics.yaml``) when a lab is given; without one (or for
an action without semantics) a step whose args name both a ``source`` and a ``target`` counts as a move. A location
belongs to the instrument its name starts with (``sealer.default``), else to the instrument whose nest it is
(``bio_sealer_nest``), else it is drawn as a place of its own (``wc.trash``).

The function is pure and deterministic (same input, same bytes) and all text goes through ElementTree, so module
names such as ``<script>`` come out escaped.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from wei_gen.lab import Lab
from wei_gen.tools.flow import FlowReport, FlowStep, resolve_ops, steps_from_workflow
from wei_gen.tools.semantics import LabSemantics, SemanticsError, nests_by_name
from wei_gen.tools.validator import Diagnostic, ValidationReport
from wei_gen.wei_types import Workflow, workflow_to_dict

SVG_NS = "http://www.w3.org/2000/svg"
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

BOX_W = 230
"""Width of an instrument box."""
LINE_H = 18
"""Height of one action line in a box."""
HEAD_H = 48
"""Height of a box's title and subtitle."""
MAX_LINES = 9
"""Action lines shown per box; the rest are counted."""
CHAR_W = 7.6
"""Approximate width of one character at 13 px, to shorten text that would not fit."""
MARGIN = 30

RED, AMBER, INK, MUTED, GREEN = "#c62828", "#b26a00", "#1f2933", "#5f6b7a", "#2e7d32"
FILL, FILL_FAIL, FILL_WARN, FILL_PLACE = "#f4f7fb", "#fdecea", "#fff6e0", "#ffffff"


# ---------------------------------------------------------------------------------------------------------------------
# What is drawn
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """One action listed on a box."""

    steps: list[int]
    text: str


@dataclass
class _Node:
    """A box: an instrument of the workflow or a place plates go to."""

    key: str
    subtitle: str
    place: bool = False
    missing: bool = False
    lines: list[_Line] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> float:
        """Box height for its lines (capped)."""
        shown = min(len(self.lines), MAX_LINES) + (1 if len(self.lines) > MAX_LINES else 0) + len(self.start)
        return HEAD_H + LINE_H * shown + 8


@dataclass
class _Move:
    """The arrow of one or more plate moves between the same two boxes in the same direction."""

    source: str
    target: str
    steps: list[int] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


@dataclass
class _Findings:
    """Diagnostics per 0-based step index, and those about no step."""

    errors: dict[int, list[str]] = field(default_factory=dict)
    warnings: dict[int, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)


def _findings(report: ValidationReport | None, flow: FlowReport | None) -> _Findings:
    """Errors and warnings by step; the flow check's reasons are often already in the report, so say each once."""
    out = _Findings()
    seen: set[tuple[int | None, str]] = set()
    diagnostics: list[Diagnostic] = (report.diagnostics if report else []) + (flow.diagnostics if flow else [])
    for diag in diagnostics:
        if diag.severity == "info" or (diag.step_index, diag.message) in seen:
            continue
        seen.add((diag.step_index, diag.message))
        text = diag.message + (f" (hint: {diag.hint})" if diag.hint else "")
        if diag.step_index is None:
            if diag.severity == "error":
                out.general.append(text)
            continue
        bucket = out.errors if diag.severity == "error" else out.warnings
        bucket.setdefault(diag.step_index, []).append(text)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# From workflow to boxes and arrows
# ---------------------------------------------------------------------------------------------------------------------


def _semantics(lab: Lab | None) -> LabSemantics | None:
    if lab is None:
        return None
    try:
        return LabSemantics(lab)
    except SemanticsError:  # a broken lab semantics file: draw with the source/target rule instead
        return None


def _endpoints(steps: list[FlowStep], sem: LabSemantics | None) -> dict[int, tuple[str | None, str | None]]:
    """Plate moves: step index -> (source, target) location; None where only one end is known."""
    moves: dict[int, tuple[str | None, str | None]] = {}
    kinds = {op.step.index: op for op in resolve_ops(steps, sem)} if sem else {}
    for step in steps:
        op = kinds.get(step.index)
        if op is not None and op.kind in ("move", "arrive", "depart"):
            moves[step.index] = (op.source, op.target)
        elif op is None or op.kind == "unchecked":
            # No semantics for this action: a step naming both ends is taken for a move.
            source, target = _text_arg(step, "source"), _text_arg(step, "target")
            if source is not None and target is not None:
                moves[step.index] = (source, target)
    return moves


def _text_arg(step: FlowStep, name: str) -> str | None:
    value = step.args.get(name)
    return value if isinstance(value, str) and value and not value.startswith(("$", "payload.")) else None


class _Owners:
    """Which box a location belongs to."""

    def __init__(self, lab: Lab | None, sem: LabSemantics | None, used: list[str]):
        self.lab = lab
        self.sem = sem
        self.candidates = used + [m for m in (lab.modules if lab else {}) if m not in used]
        self.cache: dict[str, str] = {}

    def __call__(self, location: str) -> str:
        if location not in self.cache:
            self.cache[location] = self._find(location)
        return self.cache[location]

    def _find(self, location: str) -> str:
        prefix = location.split(".", 1)[0]
        if "." in location and prefix in self.candidates:
            return prefix
        for module in self.candidates:
            nests = self.sem.nests(module) if self.sem else nests_by_name(module, [location])
            if location in nests:
                return module
        return location


def _label(step: FlowStep) -> str:
    return f"{step.index + 1}. {step.action}"


def _build(
    workflow: Workflow, lab: Lab | None, flow: FlowReport | None
) -> tuple[list[_Node], list[_Move], list[FlowStep]]:
    steps = steps_from_workflow(workflow_to_dict(workflow))
    sem = _semantics(lab)
    moves = _endpoints(steps, sem)
    used = list(dict.fromkeys(s.module for s in steps))
    owner = _Owners(lab, sem, used)
    nodes: dict[str, _Node] = {}

    def node(key: str, *, place: bool = False) -> _Node:
        if key not in nodes:
            nodes[key] = _node(key, lab, place)
        return nodes[key]

    arrows: dict[tuple[str, str], _Move] = {}
    for step in steps:
        ends = moves.get(step.index)
        if ends is None:
            node(step.module).lines.append(_Line([step.index], _label(step)))
            continue
        source, target = ends
        src = owner(source) if source else f"{step.module} (from a run-time place)"
        dst = owner(target) if target else f"{step.module} (to a run-time place)"
        detail = f"step {step.index + 1} '{step.name}': {step.module}.{step.action} {source or '?'} → {target or '?'}"
        if src == dst:  # a move inside one instrument (e.g. between two of its nests): listed on it
            node(src, place=src not in used).lines.append(
                _Line([step.index], f"{step.index + 1}. move {_short_loc(source)} → {_short_loc(target)}")
            )
            continue
        node(src, place=src not in used and src not in (lab.modules if lab else {}))
        node(dst, place=dst not in used and dst not in (lab.modules if lab else {}))
        arrow = arrows.setdefault((src, dst), _Move(src, dst))
        arrow.steps.append(step.index)
        arrow.details.append(detail)
    for item in flow.setup if flow else []:
        key = owner(item.location)
        node(key, place=key not in used and key not in (lab.modules if lab else {})).start.append(item.describe())
    return list(nodes.values()), list(arrows.values()), steps


def _short_loc(location: str | None) -> str:
    return location.split(".", 1)[-1] if location else "?"


def _node(key: str, lab: Lab | None, place: bool) -> _Node:
    module = lab.module(key) if lab else None
    if module is not None:
        return _Node(key, module.definition.model or module.definition.interface)
    if place:
        return _Node(key, "place", place=True)
    return _Node(key, "not in the lab" if lab else "instrument", missing=lab is not None)


# ---------------------------------------------------------------------------------------------------------------------
# Layout: boxes on an ellipse in order of first use, so arrows are chords through the empty middle
# ---------------------------------------------------------------------------------------------------------------------


def _layout(nodes: list[_Node], top: float) -> tuple[float, float]:
    """Place the boxes on the smallest ellipse where no two overlap; returns the drawing's width and height."""
    n = len(nodes)
    rx = 0.0 if n == 1 else 150.0 + 20.0 * n
    ry = 0.0 if n <= 2 else 70.0 + 12.0 * n
    for _ in range(80):  # grow until the boxes are apart (bounded: 80 steps is > 400 times as wide)
        _place(nodes, rx, ry)
        if not _overlapping(nodes):
            break
        # Wider faster than taller: screens are landscape, and boxes are wider than tall.
        rx, ry = rx * 1.08, ry * 1.03
    # Move the drawing to the top left corner below the header; its size is what the boxes take.
    left = min((nd.x - BOX_W / 2 for nd in nodes), default=0.0)
    upper = min((nd.y - nd.height / 2 for nd in nodes), default=0.0)
    for nd in nodes:
        nd.x = round(nd.x - left + MARGIN, 1)
        nd.y = round(nd.y - upper + top, 1)
    width = max((nd.x + BOX_W / 2 for nd in nodes), default=0.0) + MARGIN
    height = max((nd.y + nd.height / 2 for nd in nodes), default=top) + MARGIN
    return width, height


def _place(nodes: list[_Node], rx: float, ry: float) -> None:
    n = len(nodes)
    for i, nd in enumerate(nodes):
        # Start on the left and go clockwise (left, top, right, bottom), as the eye reads.
        angle = math.pi + 2 * math.pi * i / max(n, 1)
        nd.x = rx * math.cos(angle)
        nd.y = ry * math.sin(angle)


def _overlapping(nodes: list[_Node], gap_x: float = 90.0, gap_y: float = 64.0) -> bool:
    """Whether two boxes come closer than the gaps (room for an arrow and its number between them)."""
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if abs(a.x - b.x) < BOX_W + gap_x and abs(a.y - b.y) < (a.height + b.height) / 2 + gap_y:
                return True
    return False


def _border(nd: _Node, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from the box's centre towards (tx, ty) leaves the box."""
    dx, dy = tx - nd.x, ty - nd.y
    if dx == 0 and dy == 0:
        return nd.x, nd.y
    half_w, half_h = BOX_W / 2 + 4, nd.height / 2 + 4
    scale = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
    return nd.x + dx * scale, nd.y + dy * scale


# ---------------------------------------------------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------------------------------------------------


def _clean(text: str) -> str:
    """Text XML 1.0 can carry (ElementTree escapes markup but not control characters)."""
    return _INVALID_XML.sub("\ufffd", text)


def _fit(text: str, width: float) -> str:
    limit = max(4, int(width / CHAR_W))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str | float) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_").replace("_", "-"): _fmt(v) for k, v in attrs.items()})
    if text is not None:
        el.text = _clean(text)
    return el


def _fmt(value: str | float) -> str:
    if isinstance(value, str):
        return _clean(value)
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _title(parent: ET.Element, lines: list[str]) -> None:
    if lines:
        _el(parent, "title", "\n".join(lines))


def _reasons(indexes: list[int], steps: list[FlowStep], found: dict[int, list[str]]) -> list[str]:
    names = {s.index: s.name for s in steps}
    return [f"step {i + 1} '{names.get(i, '')}': {why}" for i in indexes for why in found.get(i, [])]


def _draw_node(svg: ET.Element, nd: _Node, steps: list[FlowStep], found: _Findings) -> None:
    indexes = [i for line in nd.lines for i in line.steps]
    failing = any(i in found.errors for i in indexes) or nd.missing
    warned = any(i in found.warnings for i in indexes)
    css = "node place" if nd.place else "node"
    css += " fail" if failing else " warn" if warned else ""
    g = _el(svg, "g", class_=css, data_module=nd.key)
    tip = [nd.key + (f" ({nd.subtitle})" if nd.subtitle else "")]
    tip += _reasons(indexes, steps, found.errors) + _reasons(indexes, steps, found.warnings)
    if nd.missing:
        tip.append(f"{nd.key} is not a module of the lab")
    _title(g, tip)
    left, top = nd.x - BOX_W / 2, nd.y - nd.height / 2
    stroke = RED if failing else AMBER if warned else MUTED if nd.place else INK
    fill = FILL_FAIL if failing else FILL_WARN if warned else FILL_PLACE if nd.place else FILL
    _el(g, "rect", x=left, y=top, width=BOX_W, height=nd.height, rx=8, fill=fill, stroke=stroke,
        stroke_width=2.5 if failing else 1.5, stroke_dasharray="6 4" if nd.place else "none")  # fmt: skip
    _el(g, "text", _fit(nd.key, BOX_W - 20), x=left + 10, y=top + 21, font_size=16, font_weight="bold",
        fill=RED if failing else INK)  # fmt: skip
    _el(g, "text", _fit(nd.subtitle, BOX_W - 20), x=left + 10, y=top + 39, font_size=12,
        fill=RED if nd.missing else MUTED)  # fmt: skip
    y = top + HEAD_H + 12
    for line in nd.lines[:MAX_LINES]:
        bad = [i for i in line.steps if i in found.errors]
        warn = [i for i in line.steps if i in found.warnings]
        colour = RED if bad else AMBER if warn else INK
        t = _el(g, "text", None, x=left + 12, y=y, font_size=13.5, fill=colour,
                class_="step fail" if bad else "step warn" if warn else "step",
                data_step=",".join(str(i + 1) for i in line.steps))  # fmt: skip
        _title(t, _reasons(line.steps, steps, found.errors) + _reasons(line.steps, steps, found.warnings))
        tspan = _el(t, "tspan", _fit(("✗ " if bad else "") + line.text, BOX_W - 24))
        if bad:
            tspan.set("font-weight", "bold")
        y += LINE_H
    if len(nd.lines) > MAX_LINES:
        _el(g, "text", f"… {len(nd.lines) - MAX_LINES} more", x=left + 12, y=y, font_size=12, fill=MUTED)
        y += LINE_H
    for item in nd.start:
        t = _el(g, "text", None, x=left + 12, y=y, font_size=12.5, fill=GREEN, class_="start")
        _title(t, [f"before the run: {item}"])
        _el(t, "tspan", _fit("▶ start: " + item.split(" on ")[0], BOX_W - 24))
        y += LINE_H


def _draw_move(svg: ET.Element, move: _Move, nodes: dict[str, _Node], both_ways: bool, found: _Findings,
               steps: list[FlowStep]) -> None:  # fmt: skip
    a, b = nodes[move.source], nodes[move.target]
    x1, y1 = _border(a, b.x, b.y)
    x2, y2 = _border(b, a.x, a.y)
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    # Moves both ways between two boxes: each arrow keeps to its own side of the centre line.
    off = 9.0 if both_ways else 0.0
    nx, ny = -(y2 - y1) / length * off, (x2 - x1) / length * off
    x1, y1, x2, y2 = x1 + nx, y1 + ny, x2 + nx, y2 + ny
    bad = [i for i in move.steps if i in found.errors]
    warn = [i for i in move.steps if i in found.warnings]
    colour = RED if bad else AMBER if warn else "#3b6ea8"
    css = "move fail" if bad else "move warn" if warn else "move"
    numbers = ",".join(str(i + 1) for i in move.steps)
    g = _el(svg, "g", class_=css, data_steps=numbers, data_source=move.source, data_target=move.target)
    _title(g, move.details + _reasons(move.steps, steps, found.errors) + _reasons(move.steps, steps, found.warnings))
    marker = "url(#arrow-fail)" if bad else "url(#arrow-warn)" if warn else "url(#arrow)"
    _el(g, "line", x1=x1, y1=y1, x2=x2, y2=y2, stroke=colour, stroke_width=3 if bad else 2, marker_end=marker,
        stroke_dasharray="7 4" if bad else "none")  # fmt: skip
    # The label sits a little before the middle, so labels of arrows crossing the centre do not meet.
    t = 0.42
    mx, my = x1 + (x2 - x1) * t, y1 + (y2 - y1) * t
    width = max(26.0, 10.0 + CHAR_W * 1.1 * len(numbers))
    _el(g, "rect", x=mx - width / 2, y=my - 12, width=width, height=24, rx=12, fill="#ffffff", stroke=colour,
        stroke_width=2)  # fmt: skip
    _el(g, "text", numbers, x=mx, y=my + 5, font_size=14, font_weight="bold", fill=colour, text_anchor="middle",
        class_="step-number")  # fmt: skip


def _defs(svg: ET.Element) -> None:
    defs = _el(svg, "defs")
    for name, colour in (("arrow", "#3b6ea8"), ("arrow-fail", RED), ("arrow-warn", AMBER)):
        marker = _el(defs, "marker", id=name, viewBox="0 0 10 10", refX=9, refY=5, markerWidth=7, markerHeight=7,
                     orient="auto-start-reverse")  # fmt: skip
        _el(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=colour)


def _header(svg: ET.Element, title: str, lines: list[tuple[str, str]]) -> None:
    _el(svg, "text", _fit(title, 900), x=MARGIN, y=MARGIN + 4, font_size=20, font_weight="bold", fill=INK,
        class_="title")  # fmt: skip
    for i, (text, colour) in enumerate(lines):
        cls = "problem" if colour == RED else "summary"
        _el(svg, "text", _fit(text, 1200), x=MARGIN, y=MARGIN + 28 + 19 * i, font_size=14, fill=colour, class_=cls)


def _root(width: float, height: float) -> ET.Element:
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "viewBox": f"0 0 {_fmt(width)} {_fmt(height)}",
            "width": _fmt(width),
            "height": _fmt(height),
            "font-family": "system-ui, -apple-system, 'Segoe UI', sans-serif",
            "role": "img",
        },
    )
    return svg


def render_flow_svg(
    workflow: Workflow | None, flow: FlowReport | None, report: ValidationReport | None, lab: Lab | None
) -> str:
    """The workflow as an SVG picture (see the module docstring); deterministic, XML-safe text."""
    found = _findings(report, flow)
    if workflow is None:
        lines = [("No workflow yet.", MUTED)] + [(f"✗ {g}", RED) for g in found.general]
        svg = _root(640, MARGIN + 40 + 18 * len(lines))
        _header(svg, "Workflow picture", lines)
        return ET.tostring(svg, encoding="unicode")
    nodes, moves, steps = _build(workflow, lab, flow)
    bad_steps = sorted(found.errors)
    summary = f"{len(steps)} steps · {sum(len(m.steps) for m in moves)} plate moves (numbered arrows, by step)"
    if flow is not None:
        summary += " · labware flow " + ("possible" if flow.verdict == "sat" else "impossible as written")
    lines = [(summary, MUTED)]
    if bad_steps:
        names = ", ".join(str(i + 1) for i in bad_steps)
        lines.append((f"✗ {len(bad_steps)} step(s) fail their checks: {names} — red; hover for the reason", RED))
    lines += [(f"✗ {g}", RED) for g in found.general]
    top = MARGIN + 28 + 19 * len(lines) + 16
    width, height = _layout(nodes, top)
    width = max(width, 780.0)  # room for the header and legend lines
    legend_y = height
    svg = _root(width, height + 40)
    _el(svg, "title", f"Workflow {workflow.name}")
    _defs(svg)
    _header(svg, f"Workflow: {workflow.name}", lines)
    by_key = {nd.key: nd for nd in nodes}
    pairs = {(m.source, m.target) for m in moves}
    for move in moves:
        _draw_move(svg, move, by_key, (move.target, move.source) in pairs, found, steps)
    for nd in nodes:
        _draw_node(svg, nd, steps, found)
    movers = sorted({s.module for s in steps if any(s.index in m.steps for m in moves)})
    legend = [
        f"Arrows: plate moves{' by ' + ', '.join(movers) if movers else ''}, numbered by step.",
        "Boxes: instruments with their actions (dashed: places). Red: a check failed (hover for why).",
    ]
    for i, text in enumerate(legend):
        _el(svg, "text", _fit(text, width - 2 * MARGIN), x=MARGIN, y=legend_y + 18 * i, font_size=13, fill=MUTED,
            class_="legend")  # fmt: skip
    return ET.tostring(svg, encoding="unicode")
