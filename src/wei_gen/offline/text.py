"""Text handling for the offline planner: normalising, stemming, phrase search, clauses and quantities.

Deliberately small and predictable: the planner must give the same answer for the same words every time, and a
scientist must be able to see why a clause mapped (or did not) to an action.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_TOKEN = re.compile(r"-?[a-z0-9_]+(?:\.[a-z0-9_]+)*")
_TOKEN_CASED = re.compile(_TOKEN.pattern, re.IGNORECASE)
_ORDINALS = {
    w: i + 1
    for i, w in enumerate(
        ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
    )
}
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
IGNORED = frozenset({"the", "a", "an", "its", "it", "their", "them", "this", "that", "these", "those", "is", "are"})
"""Articles and pronouns, skipped when phrases are matched ("take its lid off" matches "take lid off")."""
PREPOSITIONS = frozenset({"from", "to", "into", "onto", "in", "on", "at", "with", "for", "using", "by", "back", "of"})
_LEADING = frozenset({"then", "and", "finally", "first", "next", "afterwards", "also", "please", "after", "that"})


def normalise(text: str, lower: bool = True, keep_brackets: bool = False) -> str:
    """Lower-case; "OT-2" → "ot2"; degree signs and µ spelled out; hyphens and brackets between words → spaces.

    With ``lower=False`` the same text keeps its letters' case (names such as ``Fluor_485`` are bound as written);
    its tokens line up one for one with the lower-cased text's. ``keep_brackets`` keeps round, square and curly
    brackets (clause splitting must see them: "(170 °C, 3 s)" is one clause's values).
    """
    text = text.replace("µ", "u").replace("μ", "u")
    text = re.sub(r"\bot[\s-]?2\b", "ot2", text, flags=re.IGNORECASE)
    text = re.sub(r"°\s*c\b|º\s*c\b", " c ", text, flags=re.IGNORECASE)
    text = text.replace("°", " degrees ")
    text = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", text, flags=re.IGNORECASE)  # heat-seal, de-sealer, flash-freeze
    text = re.sub(r"[\"“”‘’]" if keep_brackets else r"[()\[\]{}\"“”‘’]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.lower() if lower else text


def stem(word: str) -> str:
    """A tiny suffix stripper: sealing / sealed / seals → seal; nouns such as sealer keep their ending."""
    if _NUMBER.match(word) or "." in word or "_" in word:
        return word
    for suffix, keep in (("ing", 5), ("ed", 4), ("es", 4), ("s", 3)):
        if len(word) > keep and word.endswith(suffix) and not word.endswith("ss"):
            word = word[: -len(suffix)]
            if suffix in ("ing", "ed") and len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
                word = word[:-1]  # spinning → spin
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Raw tokens of normalised text (numbers and file names stay whole)."""
    return _TOKEN.findall(normalise(text))


def cased_tokens(text: str) -> list[str]:
    """The tokens of ``tokens(text)`` as written (same positions, original case)."""
    return _TOKEN_CASED.findall(normalise(text, lower=False))


def ordinal(token: str) -> int | None:
    """The number an ordinal names: "second" / "2nd" → 2; None for any other token."""
    if token in _ORDINALS:
        return _ORDINALS[token]
    m = re.fullmatch(r"(\d+)(?:st|nd|rd|th)", token)
    return int(m.group(1)) if m else None


def stems(text: str) -> list[str]:
    """Stemmed tokens without articles and pronouns (what phrases are matched against)."""
    return [stem(t) for t in tokens(text) if t not in IGNORED]


def phrase_stems(phrase: str) -> tuple[str, ...]:
    """A phrase as the stem sequence it matches."""
    return tuple(stems(phrase))


def find_phrase(words: list[str], phrase: tuple[str, ...]) -> int:
    """The first position of ``phrase`` (stems) in ``words`` (stems), or -1."""
    n = len(phrase)
    if n == 0:
        return -1
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) == phrase:
            return i
    return -1


