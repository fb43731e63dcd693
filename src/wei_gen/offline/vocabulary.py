"""The offline planner's vocabulary (``data/offline_vocabulary.yaml``): instrument nouns, action cues, capabilities."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, Field

from wei_gen.yamlio import parse_yaml


class TypeVocabulary(BaseModel):
    """Words for one semantic module type."""

    nouns: list[str] = Field(default_factory=list)
    """What people call the instrument."""
    actions: dict[str, list[str]] = Field(default_factory=dict)
    """Action name → cue phrases."""


class MoveVocabulary(BaseModel):
    """Words about moving plates."""

    trash: list[str] = Field(default_factory=list)
    """Phrases that send the plate to the trash."""


class Capability(BaseModel):
    """An instrument a lab may lack."""

    name: str
    """How it is reported."""
    phrases: list[str]
    """Phrases that say a clause needs it."""
    provided_by: list[str]
    """Words in a module's name, model or description that mean the lab has it."""


class Vocabulary(BaseModel):
    """The whole vocabulary file."""

    version: int = 1
    """Format version."""
    module_types: dict[str, TypeVocabulary] = Field(default_factory=dict)
    """Per semantic module type (ids of ``data/semantics.yaml``)."""
    moves: MoveVocabulary = Field(default_factory=MoveVocabulary)
    """Move words."""
    missing_capabilities: list[Capability] = Field(default_factory=list)
    """Capabilities checked for infeasibility."""
    option_nouns: list[list[str]] = Field(default_factory=list)
    """Groups of interchangeable nouns in numbered option values ("stack 2" names the option 'tower2')."""


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """The shipped vocabulary (parsed once)."""
    source = resources.files("wei_gen") / "data" / "offline_vocabulary.yaml"
    data = parse_yaml(source.read_text(encoding="utf-8"), "offline_vocabulary.yaml").data
    return Vocabulary.model_validate(data)
