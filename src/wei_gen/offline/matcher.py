"""Matching clauses to lab actions and places to lab locations: lexical cues + MiniLM embedding similarity.

Each (module, action) of the lab is a candidate described by its action name, the action's and the module's
descriptions, and the vocabulary's words for its module type (synonyms such as "PCR machine" for a thermocycler).
A clause's score for a candidate adds:

- a cue at the clause's head (the earliest cue phrase of any action) — the clause's verb, in effect: 6;
- a cue elsewhere in the clause: 1.5;
- the module named: 2 x the share of its name's words present, + 1 for one of its type's nouns;
- cosine similarity of the clause and the candidate's text (MiniLM, when its weights are installed);
- the share of the clause's words found in the candidate's text (lexical overlap).

A clause maps to the best candidate only if that candidate has a cue, or, without one, a similarity of at least
``SIMILARITY_ONLY`` with some lexical overlap; otherwise the clause is reported as unmapped, never guessed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np

from wei_gen.lab import Lab
from wei_gen.offline.text import (
    IGNORED,
    PREPOSITIONS,
    Clause,
    find_phrase,
    is_number,
    phrase_stems,
    stem,
    stems,
    tokens,
)
from wei_gen.offline.vocabulary import vocabulary
from wei_gen.tools.embeddings import EmbeddingUnavailable, MiniLMEmbedder, embedder_available
from wei_gen.tools.semantics import LabSemantics
from wei_gen.wei_types import ModuleAction

HEAD_CUE, OTHER_CUE, MODULE_NAME, MODULE_NOUN = 6.0, 1.5, 2.0, 1.0
SIMILARITY_ONLY = 0.5
PURPOSE_KINDS = frozenset({"process", "store", "dispose"})
"""Kinds of action a clause can ask for at the place it moves the plate to (not moves, lids, doors or new plates)."""
_GENERIC_LOCATION_WORDS = {stem(w) for w in ("default", "plate", "nest", "wc", "station", "position")}

_EMBEDDER: MiniLMEmbedder | None = None
_EMBEDDER_LOCK = threading.Lock()


def shared_embedder() -> tuple[MiniLMEmbedder | None, str]:
    """The process-wide MiniLM embedder, or None with the reason it cannot run here."""
    global _EMBEDDER
    ok, detail = embedder_available()
    if not ok:
        return None, detail
    with _EMBEDDER_LOCK:
        if _EMBEDDER is None:
            _EMBEDDER = MiniLMEmbedder()
        return _EMBEDDER, ""


@dataclass
class Candidate:
    """One (module, action) of the lab, with what it can be recognised by."""

    module: str
    """Workcell module name."""
    action: ModuleAction
    """The action from the module's about."""
    kind: str
    """Its semantics kind (move, process, new_plate, lid_off, noop ...) or "" when unknown."""
    cues: list[tuple[str, ...]]
    """Cue phrases (stems)."""
    text: str
    """Name, descriptions and words, for similarity."""
    words: set[str] = field(default_factory=set)
    """Stems of ``text``."""

    @property
    def key(self) -> str:
        """``module.action``."""
        return f"{self.module}.{self.action.name}"


@dataclass
class Match:
    """The action a clause maps to, and why."""

    candidate: Candidate
    """The chosen action."""
    score: float
    """Its score."""
    why: str
    """Evidence in words (cue, module, similarity)."""


def name_words(name: str) -> list[str]:
    """Words of an identifier: ``ot2_pcr`` → ot2, pcr; ``ot2_prep.deck2`` → ot2, prep, deck2."""
    return [stem(p) for p in re.split(r"[._\-\s]+", name.lower()) if p]


def present(part: str, words: list[str]) -> bool:
    """Whether an identifier word is in the words, also without its number ("deck2" for "the deck")."""
    return part in words or re.sub(r"(?<=[a-z])\d+$", "", part) in words


def _find_after(words: list[str], phrase: tuple[str, ...], after: int) -> int:
    """The first position of ``phrase`` in ``words`` after position ``after``, or -1."""
    found = find_phrase(words[after + 1 :], phrase)
    return -1 if found < 0 else found + after + 1


def _participle(word: str) -> bool:
    """A past participle ("sealed", "removed"): its stem is shorter than the word and it ends in -ed."""
    return len(word) > 4 and word.endswith("ed") and stem(word) != word


_LINKS = frozenset({"while", "before", "after", "when", "until", "so", "and", "then", "because", "afterwards", "but"})
"""Words that end a phrase: a participle before one of them is no attribute ("the foil removed while it waits")."""


def _attributive(raw: list[str], i: int) -> bool:
    """Whether ``raw[i]`` is a participle that describes the noun after it ("the sealed plate")."""
    after = raw[i + 1] if i + 1 < len(raw) else ""
    return (
        _participle(raw[i]) and bool(after) and after not in PREPOSITIONS and after not in _LINKS
        and not is_number(after)
    )  # fmt: skip


