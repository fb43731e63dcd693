"""Transfer completion for workflows: insert the arm moves a generated workflow forgot.

Language models are weakest at transport between instruments; when a step needs the plate at a nest other than
where the previous steps left it, the move is inserted deterministically (through an arm whose location table serves
both places) and marked in the step's comment.
"""

from __future__ import annotations

from wei_gen.lab import Lab
from wei_gen.tools.flow import plan_transfers, steps_from_workflow
from wei_gen.tools.semantics import LabSemantics
from wei_gen.wei_types import Step, Workflow, workflow_to_dict

COMMENT = "added by wei-gen: transfer completion"


def complete_transfers(
    workflow: Workflow, lab: Lab, semantics: LabSemantics | None = None
) -> tuple[Workflow, list[str]]:
    """The workflow with missing transfers inserted, and one note per insertion."""
    steps = steps_from_workflow(workflow_to_dict(workflow))
    transfers = plan_transfers(steps, lab, semantics)
    if not transfers:
        return workflow, []
    flowdef: list[Step] = []
    notes = []
    pending = {t.before: t for t in transfers}
    for index, step in enumerate(workflow.flowdef):
        if (t := pending.get(index)) is not None:
            name = f"Move plate from {t.source} to {t.target}"
            flowdef.append(
                Step(
                    name=name,
                    module=t.module,
                    action=t.action,
                    args={t.source_arg: t.source, t.target_arg: t.target},
                    comment=COMMENT,
                )
            )
            notes.append(f"inserted '{name}' ({t.module}.{t.action}) before step '{step.name}'")
        flowdef.append(step)
    return workflow.model_copy(update={"flowdef": flowdef}), notes
