"""Experiments and campaigns of the simulated ``wei`` package (mirrors ``wei.types.experiment_types`` 0.7.4)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AliasChoices, Field

from .base_types import BaseModel, PathLike, ulid_factory


class CampaignDesign(BaseModel):
    """Design of a campaign."""

    campaign_name: str
    """Name of the campaign."""
    campaign_description: str | None = None
    """Description of the campaign."""


class Campaign(CampaignDesign):
    """A campaign: a collection of related experiments."""

    campaign_id: str = Field(default_factory=ulid_factory)
    """Campaign id."""
    experiment_ids: list[str] = []
    """Its experiments."""


class ExperimentDesign(BaseModel):
    """Design of an experiment (``name`` is accepted for ``experiment_name``)."""

    experiment_name: str = Field(validation_alias=AliasChoices("name", "experiment_name"))
    """Name of the experiment."""
    campaign_id: str | None = None
    """Campaign it belongs to (must exist)."""
    experiment_description: str | None = None
    """Description of the experiment."""
    email_addresses: list[str] = []
    """Who gets notified."""


class Experiment(ExperimentDesign):
    """A registered experiment."""

    experiment_id: str = Field(default_factory=ulid_factory)
    """Experiment id."""
    experiment_directory: PathLike | None = None
    """Where its data is stored."""
    check_in_timestamp: datetime | None = None
    """Last check-in of the client."""