def cue_at(clause: Clause, cue: tuple[str, ...]) -> int:
    """Where a cue asks for its action in a clause, or -1.

    Two forms besides the plain one: a participle that describes the plate ("the sealed plate", followed by a noun)
    says its state, not what to do, so it is no cue, nor is a cue word followed by a participle ("its seal removed":
    the object of another verb); a verb-noun cue said passively ("needs its foil removed") is the cue ("remove
    foil").
    """
    words = clause.words
    raw = [t for t in tokens(clause.text) if t not in IGNORED]
    if len(raw) != len(words):  # words not made from this text: plain matching only
        return find_phrase(words, cue)
    n = len(cue)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) != cue:
            continue
        last = i + n - 1
        if _attributive(raw, last):
            continue  # "the sealed plate": a state
        if last + 1 < len(raw) and _participle(raw[last + 1]) and not _attributive(raw, last + 1):
            continue  # "its seal removed": the object of another verb ("put the sealed plate" still asks to put)
        return i
    if n == 2:
        for i in range(len(words) - 1):
            if (words[i], words[i + 1]) == (cue[1], cue[0]) and _participle(raw[i + 1]):
                return i  # "foil removed" asks for "remove foil"
    return -1


class LabMatcher:
    """Everything the offline planner knows about one lab's modules, actions and locations."""

    def __init__(self, lab: Lab) -> None:
        """Index the lab's actions, module words and locations; embed the candidates when MiniLM is available."""
        self.lab = lab
        self.semantics = LabSemantics(lab)
        vocab = vocabulary()
        self.type_of: dict[str, str] = {}
        self.nouns: dict[str, list[tuple[str, ...]]] = {}
        self.candidates: list[Candidate] = []
        for name, module in lab.modules.items():
            entry = self.semantics.module_type(name)
            type_id = entry.id if entry is not None else ""
            self.type_of[name] = type_id
            words = vocab.module_types.get(type_id)
            self.nouns[name] = [phrase_stems(n) for n in (words.nouns if words else [])]
            if module.about is None:
                continue
            description = module.about.description or ""
            for action in module.about.actions:
                said = words.actions.get(action.name, []) if words else []
                cues = [phrase_stems(action.name.replace("_", " "))] + [phrase_stems(c) for c in said]
                sem = self.semantics.action(name, action.name)
                text = (
                    f"{action.name.replace('_', ' ')}: {action.description or ''} "
                    f"{name} {module.definition.model or ''}: {description} "
                    f"{' '.join(words.nouns) if words else ''} {' '.join(said)}"
                )
                self.candidates.append(
                    Candidate(name, action, sem.kind if sem else "", [c for c in cues if c], text, set(stems(text)))
                )
        self.trash_cues = [phrase_stems(p) for p in vocab.moves.trash]
        self._locations = self._index_locations()
        self.embedder, self.embedding_note = shared_embedder()
        self._vectors: np.ndarray | None = None
        if self.embedder is not None:
            try:
                self._vectors = self.embedder.embed([c.text for c in self.candidates])
            except EmbeddingUnavailable as exc:
                self.embedder, self.embedding_note = None, str(exc)

    @property
    def matcher_name(self) -> str:
        """How clauses are matched here, said plainly."""
        if self._vectors is not None:
            return "lexical + embedding (MiniLM)"
        return f"lexical only (embedding unavailable: {self.embedding_note})"

    # -- actions -------------------------------------------------------------------------------------------------

    def verbs(self) -> set[str]:
        """First words of every cue (clause splitting starts a new clause at one of them)."""
        found = {cue[0] for c in self.candidates for cue in c.cues}
        found |= {cue[0] for cue in self.trash_cues if cue}
        for capability in vocabulary().missing_capabilities:
            found |= {p[0] for p in (phrase_stems(x) for x in capability.phrases) if p}
        return found | {stem(w) for w in ("take", "get", "put", "run", "store", "open", "close", "wait")}

    def is_instruction(self, words: list[str]) -> bool:
        """Whether stems ask for something by themselves: a cue of an action, the trash, or a capability's phrase."""
        phrases = [cue for c in self.candidates for cue in c.cues] + self.trash_cues
        phrases += [phrase_stems(p) for cap in vocabulary().missing_capabilities for p in cap.phrases]
        return any(find_phrase(words, phrase) >= 0 for phrase in phrases if phrase)

    def purpose_at(self, clause: Clause, module: str, head: Candidate) -> Candidate | None:
        """What a clause that moves the plate to ``module`` also asks it to do there.

        "carry it to the camera for a picture", "load it into the reader to measure OD": after the move's own cue,
        a cue of one of the module's processing actions. The longest such cue wins (the first action on a tie).
        """
        words = clause.words
        after = min((p for cue in head.cues if (p := find_phrase(words, cue)) >= 0), default=-1)
        best: tuple[int, Candidate] | None = None
        for cand in self.candidates:
            if cand.module != module or cand.kind not in PURPOSE_KINDS or cand is head:
                continue
            length = max((len(cue) for cue in cand.cues if _find_after(words, cue, after) >= 0), default=0)
            if length and (best is None or length > best[0]):
                best = (length, cand)
        return best[1] if best else None

    def new_plate_for(self, clause: Clause, head: Candidate) -> Candidate | None:
        """The new-plate action a clause asks for besides its own ("the absorbance of an empty plate from tower 3").

        Only for a clause that processes, stores or disposes of the plate, and only when a cue of a new-plate action
        is in it; the lab's first such action is taken.
        """
        if head.kind not in PURPOSE_KINDS:
            return None
        return next(
            (c for c in self.candidates if c.kind == "new_plate" and any(cue_at(clause, cue) >= 0 for cue in c.cues)),
            None,
        )

    def module_score(self, module: str, words: list[str]) -> tuple[float, str]:
        """How clearly a clause names a module (its name's words, its type's nouns)."""
        wanted = name_words(module)
        share = sum(1 for w in wanted if present(w, words)) / len(wanted) if wanted else 0.0
        noun = any(find_phrase(words, n) >= 0 for n in self.nouns.get(module, []))
        score = MODULE_NAME * share + (MODULE_NOUN if noun else 0.0)
        return score, (f"names {module}" if score else "")

    def similarities(self, text: str) -> np.ndarray:
        """Cosine similarity of a clause with every candidate (zeros when lexical only)."""
        if self._vectors is None or self.embedder is None:
            return np.zeros(len(self.candidates), dtype=np.float32)
        vector = self.embedder.embed([text])[0]
        return np.asarray(self._vectors @ vector, dtype=np.float32)

    def match(self, clause: Clause) -> Match | None:
        """The action a clause asks for, or None when no action is clearly meant."""
        if not self.candidates:
            return None
        words = clause.words
        positions = [min((p for cue in c.cues if (p := cue_at(clause, cue)) >= 0), default=-1)
                     for c in self.candidates]  # fmt: skip
        found = [p for p in positions if p >= 0]
        head = min(found) if found else -1
        sims = self.similarities(clause.text)
        scored: list[tuple[float, int, str]] = []
        for i, cand in enumerate(self.candidates):
            cue = HEAD_CUE if positions[i] == head >= 0 else OTHER_CUE if positions[i] >= 0 else 0.0
            module, module_why = self.module_score(cand.module, words)
            content = [w for w in words if not w.isdigit()]
            overlap = sum(1 for w in content if w in cand.words) / len(content) if content else 0.0
            score = cue + module + float(sims[i]) + overlap
            why = ", ".join(
                x
                for x in (
                    "verb cue" if cue == HEAD_CUE else "cue" if cue else "",
                    module_why,
                    f"similarity {float(sims[i]):.2f}" if self._vectors is not None else "",
                )
                if x
            )
            scored.append((score, i, why))
        score, best, why = max(scored, key=lambda s: (s[0], -s[1]))
        cand = self.candidates[best]
        has_cue = positions[best] >= 0
        lexical = any(w in cand.words for w in words)
        if not has_cue and not (float(sims[best]) >= SIMILARITY_ONLY and lexical):
            return None
        return Match(cand, score, why)

    # -- locations -----------------------------------------------------------------------------------------------

    def _index_locations(self) -> list[tuple[str, set[str], str | None]]:
        owners: dict[str, str] = {}
        for module in self.lab.modules:
            for nest in self.semantics.nests(module):
                owners.setdefault(nest, module)
        return [
            (name, set(name_words(name)) - _GENERIC_LOCATION_WORDS, owners.get(name))
            for name in sorted(self.lab.all_location_names())
        ]

    def owner(self, location: str) -> str | None:
        """The module whose nest a location is."""
        return next((owner for name, _, owner in self._locations if name == location), None)

    def nest_of(self, module: str) -> str | None:
        """The location where a module holds the plate (its first nest)."""
        nests = self.semantics.nests(module)
        return nests[0] if nests else None

    def is_trash(self, words: list[str]) -> bool:
        """Whether the words send the plate to the trash."""
        return any(find_phrase(words, cue) >= 0 for cue in self.trash_cues)

    def trash_location(self) -> str | None:
        """The lab's trash location."""
        return next((name for name, _, _ in self._locations if "trash" in name.lower()), None)

    def locate(self, words: list[str], prefer: str | None = None) -> str | None:
        """The lab location some words name ("the exchange nest", "the PCR machine", "the prep OT-2 deck").

        Words that fit several locations equally well ("its deck") name the one of ``prefer``, the module the clause
        acts on, when it has one of them.
        """
        if self.is_trash(words) and (trash := self.trash_location()) is not None:
            return trash
        best: tuple[float, bool, int, str] | None = None
        for name, parts, owner in self._locations:
            score = float(sum(1 for p in parts if present(p, words)))
            if owner is not None:
                # A longer noun wins over a word inside it: "the de-sealer" is the peeler, not the sealer.
                score += max(
                    (2.0 + len(n) for n in self.nouns.get(owner, []) if find_phrase(words, n) >= 0), default=0.0
                )
            key = (score, owner is not None and owner == prefer, -len(parts))
            if score >= 1.0 and (best is None or key > best[:3]):
                best = (*key, name)
        return best[3] if best else None
