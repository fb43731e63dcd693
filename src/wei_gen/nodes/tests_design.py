"""The AgentCoder test designer: writes pytest tests for the experiment script without seeing it.

Independence is the point (arXiv 2312.13010): the tests come from the workflow and the scientist's values, so they
can catch a programmer's misreading instead of repeating it. They run with the script in the sandbox (executor).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from wei_gen.context import Context
from wei_gen.models import call_structured
from wei_gen.nodes.common import chat_model, experiment_text, is_offline, turns
from wei_gen.nodes.workflow import parameter_defaults
from wei_gen.offline.nodes import offline_tests
from wei_gen.prompts import DATA_RULE, TESTS_SYSTEM, TESTS_USER
from wei_gen.state import State


class TestsDraft(BaseModel):
    """The test designer's answer."""

    __test__ = False  # not a pytest test class, despite its name (test modules import it)

    tests: str = Field(description="a complete pytest module")


def design_tests(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the validator model for tests of the experiment script (once per code phase)."""
    if is_offline(runtime, "validator"):
        return offline_tests(state, runtime)
    workflow = state["workflow"]
    user = TESTS_USER.format(
        workflow_yaml=workflow.yaml, parameters=parameter_defaults(workflow.workflow), experiment=experiment_text(state)
    )
    out = call_structured(
        chat_model(runtime, "validator"),
        TestsDraft,
        [SystemMessage(TESTS_SYSTEM.format(data_rule=DATA_RULE)), HumanMessage(user)],
    )
    return {
        "code_tests": out.value.tests if out.value else "",
        "usage": {"design_tests": out.usage},
        "contexts": {"validator": turns(user, out.value.tests if out.value else out.error)},
    }
