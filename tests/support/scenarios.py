"""Reusable full-session scenarios: what each model call answers, for the fake chat model or the scripted server.

A `Scenario` holds the answers of one whole ``execute_experiment`` run on the example lab, task by task (the
``<task>`` tag of each system prompt). The same scenario drives either

* the in-process `TaskScriptedChatModel` (`fake_model`, `fake_context`), or
* the real ``ChatOpenAI`` against `ScriptedOpenAI` (`openai_rules`, `openai_context`),

so a test or a benchmark can run a complete session without a network (`ot2_protocol` builds the OT-2 protocol
config answers of the scenarios and tests)::

    scn = pcr_plate()
    app = WEIGen(context=fake_context(scn), data_dir=tmp_path)
    app.new_session().execute_experiment(scn.description, scn.values)

`seal_plate` is the smoke scenario (no instrument configs); `pcr_plate` goes through every phase, including one
workflow retry (a misspelt action the validator rejects) and an OT-2 protocol config.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel

from tests.support import experiment_code
from tests.support.fake_chat import TaskScriptedChatModel, tool_reply, yes_no
from tests.support.scripted_openai import Reply, Rule, rule
from wei_gen.context import Context
from wei_gen.models import register_model
from wei_gen.nodes.code import ScriptDraft
from wei_gen.nodes.config import Command, Equipment, ProtocolConfig, ProtocolMetadata
from wei_gen.nodes.tests_design import TestsDraft
from wei_gen.nodes.workflow import FileDraft, ParameterDraft, StepDraft, WorkflowDraft
from wei_gen.state import ArgValue, Plan, PlanStep, Shortlist, ShortlistEntry

AGENT_MODELS = ("framework", "workflow", "code", "validator", "config")

# Structured-output schema of each scripted task (the tool name the model must call).
TASK_SCHEMAS: dict[str, type[BaseModel]] = {
    "plan": Plan,
    "shortlist": Shortlist,
    "workflow": WorkflowDraft,
    "tests": TestsDraft,
    "code": ScriptDraft,
    "config": ProtocolConfig,
}


def args(**values: Any) -> list[ArgValue]:
    """Action arguments as the models write them (values as JSON text)."""
    return [ArgValue(name=k, value=json.dumps(v)) for k, v in values.items()]


@dataclass
class Scenario:
    """The answers of one full run, in call order per task.

    Attributes:
        name: Short label.
        description: The experiment as the scientist says it.
        values: The scientist's values.
        p_yes: P("yes") of the feasibility answer's first token.
        answers: Per task (``plan``, ``shortlist``, ``workflow``, ``code``, ``config``), the structured answers in
            the order the pipeline asks for them (a retry takes the next one).
        expected_calls: Model calls one run makes (feasibility included).
    """

    name: str
    description: str
    values: dict[str, Any]
    p_yes: float
    answers: dict[str, list[BaseModel]] = field(default_factory=dict)

    @property
    def expected_calls(self) -> int:
        """Feasibility plus one call per scripted answer."""
        return 1 + sum(len(v) for v in self.answers.values())


def fake_model(scenario: Scenario) -> TaskScriptedChatModel:
    """A fresh in-process scripted model answering one run of the scenario."""
    model = TaskScriptedChatModel()
    model.script("feasibility", yes_no("yes", scenario.p_yes))
    for task, answers in scenario.answers.items():
        model.script(task, *(tool_reply(TASK_SCHEMAS[task], a) for a in answers))
    return model


def all_agents(model: str) -> dict[str, Any]:
    """The context settings that put every agent on ``model`` (``framework_model=model``, ...)."""
    return {f"{a}_model": model for a in AGENT_MODELS}


def model_context(model: BaseChatModel, name: str, **settings: Any) -> Context:
    """Register ``model`` under ``name``; a context using it for all five agents."""
    register_model(name, model)
    return Context(**all_agents(name), **settings)


def fake_context(scenario: Scenario, name: str = "fake:scenario", **settings: Any) -> Context:
    """Register a fresh scripted model for the scenario under ``name``; a context using it for all five agents."""
    return model_context(fake_model(scenario), name, **settings)


def openai_rules(scenario: Scenario) -> list[Rule]:
    """Rules that make `ScriptedOpenAI` answer one run of the scenario (add them again for every run)."""
    lp_yes, lp_no = math.log(scenario.p_yes), math.log(max(1 - scenario.p_yes, 1e-9))
    rules = [
        rule(Reply.text("yes", logprobs=("yes", [("yes", lp_yes), ("no", lp_no)])), contains="<task>feasibility</task>")
    ]
    for task, answers in scenario.answers.items():
        rules.append(
            rule(*(Reply.data(a) for a in answers), name=TASK_SCHEMAS[task].__name__, contains=f"<task>{task}</task>")
        )
    return rules


def openai_context(base_url: str, model: str = "openai:scripted", **settings: Any) -> Context:
    """A context sending every agent's calls to a `ScriptedOpenAI` server through the real ``ChatOpenAI``."""
    return Context(**all_agents(model), base_url=base_url, **settings)


def ot2_protocol(
    title: str,
    labware: dict[str, str],
    pipette: tuple[str, str],
    commands: list[Command],
    description: str = "",
) -> ProtocolConfig:
    """An OT-2 protocol config answer: ``labware`` name to deck slot (in this order), then the pipette and its mount."""
    equipment = [Equipment(name=name, location=slot) for name, slot in labware.items()]
    equipment.append(Equipment(name=pipette[0], mount=pipette[1]))
    return ProtocolConfig(
        equipment=equipment, commands=commands, metadata=ProtocolMetadata(protocolName=title, description=description)
    )


