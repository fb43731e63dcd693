"""Types of the simulated ``wei`` package: the models an experiment script uses, as ``wei.types`` 0.7.4 exports them.

Not provided (they serve module and server authors, not experiment scripts): ``AdminCommands``, ``Interface``,
``Module``, ``ModuleAbout``, ``ModuleAction``, ``ModuleActionArg``, ``ModuleActionFile``, ``ModuleStatus``,
``Location``, ``Workcell``, ``WorkcellConfig``.
"""

from .base_types import BaseModel, Metadata, PathLike, ulid_factory
from .event_types import Event
from .experiment_types import Campaign, Experiment, ExperimentDesign
from .step_types import Step, StepResponse, StepStatus
from .workflow_types import Workflow, WorkflowRun, WorkflowStatus

__all__ = [
    "BaseModel",
    "PathLike",
    "ulid_factory",
    "StepResponse",
    "StepStatus",
    "Step",
    "Metadata",
    "Workflow",
    "WorkflowStatus",
    "WorkflowRun",
    "Campaign",
    "Experiment",
    "ExperimentDesign",
    "Event",
]
