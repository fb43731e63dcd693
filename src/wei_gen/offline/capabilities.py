"""What a clause needs that the lab lacks: vocabulary capabilities, and instruments named that the lab does not have.

Two sources, the more specific first:

- an instrument noun the clause names after a preposition ("in a lyophilizer", "on the bead mill homogenizer") that
  no module of the lab answers to: reported as the vocabulary capability whose own phrases contain the noun, else as
  the noun itself;
- a capability phrase of the vocabulary ("spin down", "flash freeze"). A phrase inside a longer phrase of another
  capability is that capability's word, not its own ("freeze" in "freeze dry" is not the freezer);
- storing at a cold temperature ("keep it at 4 °C overnight"): the fridge (0-10 °C) or the freezer (below -30 °C).

Nouns are not looked at in a clause that maps to an action of a module it names: "seal it on the heat sealer" is
planned, whatever else it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from wei_gen.lab import Lab
from wei_gen.offline.matcher import LabMatcher, name_words
from wei_gen.offline.text import IGNORED, Clause, find_phrase, phrase_stems, quantities, spans, stem, tokens
from wei_gen.offline.vocabulary import Capability, vocabulary

_INSTRUMENT = re.compile(
    r"(?:[iy][sz]er|ometer|scope|fuge|cycler|dryer|drier|reader|washer|shaker|sealer|peeler|mixer|freezer|fridge"
    r"|incubator|evaporator|sonicator|porator|rotator|agitator|refrigerator|imager|sorter|sequencer|dispenser"
    r"|printer|autoclave|oven|bath|stirrer|heater|cooler)$"
)
"""Endings of instrument nouns ("lyophilizer", "spectrophotometer", "centrifuge", "water bath")."""
_INSTRUMENT_WORDS = frozenset(
    {"balance", "microbalance", "scale", "meter", "chamber", "hood", "cabinet", "glovebox", "vortex", "vortexer",
     "pump", "reactor", "bioreactor", "fermenter", "fermentor", "rocker", "roller", "grinder", "mill", "blender",
     "laser", "thermoblock", "hotplate"}
)  # fmt: skip
"""Instrument nouns no ending gives ("an analytical balance", "the pH meter", "a fume hood", "the bead mill")."""
_SIZES = frozenset({"small", "smaller", "large", "larger", "full", "pilot", "industrial", "micro", "nano"})
"""Words before "scale" that make it a size ("at a small scale"), not a weighing scale."""
_NAMING = frozenset({"in", "on", "at", "into", "onto", "with", "using", "by", "to", "from", "inside"})
"""Prepositions before a named instrument."""


@dataclass(frozen=True)
class _Hit:
    capability: Capability
    start: int
    length: int

    def inside(self, other: _Hit) -> bool:
        """Whether this phrase lies within a longer phrase of another capability."""
        return (
            other.capability is not self.capability
            and other.length > self.length
            and other.start <= self.start
            and self.start + self.length <= other.start + other.length
        )


def provided(lab: Lab, words: list[str]) -> bool:
    """Whether a module's name, model or description contains one of the words (the lab has the capability)."""
    for name, module in lab.modules.items():
        about = module.about
        hay = " ".join(
            [
                name,
                module.definition.model or "",
                about.name if about else "",
                (about.description or "") if about else "",
            ]
        ).lower()
        if any(w.lower() in hay for w in words):
            return True
    return False


def capability_hits(clause: Clause, lab: Lab) -> list[str]:
    """Capabilities the clause's phrases ask for and the lab lacks (a phrase inside a longer one counts for that)."""
    hits = [
        _Hit(cap, start, len(phrase))
        for cap in vocabulary().missing_capabilities
        for phrase in (phrase_stems(p) for p in cap.phrases)
        if (start := find_phrase(clause.words, phrase)) >= 0
    ]
    kept = [h for h in hits if not any(h.inside(o) for o in hits)]
    names = [h.capability.name for h in kept if not provided(lab, h.capability.provided_by)]
    return list(dict.fromkeys(names))


