"""Steps and step results of the simulated ``wei`` package (mirrors ``wei.types.step_types`` 0.7.4).

Difference: ``Step.args`` does not load arg values that name an existing ``.yaml`` file (a 0.7.4 quirk), and
``StepFileResponse`` (a FastAPI response for module authors) is not provided.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

from pydantic import Field

from .base_types import BaseModel, PathLike, ulid_factory


class StepStatus(str, Enum):  # noqa: UP042 - as WEI defines it (str() differs from StrEnum)
    """Status of a workflow step."""

    IDLE = "idle"
    NOT_READY = "not_ready"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepResponse(BaseModel):
    """What a module returns for an action; on a run's step, ``data`` maps datapoint labels to datapoint ids."""

    status: StepStatus = StepStatus.SUCCEEDED
    """Whether the step succeeded or failed."""
    error: str | None = None
    """Error message of a failed step."""
    data: dict[str, Any] | None = None
    """Result data (on a run: label -> datapoint id)."""
    files: dict[str, Any] | None = None
    """Result file labels -> file names."""

    def to_headers(self) -> dict[str, str]:
        """The response as ``x-wei-*`` headers."""
        return {
            "x-wei-status": str(self.status),
            "x-wei-data": json.dumps(self.data),
            "x-wei-error": json.dumps(self.error),
            "x-wei-files": json.dumps(self.files),
        }

    @classmethod
    def from_headers(cls, headers: dict[str, Any]) -> StepResponse:
        """A response from ``x-wei-*`` headers."""
        return cls(
            status=StepStatus(headers["x-wei-status"]),
            error=json.loads(headers["x-wei-error"]),
            files=json.loads(headers["x-wei-files"]),
            data=json.loads(headers["x-wei-data"]),
        )

    @classmethod
    def step_succeeded(cls, files: dict[str, str] | None = None, data: dict[str, str] | None = None) -> StepResponse:
        """A succeeded response."""
        return cls(status=StepStatus.SUCCEEDED, files=files, data=data)

    @classmethod
    def step_failed(cls, error: str = "") -> StepResponse:
        """A failed response."""
        return cls(status=StepStatus.FAILED, error=error)

    @classmethod
    def step_not_ready(cls, error: str = "") -> StepResponse:
        """A not-ready response."""
        return cls(status=StepStatus.NOT_READY, error=error)


class StepSucceeded(StepResponse):
    """A succeeded StepResponse."""

    status: Literal[StepStatus.SUCCEEDED] = StepStatus.SUCCEEDED


class StepFailed(StepResponse):
    """A failed StepResponse."""

    status: Literal[StepStatus.FAILED] = StepStatus.FAILED


class Step(BaseModel, arbitrary_types_allowed=True):
    """One workflow step: its definition and, on a run, its runtime information."""

    name: str
    """Name of the step."""
    module: str
    """Workcell module that runs it."""
    action: str
    """Action of the module."""
    args: dict[str, Any] = {}
    """Arguments of the action."""
    files: dict[str, PathLike] = {}
    """Files of the action."""
    checks: str | None = None
    """For future use."""
    locations: dict[str, Any] = {}
    """Location names the engine resolved in args."""
    requirements: dict[str, Any] = {}
    """Unused."""
    dependencies: list[str] = []
    """Unused."""
    priority: int | None = None
    """Unused."""
    comment: str | None = None
    """Notes."""
    data_labels: dict[str, str] | None = None
    """Result label -> datapoint label."""

    id: str = Field(default_factory=ulid_factory)
    """Step id."""
    start_time: datetime | None = None
    """When the step started."""
    end_time: datetime | None = None
    """When the step ended."""
    duration: timedelta | None = None
    """How long it ran."""
    result: StepResponse | None = None
    """The step's result once run."""
