"""Value binding for the offline planner: numbers with units, named numbers, options and file names → action args.

Sources, first match wins: the clause itself ("seal at 175 °C for 3 s", "program 3", "tower 2", "plate_42.jpg",
"the Fluor_485 assay", and for an action's only name arg a name after "with"/"using": "measured with Abs_450nm"),
then the scientist's values mapping (``plate_type: 1``), matched to args by name. Types and units come from the
module's about (an int arg gets an int; a time arg described in seconds gets seconds).
"""

from __future__ import annotations

import re
from typing import Any

from wei_gen.offline.matcher import Candidate, name_words
from wei_gen.offline.text import (
    IGNORED,
    PREPOSITIONS,
    Quantity,
    cased_tokens,
    convert_time,
    file_names,
    find_phrase,
    is_number,
    ordinal,
    quantities,
    stem,
    stems,
    tokens,
)
from wei_gen.offline.vocabulary import vocabulary
from wei_gen.typestr import is_coordinate_type, parse_type
from wei_gen.wei_types import ModuleActionArg

_NUMBER_WORDS = frozenset({"number", "no", "nr", "num", "#"})
"""Words between a noun and its number ("tower number 2")."""
_NAME_MARKERS = frozenset({"named", "called", "name"})
"""Words before a name ("the program named Quick")."""
_GENERIC_ARG_WORDS = frozenset({"name", "id", "file", "path"})
"""Words of an arg's name that are not its noun (``assay_name`` is named by "assay")."""


def is_location_arg(arg: ModuleActionArg, has_locations: bool) -> bool:
    """Args that take a location name (coordinates in the about) on a module with a location table."""
    return has_locations and is_coordinate_type(parse_type(arg.type))


def _kind(arg: ModuleActionArg) -> str:
    name, text = arg.name.lower(), (arg.description or "").lower()
    if "temp" in name or "°c" in text or "celsius" in text:
        return "temperature"
    if name in ("time", "duration", "seconds", "minutes") or name.endswith(("_time", "_duration", "_seconds")):
        return "time"
    if "wavelength" in name or re.search(r"\bnm\b", text):
        return "wavelength"
    if "volume" in name:
        return "volume"
    return ""


def _time_unit(arg: ModuleActionArg) -> str:
    text = f"{arg.name} {arg.description or ''}".lower()
    return "min" if "minute" in text else "h" if "hour" in text else "s"


def coerce(arg: ModuleActionArg, value: Any) -> Any:
    """A value in the arg's type (int args get ints when the number is whole)."""
    type_text = str(arg.type).lower()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if "int" in type_text and float(value).is_integer():
        return int(value)
    if "float" in type_text:
        return float(value)
    return value


def _from_quantity(arg: ModuleActionArg, found: list[Quantity], used: set[int]) -> Any:
    kind = _kind(arg)
    for i, q in enumerate(found):
        if i in used or q.kind != kind or not kind:
            continue
        used.add(i)
        return convert_time(q, _time_unit(arg)) if kind == "time" else q.value
    return None


def _named_number(arg: ModuleActionArg, words: list[str]) -> Any:
    """A number written after the arg's name: "program 3", "plate type 1", "program number 3"."""
    phrase = tuple(stems(arg.name.replace("_", " ")))
    at = find_phrase(words, phrase)
    if at < 0:
        return None
    rest = [w for w in words[at + len(phrase) :] if w not in ("number", "no", "#", "of")]
    return float(rest[0]) if rest and is_number(rest[0]) else None


def _option_parts(option: str) -> tuple[str, int] | None:
    """An option made of a noun and a number ('tower2', 'slot_3') as (noun stem, number)."""
    m = re.fullmatch(r"([a-z]+)[_\-]?(\d+)", option.lower())
    return (stem(m.group(1)), int(m.group(2))) if m else None


def _numbered_mentions(raw: list[str]) -> list[tuple[str, int]]:
    """(noun stem, number) pairs a clause writes, in order.

    "tower 2", "tower2", "tower number 2", "second tower", "2nd plate stack" (an ordinal or number before a noun may
    have up to two words in between).
    """
    words = [w for w in raw if w not in IGNORED]
    found: list[tuple[str, int]] = []
    for i, word in enumerate(words):
        if m := re.fullmatch(r"([a-z]+)(\d+)", word):
            found.append((stem(m.group(1)), int(m.group(2))))
            continue
        rest = [w for w in words[i + 1 : i + 3] if w not in _NUMBER_WORDS] if word.isalpha() else []
        if rest and is_number(rest[0]) and float(rest[0]).is_integer():
            found.append((stem(word), int(float(rest[0]))))
        number = ordinal(word)
        if number is None and i + 1 < len(words) and word.isdigit() and not _is_unit(words[i + 1]):
            number = int(word)
        if number is None or (i > 0 and is_number(words[i - 1])):  # "1 second" is a time, not an ordinal
            continue
        for following in words[i + 1 : i + 4]:
            if following in PREPOSITIONS or is_number(following):
                break
            found.append((stem(following), number))
    return found


def _is_unit(word: str) -> bool:
    return bool(quantities(f"1 {word}"))


def _option(arg: ModuleActionArg, raw: list[str]) -> Any:
    """An option the about lists in quotes ('tower1' … 'tower5'), written in the clause.

    Written as the option ("tower2", "tower 2") or as its noun and number in other words: an ordinal ("the second
    tower", "the 2nd tower") and a noun of the same synonym group (``option_nouns``: "stack" for "tower").
    """
    options = re.findall(r"'([A-Za-z0-9_.\-]+)'", arg.description or "")
    written = set(raw) | {a + b for a, b in zip(raw, raw[1:], strict=False)}
    plain = next((o for o in options if o.lower() in written), None)
    if plain is not None:
        return plain
    numbered = {parts: o for o in options if (parts := _option_parts(o)) is not None}
    for noun, number in _numbered_mentions(raw):
        for synonym in sorted(synonyms(noun)):
            if (synonym, number) in numbered:
                return numbered[(synonym, number)]
    return None


