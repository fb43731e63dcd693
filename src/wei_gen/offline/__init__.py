"""The offline planner: wei-gen's pipeline without a model (deterministic, no network).

Selected per agent by the model string ``offline`` (the default when no model, API key or endpoint is configured).
``planner`` maps a description's clauses to the lab's actions, binds the values and completes the transfers;
``nodes`` holds the offline branches of the model nodes; ``code`` the offline programmer and test designer.
"""

from wei_gen.offline.planner import OfflinePlan, PlannedStep, plan_offline, to_plan

__all__ = ["OfflinePlan", "PlannedStep", "plan_offline", "to_plan"]
