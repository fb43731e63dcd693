"""Datapoints of the simulated ``wei`` package (mirrors ``wei.types.datapoint_types`` 0.7.4)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base_types import BaseModel, ulid_factory


class DataPoint(BaseModel, extra="allow"):
    """A piece of data a step (or the experiment) produced."""

    label: str
    """Label of the datapoint."""
    step_id: str | None = None
    """Step that produced it."""
    workflow_id: str | None = None
    """Run that produced it."""
    experiment_id: str | None = None
    """Experiment."""
    campaign_id: str | None = None
    """Campaign."""
    type: str
    """``local_file`` or ``data_value``."""
    id: str = Field(default_factory=ulid_factory)
    """Datapoint id."""


class LocalFileDataPoint(DataPoint):
    """A datapoint holding a file."""

    type: Literal["local_file"] = "local_file"
    """Always ``local_file``."""
    path: str
    """Path of the file."""


class ValueDataPoint(DataPoint):
    """A datapoint holding a JSON value."""

    type: Literal["data_value"] = "data_value"
    """Always ``data_value``."""
    value: Any
    """The value."""