def is_number(token: str) -> bool:
    """Whether a token is a number."""
    return bool(_NUMBER.match(token))


# ---------------------------------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Clause:
    """One instruction of the description, in the scientist's order."""

    index: int
    """0-based position in the description."""
    text: str
    """The clause, normalised."""
    words: list[str] = field(default_factory=list)
    """Its stems without articles and pronouns."""
    original: str = ""
    """The clause normalised the same way but with the scientist's letter case (for names such as ``Fluor_485``)."""


_SENTENCE = re.compile(r"(?<=[.!?])\s+|;\s*|:\s+")
_ARROW = r"\s*(?:-+>|=+>|~+>|→|⇒|⟶|⟹|➔|➜|➝|↦)\s*"
"""Arrows of terse notation ("new plate -> seal -> read"): each says "then"."""
_SEPARATOR = re.compile(
    _ARROW + r"|,\s*(?:and\s+)?(?:then\s+)?|\s+and\s+then\s+|\s+then\s+|\s+and\s+|\s*,?\s*after that,?\s*",
    re.IGNORECASE,
)
_FORCED = re.compile(_ARROW + r"|then|after", re.IGNORECASE)
"""Separators that always start a new instruction."""


_LEADING_PREPOSITIONS = frozenset({"on", "at", "in", "inside", "with", "using", "by", "via", "from", "for", "onto"})
"""Words that open a phrase which can set the scene for the instruction after it ("On the prep robot, pipette …")."""


def _depths(text: str) -> list[int]:
    """Bracket depth at each character (separators inside "(170 °C, 3 s)" do not split)."""
    depth, found = 0, []
    for char in text:
        if char in "([{":
            depth += 1
        found.append(depth)
        if char in ")]}":
            depth = max(0, depth - 1)
    return found


def _sentences(text: str, depths: list[int]) -> list[tuple[int, str]]:
    """(offset, sentence) for each sentence (a sentence end inside brackets ends none)."""
    parts, start = [], 0
    for m in _SENTENCE.finditer(text):
        if depths[m.start()] == 0:
            parts.append((start, text[start : m.start()]))
            start = m.end()
    return [*parts, (start, text[start:])]


def _strip_leading(words: list[str]) -> list[str]:
    while words and words[0].lower() in _LEADING:
        words = words[1:]
    return words


def _is_setting(fragment: str, standalone: Callable[[list[str]], bool]) -> bool:
    """A fragment that only sets the scene: a prepositional phrase with no instruction of its own."""
    raw = _strip_leading(tokens(fragment))
    return bool(raw) and raw[0] in _LEADING_PREPOSITIONS and not standalone(stems(" ".join(raw)))


def _is_participle(word: str) -> bool:
    """A past participle ("measured", "sealed"): after a comma it describes the step before, it asks for nothing.

    Instructions start with the verb's base form ("measure …"), so ", measured with Abs_450nm" stays with its clause.
    """
    return len(word) > 4 and word.endswith("ed") and stem(word) != word


def _next_fragment(sentence: str, start: int) -> str:
    """The text from ``start`` up to the next separator (or the sentence's end)."""
    following = _SEPARATOR.search(sentence, start)
    return sentence[start : following.start() if following else len(sentence)]


def _only_values(fragment: str, standalone: Callable[[list[str]], bool]) -> bool:
    """A fragment of values for the clause before it ("2 s", "plate type 1"): a number and no instruction of its own."""
    raw = tokens(fragment)
    return any(is_number(t) for t in raw) and not standalone(stems(fragment))