# -- scenarios -------------------------------------------------------------------------------------------------------

_SCRIPT = experiment_code.script({"temp": 175})


def seal_plate() -> Scenario:
    """Take a plate, seal it (the smoke scenario): one workflow retry, no instrument configs."""
    plan = Plan(
        title="Seal a plate",
        steps=[
            PlanStep(instrument="sciclops", action="get_plate", args=args(pos="tower1")),
            PlanStep(
                instrument="pf400", action="transfer", args=args(source="sciclops.exchange", target="sealer.default")
            ),
            PlanStep(instrument="sealer", action="seal", args=args(temperature=175, time=3)),
        ],
    )
    good = WorkflowDraft(
        name="Seal",
        parameters=[ParameterDraft(name="temp", default="175")],
        steps=[
            StepDraft(name="Get plate", module="sciclops", action="get_plate", args=args(pos="tower1")),
            StepDraft(
                name="To sealer",
                module="pf400",
                action="transfer",
                args=args(source="sciclops.exchange", target="sealer.default"),
            ),
            StepDraft(name="Seal", module="sealer", action="seal", args=args(temperature="$temp", time=3)),
        ],
    )
    bad = good.model_copy(deep=True)
    bad.steps[2].action = "sael"
    return Scenario(
        name="seal_plate",
        description="seal a plate at 175 C",
        values={"temperature": 175},
        p_yes=0.9,
        answers={
            "plan": [plan],
            "shortlist": [Shortlist(modules=[ShortlistEntry(module="sealer"), ShortlistEntry(module="ghost")])],
            "workflow": [bad, good],
            "tests": [TestsDraft(tests=experiment_code.TESTS)],
            "code": [ScriptDraft(script=_SCRIPT)],
        },
    )


def pcr_plate() -> Scenario:
    """Prepare a PCR plate on the OT-2 and seal it: every phase, one workflow retry, one OT-2 protocol config."""
    plan = Plan(
        title="PCR plate prep",
        summary="Take a fresh plate, pipette the PCR mix on the OT-2, seal the plate.",
        steps=[
            PlanStep(instrument="sciclops", action="get_plate", args=args(pos="tower1"), purpose="fresh plate"),
            PlanStep(
                instrument="pf400", action="transfer", args=args(source="sciclops.exchange", target="ot2_pcr.deck1")
            ),
            PlanStep(instrument="ot2_pcr", action="run_protocol", purpose="pipette the PCR mix"),
            PlanStep(instrument="pf400", action="transfer", args=args(source="ot2_pcr.deck1", target="sealer.default")),
            PlanStep(instrument="sealer", action="seal", args=args(temperature=175, time=3)),
        ],
    )
    good = WorkflowDraft(
        name="PCR plate prep",
        description="Pipette the PCR mix into a fresh plate and seal it.",
        parameters=[ParameterDraft(name="temp", default="175")],
        steps=[
            StepDraft(name="Get plate", module="sciclops", action="get_plate", args=args(pos="tower1")),
            StepDraft(
                name="To OT-2",
                module="pf400",
                action="transfer",
                args=args(source="sciclops.exchange", target="ot2_pcr.deck1"),
            ),
            StepDraft(
                name="Mix",
                module="ot2_pcr",
                action="run_protocol",
                files=[FileDraft(name="protocol", path="configs/ot2_pcr_protocol.yaml")],
            ),
            StepDraft(
                name="To sealer",
                module="pf400",
                action="transfer",
                args=args(source="ot2_pcr.deck1", target="sealer.default"),
            ),
            StepDraft(name="Seal", module="sealer", action="seal", args=args(temperature="$temp", time=3)),
        ],
    )
    bad = good.model_copy(deep=True)
    bad.steps[4].action = "sael"
    protocol = ot2_protocol(
        "PCR mix",
        {
            "opentrons_96_tiprack_20ul": "8",
            "nest_96_wellplate_100ul_pcr_full_skirt": "1",
            "opentrons_24_tuberack_nest_1.5ml_snapcap": "2",
        },
        ("p20_single_gen2", "left"),
        [
            Command(name="master mix", source="2:A1", destination="1:A1", volume=15),
            Command(name="template", source="2:A2", destination="1:A1", volume=5, mix_cycles=3, mix_volume=10),
        ],
        "15 µL master mix + 5 µL template",
    )
    return Scenario(
        name="pcr_plate",
        description="Prepare a PCR plate: pipette 15 uL master mix and 5 uL template on the OT-2, then seal at 175 C.",
        values={"master_mix_ul": 15, "template_ul": 5, "temperature": 175},
        p_yes=0.92,
        answers={
            "plan": [plan],
            "shortlist": [Shortlist(modules=[ShortlistEntry(module="ot2_pcr"), ShortlistEntry(module="sealer")])],
            "workflow": [bad, good],
            "tests": [TestsDraft(tests=experiment_code.TESTS)],
            "code": [ScriptDraft(script=_SCRIPT)],
            "config": [protocol],
        },
    )


SCENARIOS = {"seal_plate": seal_plate, "pcr_plate": pcr_plate}
