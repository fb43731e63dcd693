"""Experiment events of the simulated ``wei`` package (the experiment events of ``wei.types.event_types`` 0.7.4).

The workcell and workflow events (which the server sends, not scripts) are not provided.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from .base_types import BaseModel, ulid_factory
from .experiment_types import Campaign, Experiment


class Event(BaseModel, extra="allow"):
    """One event of an experiment."""

    event_id: str = Field(default_factory=ulid_factory)
    """Event id."""
    event_timestamp: datetime = Field(default_factory=datetime.now)
    """When it happened."""
    experiment_id: str | None = None
    """Experiment."""
    campaign_id: str | None = None
    """Campaign."""
    workcell_id: str | None = None
    """Workcell."""
    event_type: str
    """e.g. EXPERIMENT."""
    event_name: str
    """e.g. START."""
    event_info: Any | None = None
    """Free-form extra information."""


class CampaignStartEvent(Event):
    """A campaign was created."""

    event_type: Literal["CAMPAIGN"] = "CAMPAIGN"
    event_name: Literal["CREATE"] = "CREATE"
    campaign: Campaign
    """The campaign."""


class ExperimentStartEvent(Event):
    """An experiment started."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["START"] = "START"
    experiment: Experiment
    """The experiment."""


class ExperimentContinueEvent(Event):
    """An experiment was continued."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["CONTINUE"] = "CONTINUE"
    experiment: Experiment | None = None
    """The experiment."""


class ExperimentEndEvent(Event):
    """An experiment ended."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["END"] = "END"
    experiment: Experiment | None = None
    """The experiment."""


class ExperimentDataPointEvent(Event):
    """A datapoint of an experiment."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["DATA_POINT"] = "DATA_POINT"
    data_point: dict[str, Any]
    """The datapoint."""


class DecisionEvent(Event):
    """A decision was made."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["DECISION"] = "DECISION"
    decision_name: str
    """Name of the decision."""
    decision_value: bool | None = None
    """Its value."""


class CommentEvent(Event):
    """A comment."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["COMMENT"] = "COMMENT"
    comment: str
    """The comment."""


class LocalComputeEvent(Event):  # type: ignore[no-redef]  # a field named kwargs (as in WEI) clashes with the pydantic plugin
    """A local computation."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["LOCAL_COMPUTE"] = "LOCAL_COMPUTE"
    function_name: str
    """Function called."""
    args: list[Any] | None = None
    """Positional args."""
    kwargs: dict[str, Any] | None = None
    """Keyword args."""
    result: Any | None = None
    """Result."""


class GlobusComputeEvent(Event):  # type: ignore[no-redef]  # a field named kwargs (as in WEI) clashes with the pydantic plugin
    """A Globus computation."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["GLOBUS_COMPUTE"] = "GLOBUS_COMPUTE"
    function_name: str
    """Function called."""
    args: list[Any] | None = None
    """Positional args."""
    kwargs: dict[str, Any] | None = None
    """Keyword args."""
    result: Any | None = None
    """Result."""


class GladierFlowEvent(Event):
    """A Gladier flow."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["GLADIER_FLOW"] = "GLADIER_FLOW"
    flow_name: str
    """Name of the flow."""
    flow_id: str
    """Id of the flow."""


class LoopStartEvent(Event):
    """A loop started."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["LOOP_START"] = "LOOP_START"
    loop_name: str
    """Name of the loop."""


class LoopEndEvent(Event):
    """A loop ended."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["LOOP_END"] = "LOOP_END"
    loop_name: str
    """Name of the loop."""


class LoopCheckEvent(Event):
    """A loop condition was checked."""

    event_type: Literal["EXPERIMENT"] = "EXPERIMENT"
    event_name: Literal["LOOP_CHECK"] = "LOOP_CHECK"
    loop_name: str
    """Name of the loop."""
    conditional: str
    """The condition."""
    result: bool
    """Its value."""