def split_clauses(
    description: str, verbs: set[str], standalone: Callable[[list[str]], bool] | None = None
) -> list[Clause]:
    """Split at sentence ends, at arrows ("->", "→", "=>"), and at commas / "and" / "then" that start a new instruction.

    A comma or "and" splits only when the next word is a verb the lab vocabulary knows (``verbs``, stems) or a
    "then" is there: "mix the cyan, magenta and yellow dyes" stays one clause; so do values after a comma ("seal at
    172 °C, 2 s", "program 6, plate type 1") and a participle that describes the step ("…, measured with X").
    Nothing inside brackets splits, and a leading prepositional phrase that asks for nothing by itself
    (``standalone``: whether stems say an instruction; by default, whether one of them is a verb) stays with the
    instruction after it: "on the prep robot, pipette …".
    """
    says_something = standalone or (lambda words: any(w in verbs for w in words))
    parts: list[str] = []
    text = normalise(description, lower=False, keep_brackets=True)
    depths = _depths(text)
    for base, sentence in _sentences(text, depths):
        start = 0
        for m in _SEPARATOR.finditer(sentence):
            if depths[base + m.start()] > 0:
                continue
            following = tokens(sentence[m.end() :])
            first = stem(following[0]) if following else ""
            if _FORCED.search(m.group(0)) or (
                first in verbs
                and not _is_participle(following[0])
                and not _only_values(_next_fragment(sentence, m.end()), says_something)
            ):
                if _is_setting(sentence[start : m.start()], says_something):
                    continue
                parts.append(sentence[start : m.start()])
                start = m.end()
        parts.append(sentence[start:])
    clauses: list[Clause] = []
    for part in parts:
        words = _strip_leading(normalise(part, lower=False).strip(" ,.!?").split())
        original = " ".join(words)
        text = original.lower()
        if text:
            clauses.append(Clause(index=len(clauses), text=text, words=stems(text), original=original))
    return clauses


def spans(text: str) -> list[tuple[str, list[str]]]:
    """(preposition, following words up to the next preposition) for each preposition of a clause."""
    raw = [t for t in tokens(text) if t not in IGNORED]
    found: list[tuple[str, list[str]]] = []
    for i, word in enumerate(raw):
        if word in PREPOSITIONS:
            j = i + 1
            while j < len(raw) and raw[j] not in PREPOSITIONS:
                j += 1
            if j > i + 1:
                found.append((word, raw[i + 1 : j]))
    return found


# ---------------------------------------------------------------------------------------------------------------------
# Quantities
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quantity:
    """A number with a unit, as written."""

    value: float
    """The number."""
    kind: str
    """temperature, time, wavelength, volume, force or speed."""
    unit: str
    """Canonical unit: C, s, min, h, nm, uL, mL, g, rpm."""


_UNITS: dict[str, tuple[str, str]] = {
    "c": ("temperature", "C"), "degre": ("temperature", "C"), "degr": ("temperature", "C"),
    "celsiu": ("temperature", "C"), "celsius": ("temperature", "C"),
    "s": ("time", "s"), "sec": ("time", "s"), "second": ("time", "s"), "seconds": ("time", "s"),
    "min": ("time", "min"), "minut": ("time", "min"), "minute": ("time", "min"),
    "h": ("time", "h"), "hr": ("time", "h"), "hour": ("time", "h"),
    "nm": ("wavelength", "nm"), "ul": ("volume", "uL"), "ml": ("volume", "mL"),
    "g": ("force", "g"), "xg": ("force", "g"), "rpm": ("speed", "rpm"),
}  # fmt: skip
_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def quantities(text: str) -> list[Quantity]:
    """Numbers followed by a unit ("175 °C", "3 seconds", "4 s", "2.5 min", "450 nm")."""
    raw = tokens(text)
    found = []
    for i, token in enumerate(raw[:-1]):
        if is_number(token):
            unit = _UNITS.get(stem(raw[i + 1])) or _UNITS.get(raw[i + 1])
            if unit is not None:
                found.append(Quantity(float(token), unit[0], unit[1]))
    return found


def convert_time(q: Quantity, unit: str) -> float:
    """A time quantity in ``unit`` (s, min or h)."""
    return q.value * _SECONDS[q.unit] / _SECONDS[unit]


def file_names(text: str) -> list[str]:
    """File names written in the clause (``plate_42.jpg``)."""
    return [t for t in re.findall(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9]{2,5}\b", text) if not is_number(t)]