def synonyms(noun: str) -> set[str]:
    """A noun's stem and the stems of the nouns the vocabulary makes interchangeable with it in values."""
    found = {noun}
    for group in vocabulary().option_nouns:
        stemmed = {stem(w) for w in group}
        if noun in stemmed:
            found |= stemmed
    return found


def _identifier_like(word: str) -> bool:
    """A word that reads as a name of something saved (``Fluor_485``, ``PCR30``, ``GreenFluor``), not prose."""
    if is_number(word):
        return False
    has_digit, has_alpha = any(c.isdigit() for c in word), any(c.isalpha() for c in word)
    return "_" in word or (has_digit and has_alpha) or any(c.isupper() for c in word[1:])


def _named_value(arg: ModuleActionArg, raw: list[str], cased: list[str], candidate: Candidate) -> Any:
    """A name written next to the arg's noun, in the scientist's case.

    "the Fluor_485 assay", "assay Fluor_485", "program named Quick". Without "named"/"called" the word must look
    like a name (``_identifier_like``); words that say what to do (the action's cues, "OD600") or name the module
    are not values.
    """
    if "str" not in str(arg.type).lower():
        return None
    nouns = {w for w in name_words(arg.name) if w not in _GENERIC_ARG_WORDS}
    if not nouns or len(raw) != len(cased):
        return None
    pairs = [(w, c) for w, c in zip(raw, cased, strict=True) if w not in IGNORED]
    taken = {w for cue in candidate.cues for w in cue} | set(name_words(candidate.module))

    def usable(i: int, marked: bool) -> str | None:
        if not 0 <= i < len(pairs) or pairs[i][0] in PREPOSITIONS or stem(pairs[i][0]) in taken:
            return None
        return pairs[i][1] if marked or _identifier_like(pairs[i][1]) else None

    for i, (word, _) in enumerate(pairs):
        if stem(word) not in nouns:
            continue
        marked = i + 1 < len(pairs) and pairs[i + 1][0] in _NAME_MARKERS
        value = usable(i + 2, True) if marked else usable(i + 1, False) or usable(i - 1, False)
        if value is not None:
            return value
    return None


_TOOL_MARKERS = frozenset({"with", "using", "via"})
"""Words before the name of a saved method a step runs ("measured with Abs_450nm", "using PCR_fast")."""


def _free_name_arg(candidate: Candidate, has_locations: bool) -> ModuleActionArg | None:
    """The action's only str arg that takes a name (not a location, not a file), or None when there are 0 or 2+."""
    found = [
        a
        for a in candidate.action.args
        if "str" in str(a.type).lower() and not is_location_arg(a, has_locations) and "file" not in a.name.lower()
    ]
    return found[0] if len(found) == 1 else None


def _tool_name(raw: list[str], cased: list[str], candidate: Candidate) -> str | None:
    """A name-like word right after "with" / "using" ("measured with Abs_450nm"), as written.

    Only words that read as names (``_identifier_like``) and are neither the action's cues nor its module's words:
    "with 18 uL", "using the OT-2" and "with care" bind nothing.
    """
    if len(raw) != len(cased):
        return None
    pairs = [(w, c) for w, c in zip(raw, cased, strict=True) if w not in IGNORED]
    taken = {w for cue in candidate.cues for w in cue} | set(name_words(candidate.module))
    for (word, _), (following, written) in zip(pairs, pairs[1:], strict=False):
        own = {stem(following), *name_words(following)} & taken
        if word in _TOOL_MARKERS and _identifier_like(written) and not own:
            return written
    return None


def key_matches(key: str, arg_name: str, candidate: Candidate | None) -> bool:
    """A values key names an arg: the same name, or the arg's words plus words of the action (``seal_temperature``).

    Without a candidate (turning a plan back into parameters) the arg's words within the key's suffice.
    """
    if key == arg_name:
        return True
    key_words, arg_words = set(name_words(key)), set(name_words(arg_name))
    if not arg_words <= key_words:
        return False
    return candidate is None or (key_words - arg_words) <= candidate.words


def bind_args(
    candidate: Candidate, clause_text: str, values: dict[str, Any], has_locations: bool
) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Args of one step (locations excluded), which of them came from which values key, and required args unbound.

    ``clause_text`` may keep the scientist's letter case (``Clause.original``): names are bound as written.
    """
    raw = tokens(clause_text)
    cased = cased_tokens(clause_text)
    words = stems(clause_text)
    found = quantities(clause_text)
    files = file_names(clause_text)
    used: set[int] = set()
    args: dict[str, Any] = {}
    from_values: dict[str, str] = {}
    unbound: list[str] = []
    name_arg = _free_name_arg(candidate, has_locations)
    for arg in candidate.action.args:
        if is_location_arg(arg, has_locations):
            continue
        value = _from_quantity(arg, found, used)
        if value is None:
            value = _named_number(arg, words)
        if value is None:
            value = _option(arg, raw)
        if value is None and "file" in arg.name.lower() and files:
            value = files[0]
        if value is None:
            value = _named_value(arg, raw, cased, candidate)
        if value is None and arg is name_arg:
            value = _tool_name(raw, cased, candidate)
        if value is None:
            key = next((k for k in values if key_matches(k, arg.name, candidate)), None)
            if key is not None:
                value = values[key]
                from_values[arg.name] = key
        if value is not None:
            args[arg.name] = coerce(arg, value)
        elif arg.required and arg.default is None:
            unbound.append(arg.name)
    return args, from_values, unbound
