"""Workflows and workflow runs of the simulated ``wei`` package (mirrors ``wei.types.workflow_types`` 0.7.4)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import Field, field_validator

from .base_types import BaseModel, Metadata, ulid_factory
from .module_types import SimpleModule
from .step_types import Step


class WorkflowStatus(str, Enum):  # noqa: UP042 - as WEI defines it (str() differs from StrEnum)
    """Status of a workflow run."""

    NEW = "new"
    QUEUED = "queued"
    RUNNING = "running"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        """Whether the run is still going."""
        return self in (
            WorkflowStatus.NEW,
            WorkflowStatus.QUEUED,
            WorkflowStatus.RUNNING,
            WorkflowStatus.IN_PROGRESS,
            WorkflowStatus.PAUSED,
        )


class WorkflowParameter(BaseModel):
    """A declared workflow parameter."""

    name: str
    """Parameter name."""
    default: Any | None = None
    """Default value (a falsy default counts as none)."""


class Workflow(BaseModel):
    """A workflow definition."""

    name: str
    """Name of the workflow."""
    metadata: Metadata = Field(default_factory=Metadata)
    """Information about the flow."""
    parameters: list[WorkflowParameter] | None = []
    """Declared inputs."""
    flowdef: list[Step]
    """The steps."""
    modules: list[str | SimpleModule] = []
    """Deprecated; not validated."""

    @field_validator("modules", mode="after")
    @classmethod
    def validate_modules(cls, v: list[str | SimpleModule]) -> list[str | SimpleModule]:
        """Convert ``{name: x}`` entries to ``"x"``."""
        return [m.name if isinstance(m, SimpleModule) else m for m in v]

    @field_validator("flowdef", mode="after")
    @classmethod
    def ensure_data_label_uniqueness(cls, v: list[Step]) -> list[Step]:
        """Data labels must be unique across the workflow."""
        labels: list[str] = []
        for step in v:
            for key in step.data_labels or {}:
                label = (step.data_labels or {})[key]
                if label in labels:
                    raise ValueError("Data labels must be unique across workflow")
                labels.append(label)
        return v


class WorkflowRun(Workflow):
    """A run of a workflow, as the WEI server keeps it."""

    label: str | None = None
    """Label of the run."""
    run_id: str = Field(default_factory=ulid_factory)
    """Run id."""
    payload: dict[str, Any] = {}
    """Payload of the run."""
    status: WorkflowStatus = Field(default=WorkflowStatus.NEW)
    """Current status (stored as its string value)."""
    steps: list[Step] = []
    """The processed steps, with their results."""
    experiment_id: str
    """Experiment of the run."""
    step_index: int = 0
    """Index of the current (or failed, or last) step."""
    simulate: bool = False
    """Whether the run was simulated."""
    start_time: datetime | None = None
    """When it started."""
    end_time: datetime | None = None
    """When it ended."""
    duration: timedelta | None = None
    """How long it ran."""

    def get_step_by_name(self, name: str) -> Step:
        """The first step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"Step {name} not found in workflow run {self.run_id}")

    def get_step_by_id(self, id: str) -> Step:  # noqa: A002 - WEI's argument name
        """The step with id ``id``."""
        for step in self.steps:
            if step.id == id:
                return step
        raise KeyError(f"Step {id} not found in workflow run {self.run_id}")

    def get_datapoint_id_by_label(self, label: str) -> str:
        """The id of the first datapoint labelled ``label``."""
        for step in self.steps:
            data = step.result.data if step.result else None
            if data and label in data:
                return str(data[label])
        raise KeyError(f"Label {label} not found in workflow run {self.run_id}")

    def get_all_datapoint_ids_by_label(self, label: str) -> list[str]:
        """The ids of all datapoints labelled ``label``."""
        ids = [
            str(step.result.data[label])
            for step in self.steps
            if step.result is not None and step.result.data and label in step.result.data
        ]
        if not ids:
            raise KeyError(f"Label {label} not found in workflow run {self.run_id}")
        return ids