def _known_phrases(matcher: LabMatcher) -> list[tuple[str, ...]]:
    """Nouns of the lab's own modules (their types' nouns and their names' words)."""
    phrases = [noun for nouns in matcher.nouns.values() for noun in nouns]
    return phrases + [(w,) for module in matcher.lab.modules for w in name_words(module)]


def unknown_instruments(clause: Clause, matcher: LabMatcher) -> list[str]:
    """Instrument nouns the clause names ("in a lyophilizer") that no module of the lab answers to."""
    known = _known_phrases(matcher)
    found: list[str] = []
    for prep, span in spans(clause.text):
        if prep not in _NAMING:
            continue
        words = [stem(w) for w in span]
        covered = {i for phrase in known if (p := find_phrase(words, phrase)) >= 0 for i in range(p, p + len(phrase))}
        for i, raw in enumerate(span):
            noun = raw[:-1] if raw.endswith("s") and not raw.endswith("ss") else raw
            if i not in covered and _names_instrument(clause, span, i, noun) and not provided(matcher.lab, [noun]):
                found.append(noun)
    return list(dict.fromkeys(found))


def _names_instrument(clause: Clause, span: list[str], i: int, noun: str) -> bool:
    """Whether ``span[i]`` (as ``noun``) is an instrument noun.

    A word of ``_INSTRUMENT_WORDS`` is also an everyday word: not when "of" follows ("the balance of the buffer") nor,
    for "scale", after a size ("at a small scale").
    """
    if _INSTRUMENT.search(noun):
        return True
    if noun not in _INSTRUMENT_WORDS:
        return False
    if noun == "scale" and i > 0 and span[i - 1] in _SIZES:
        return False
    if i + 1 < len(span):  # a span runs up to the next preposition, so "of" can only follow its last word
        return True
    raw = [t for t in tokens(clause.text) if t not in IGNORED]
    return not any(w == span[i] and nxt == "of" for w, nxt in zip(raw, raw[1:], strict=False))


def capability_for(noun: str) -> str:
    """The vocabulary capability whose own phrases or name contain the noun, else the noun itself."""
    wanted = stem(noun)
    for cap in vocabulary().missing_capabilities:
        words = {w for p in [*cap.phrases, cap.name] for w in phrase_stems(p)}
        if wanted in words:
            return cap.name
    return noun


_STORING = frozenset({stem(w) for w in ("store", "keep", "storage", "park", "stash")})
"""Verbs that keep a plate somewhere for a while (a cold temperature with one of them needs cold storage)."""
_COLD = ((-30.0, 10.0, "fridge"), (-273.0, -30.0, "freezer"))
"""(lowest °C, highest °C, noun the vocabulary capability is found by): 4 °C is a fridge, -80 °C a freezer."""


def cold_storage(clause: Clause, lab: Lab) -> list[str]:
    """The cold storage a clause asks for by temperature ("store it at 4 °C") and the lab lacks.

    Only with a storing verb: "hold at 4 °C" at the end of a PCR program is the thermocycler's, not a fridge's.
    """
    if not _STORING & set(clause.words):
        return []
    found: list[str] = []
    for q in quantities(clause.text):
        for low, high, noun in _COLD if q.kind == "temperature" else ():
            cap = next((c for c in vocabulary().missing_capabilities if c.name == capability_for(noun)), None)
            if low <= q.value <= high and cap is not None and not provided(lab, cap.provided_by):
                found.append(cap.name)
    return found


def missing_capabilities(clause: Clause, lab: Lab, matcher: LabMatcher, named: bool) -> list[str]:
    """What the clause needs that the lab lacks.

    ``named``: the clause maps to an action of a module it names ("read it in the Hidex"); only then are other
    instrument nouns in it not looked at ("read it in the flow cytometer" maps to the reader by its verb, but asks
    for an instrument the lab lacks).
    """
    needed = list(dict.fromkeys(capability_hits(clause, lab) + cold_storage(clause, lab)))
    if needed or not named:
        nouns = unknown_instruments(clause, matcher)
        if nouns:
            return list(dict.fromkeys(capability_for(n) for n in nouns))
    return needed
