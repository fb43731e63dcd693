"""The whole pipeline end to end through the real ``ChatOpenAI`` against the scripted OpenAI-compatible server.

Every model call of a session goes over HTTP to `ScriptedOpenAI` on 127.0.0.1 (no mocks of LangChain or the openai
SDK), the graph runs through the session API on a fresh SQLite store per test, and the artifacts are checked
against the example lab ``examples/labs/rpl_like``. The scripted answers form a PCR experiment on that lab: new
plate from a tower, PCR setup on ``ot2_pcr``, seal, thermocycle, peel, photograph. The tests cover the happy path
(plain and SSE-streamed), the validation retry edges, infeasible experiments, transport faults (429, timeouts,
malformed JSON), chat refinement and user edits, and bad input.

A guard fails any test that opens a socket to anything but the loopback interface, and no API key is needed:
with ``base_url`` set wei-gen sends the key ``not-needed``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import experiment_code
from tests.support.scenarios import all_agents, openai_context, ot2_protocol
from tests.support.scripted_openai import RecordedRequest, Reply, Rule, ScriptedOpenAI, rule
from wei_gen.context import ConfigError, Context, register_credentials
from wei_gen.lab import Lab, lab_from_dir
from wei_gen.nodes.code import ScriptDraft
from wei_gen.nodes.config import Command, ProtocolConfig
from wei_gen.nodes.feasibility import FeasibilityVerdict, Infeasibility
from wei_gen.nodes.tests_design import TestsDraft
from wei_gen.nodes.workflow import FileDraft, ParameterDraft, StepDraft, WorkflowDraft, draft_to_workflow
from wei_gen.session import SessionNotFoundError, WEIGen, WEIGenError
from wei_gen.state import ArgValue, Plan, PlanStep, Shortlist, ShortlistEntry
from wei_gen.tools.validator import validate_text

pytestmark = [
    pytest.mark.integration,
    # langchain-openai model_dumps the SDK's ParsedChatCompletion[Model]; pydantic warns about the generic field.
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"
V2_HISTORY_KEYS = {
    "version", "session_id", "timestamp", "validity", "original_user_description", "original_user_values",
    "framework_agent_ctx", "workflow_agent_ctx", "code_agent_ctx", "validator_agent_ctx", "config_agent_ctx",
    "generated_framework", "generated_workflow", "generated_code", "generated_config",
}  # fmt: skip
ENV_VARS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID",
    "WEI_GEN_LAB", "WEI_GEN_DATA_DIR", "WEI_GEN_CHECKPOINTER", "WEI_GEN_API_TOKEN",
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)  # fmt: skip
_TASK = re.compile(r"<task>([\w-]+)</task>")

# -- the PCR experiment on the example lab ---------------------------------------------------------------------------

DESCRIPTION = (
    "Take a new plate from the sciclops tower, run the PCR setup protocol on the OT-2, seal at 175 °C for 3 s, "
    "run thermocycler program 3, peel, photograph"
)
VALUES = """\
seal_temperature: 175   # °C
seal_time: 3            # s
pcr_program: 3
master_mix_ul: 20
template_ul: 5
"""
P_YES = 0.9
"""P(yes) of the scripted feasibility answer: 0.85 for "yes" plus 0.05 for " Yes"."""
PROTOCOL_PATH = "configs/ot2_pcr_protocol.yaml"
BAD_ACTION = "depeel"
INFEASIBLE_DESCRIPTION = "Spin the PCR plate in a centrifuge at 4000 rpm for 10 minutes, then read the absorbance."
MISSING = "a centrifuge"


def args(**values: Any) -> list[ArgValue]:
    """Action arguments as models write them: values as JSON text."""
    return [ArgValue(name=k, value=json.dumps(v)) for k, v in values.items()]


def transfer(source: str, target: str) -> dict[str, Any]:
    return {"source": source, "target": target}


def pcr_plan() -> Plan:
    def step(instrument: str, action: str, purpose: str = "", **kw: Any) -> PlanStep:
        return PlanStep(instrument=instrument, action=action, args=args(**kw), purpose=purpose)

    steps = [
        step("sciclops", "get_plate", "new plate", pos="tower1"),
        step("pf400", "transfer", **transfer("sciclops.exchange", "ot2_pcr.deck1")),
        step("ot2_pcr", "run_protocol", "PCR setup"),
        step("pf400", "transfer", **transfer("ot2_pcr.deck1", "sealer.default")),
        step("sealer", "seal", "seal", temperature=175, time=3),
        step("biometra", "open_lid", plate_type=1),
        step("pf400", "transfer", **transfer("sealer.default", "biometra.default")),
        step("biometra", "close_lid", plate_type=1),
        step("biometra", "run_protocol", "PCR", program=3, plate_type=1),
        step("biometra", "open_lid", "open after the run", plate_type=1),
        step("pf400", "transfer", **transfer("biometra.default", "peeler.default")),
        step("peeler", "peel", "peel"),
        step("pf400", "transfer", **transfer("peeler.default", "camera.plate_station")),
        step("camera", "take_picture", "photo", file_name="pcr_plate.jpg"),
    ]
    return Plan(title="PCR", summary="PCR setup, seal, thermocycle, peel, photograph.", steps=steps)


def pcr_workflow(*, peel: bool = True, action_of_peel: str = "peel") -> WorkflowDraft:
    """The PCR workflow as the workflow model writes it; ``peel=False`` leaves the peeler out."""

    def step(name: str, module: str, action: str, **kw: Any) -> StepDraft:
        files = [FileDraft(name="protocol", path=PROTOCOL_PATH)] if module == "ot2_pcr" else []
        return StepDraft(name=name, module=module, action=action, args=args(**kw), files=files)

    after_cycler = "peeler.default" if peel else "camera.plate_station"
    steps = [
        step("Get a new plate", "sciclops", "get_plate", pos="$tower"),
        step("Plate to the OT-2", "pf400", "transfer", **transfer("sciclops.exchange", "ot2_pcr.deck1")),
        step("PCR setup", "ot2_pcr", "run_protocol"),
        step("Plate to the sealer", "pf400", "transfer", **transfer("ot2_pcr.deck1", "sealer.default")),
        step("Seal", "sealer", "seal", temperature="$seal_temperature", time="$seal_time"),
        step("Open the cycler", "biometra", "open_lid", plate_type="$plate_type"),
        step("Plate into the cycler", "pf400", "transfer", **transfer("sealer.default", "biometra.default")),
        step("Close the cycler", "biometra", "close_lid", plate_type="$plate_type"),
        step("Thermocycle", "biometra", "run_protocol", program="$pcr_program", plate_type="$plate_type"),
        step("Open the cycler again", "biometra", "open_lid", plate_type="$plate_type"),
        step("Plate out of the cycler", "pf400", "transfer", **transfer("biometra.default", after_cycler)),
    ]
    if peel:
        steps += [
            step("Peel", "peeler", action_of_peel),
            step("Plate to the camera", "pf400", "transfer", **transfer("peeler.default", "camera.plate_station")),
        ]
    steps.append(step("Photograph", "camera", "take_picture", file_name="pcr_plate.jpg"))
    parameters = [
        ParameterDraft(name="tower", default='"tower1"'),
        ParameterDraft(name="seal_temperature", default="175"),
        ParameterDraft(name="seal_time", default="3.0"),
        ParameterDraft(name="pcr_program", default="3"),
        ParameterDraft(name="plate_type", default="1"),
    ]
    return WorkflowDraft(name="PCR", description="PCR on a new plate", parameters=parameters, steps=steps)


SHORTLIST = Shortlist(
    modules=[
        ShortlistEntry(module=m, why=w)
        for m, w in [("sciclops", "new plate"), ("pf400", "moves"), ("ot2_pcr", "PCR setup"), ("sealer", "seal"),
                     ("biometra", "thermocycle"), ("peeler", "peel"), ("camera", "photo")]
    ]
)  # fmt: skip
SCRIPT = experiment_code.script({"seal_temperature": 175, "seal_time": 3, "pcr_program": 3})
PROTOCOL = ot2_protocol(
    "PCR setup",
    {
        "biorad_96_wellplate_200ul_pcr": "1",
        "opentrons_24_tuberack_nest_1.5ml_snapcap": "4",
        "opentrons_96_tiprack_20ul": "7",
    },
    ("p20_single_gen2", "left"),
    [
        Command(name="Distribute master mix", source="4:A1", destination="1:A1", volume=20),
        Command(name="Add template DNA", source="4:B1", destination="1:A1", volume=5, mix_cycles=3, mix_volume=15),
    ],
    "20 µL master mix + 5 µL template",
)


def feasibility_answer(p_yes: float) -> Reply:
    """A one-token answer whose first-token logprobs give ``p_yes`` (split over "yes" and " Yes")."""
    word = "yes" if p_yes >= 0.5 else "no"
    top = [("yes", math.log(p_yes - 0.05)), (" Yes", math.log(0.05)), ("no", math.log(1 - p_yes))]
    return Reply.text(word, logprobs=(word, sorted(top, key=lambda t: -t[1])))


def pcr_rules(
    *,
    feasibility: Sequence[Reply] = (feasibility_answer(P_YES),),
    plan: Sequence[Reply | Any] = (pcr_plan(),),
    shortlist: Sequence[Reply | Any] = (SHORTLIST,),
    workflow: Sequence[Reply | Any] = (pcr_workflow(),),
    tests: Sequence[Reply | Any] = (TestsDraft(tests=experiment_code.TESTS),),
    code: Sequence[Reply | Any] = (ScriptDraft(script=SCRIPT),),
    config: Sequence[Reply | Any] = (PROTOCOL,),
) -> list[Rule]:
    """Rules answering every task of the PCR session; each queue repeats its last reply (for re-runs)."""
    return [
        rule(*feasibility, contains="<task>feasibility</task>", repeat=True),
        rule(*plan, name="Plan", contains="<task>plan</task>", repeat=True),
        rule(*shortlist, name="Shortlist", contains="<task>shortlist</task>", repeat=True),
        rule(*workflow, name="WorkflowDraft", contains="<task>workflow</task>", repeat=True),
        rule(*tests, name="TestsDraft", contains="<task>tests</task>", repeat=True),
        rule(*code, name="ScriptDraft", contains="<task>code</task>", repeat=True),
        rule(*config, name="ProtocolConfig", contains="<task>config</task>", repeat=True),
    ]


# -- helpers ---------------------------------------------------------------------------------------------------------


def task_of(request: RecordedRequest) -> str:
    """The ``<task>`` tag of a chat request's system prompt."""
    messages = (request.body or {}).get("messages") or [{}]
    match = _TASK.search(str(messages[0].get("content", "")))
    return match.group(1) if match else ""


def requests_for(server: ScriptedOpenAI, task: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path == "/v1/chat/completions" and task_of(r) == task]


def last_user_text(request: RecordedRequest) -> str:
    return str(request.body["messages"][-1]["content"])


def context_for(server: ScriptedOpenAI, **settings: Any) -> Context:
    """Every agent on the scripted server through the real ChatOpenAI (``openai:scripted``)."""
    return openai_context(server.base_url, lab_dir=str(LAB_DIR), **{"request_timeout": 5.0, **settings})


def assert_intact(app: WEIGen, tmp_path: Path, session_id: str) -> dict[str, Any]:
    """The session reloads, in this store and in a fresh one on the same directory, and its history renders."""
    history = app.load_session(session_id).get_history()
    assert history["session_id"] == session_id and set(history) >= V2_HISTORY_KEYS
    with WEIGen(context=app.context, data_dir=tmp_path) as other:
        again = other.load_session(session_id).get_history()
    assert again["wei_gen"]["status"] == history["wei_gen"]["status"]
    assert again["generated_workflow"] == history["generated_workflow"]
    return history


# -- fixtures --------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No API key, endpoint or proxy from the environment (tests/conftest.py already refuses non-loopback sockets)."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    register_credentials("", "")
    yield
    register_credentials("", "")


@pytest.fixture
def server() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as srv:
        yield srv


@pytest.fixture
def lab() -> Lab:
    return lab_from_dir(LAB_DIR)


def make_app(server: ScriptedOpenAI, tmp_path: Path, **settings: Any) -> WEIGen:
    return WEIGen(context=context_for(server, **settings), data_dir=tmp_path)


@pytest.fixture
def app(server: ScriptedOpenAI, tmp_path: Path) -> Iterator[WEIGen]:
    with make_app(server, tmp_path) as application:
        yield application


# -- 1. the PCR experiment end to end --------------------------------------------------------------------------------


def test_pcr_session_end_to_end(app: WEIGen, server: ScriptedOpenAI, tmp_path: Path, lab: Lab) -> None:
    server.add(*pcr_rules())
    session = app.new_session()
    status = session.execute_experiment(DESCRIPTION, VALUES)
    assert (status.state, status.step, status.reason) == ("done", "config", "")
    state = session.state()

    # The workflow is clean by the pipeline's report and by our own validation of the stored YAML.
    assert state["reports"]["workflow"].ok and state["workflow_attempts"] == 1
    ours = validate_text(state["workflow"].yaml, lab, source="final.yaml")
    assert ours.ok, [d.message for d in ours.errors]
    assert state["workflow"].yaml == draft_to_workflow(pcr_workflow()).to_yaml()
    ot2 = [s for s in state["workflow"].workflow.flowdef if (s.module, s.action) == ("ot2_pcr", "run_protocol")]
    assert len(ot2) == 1 and ot2[0].files == {"protocol": PROTOCOL_PATH}

    # That step's protocol file made the config step write exactly one config, for that path and module.
    (config_file,) = state["config"].files
    assert (config_file.path, config_file.module) == (PROTOCOL_PATH, "ot2_pcr")
    assert ProtocolConfig.model_validate(yaml.safe_load(config_file.content)) == PROTOCOL
    (config_request,) = requests_for(server, "config")
    assert PROTOCOL_PATH in last_user_text(config_request) and "ot2_pcr.run_protocol" in last_user_text(config_request)
    assert state["reports"]["plan"].ok and state["reports"]["code"].ok and state["reports"]["config"].ok

    # One request per task, each the real ChatOpenAI's: tools forced for structured output, logprobs for feasibility.
    assert [task_of(r) for r in server.requests] == [
        "feasibility",
        "plan",
        "shortlist",
        "workflow",
        "tests",
        "code",
        "config",
    ]
    feasibility = server.requests[0].body
    assert feasibility["logprobs"] is True and feasibility["top_logprobs"] == 5
    for request in server.requests[1:]:
        assert request.body["tool_choice"]["type"] == "function" and request.body["stream"] is False
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer not-needed"}
    assert server.unused() == []

    history = session.get_history()
    assert set(history) >= V2_HISTORY_KEYS
    assert history["version"] and history["session_id"] == session.session_id
    assert history["timestamp"] > time.time() - 60
    assert history["validity"] == pytest.approx(P_YES)
    assert history["original_user_description"] == DESCRIPTION
    assert yaml.safe_load(history["original_user_values"]) == yaml.safe_load(VALUES)
    for agent in ("framework", "workflow", "code", "config"):
        assert history[f"generated_{agent}"].strip(), agent
        ctx = history[f"{agent}_agent_ctx"]
        assert ctx and {t["role"] for t in ctx} == {"user", "assistant"} and all(t["content"] for t in ctx), agent
    assert Plan.model_validate_json(history["generated_framework"]) == pcr_plan()
    assert history["generated_workflow"] == state["workflow"].yaml
    assert history["generated_code"] == SCRIPT
    assert set(yaml.safe_load(history["generated_config"])) == {PROTOCOL_PATH}
    assert history["wei_gen"]["feasibility"]["method"] == "logprobs"
    assert history["wei_gen"]["usage"]["write_workflow"]["prompt_tokens"] > 0  # the server's usage reached us
    text = json.dumps(history)
    assert "not-needed" not in text and "Bearer" not in text and "sk-" not in text

    assert app.list_sessions() == [session.session_id]
    assert_intact(app, tmp_path, session.session_id)


def test_pcr_session_streamed_over_sse(app: WEIGen, server: ScriptedOpenAI, lab: Lab) -> None:
    # stream_mode="messages" makes every model call of a node stream: ChatOpenAI switches to SSE (stream: true).
    server.add(*pcr_rules())
    session = app.new_session()
    inputs = {"entry": "start", "description": DESCRIPTION, "values": VALUES, "stop_after": None}
    chunks, nodes = 0, []
    for mode, event in app.graph.stream(
        inputs, session.config, context=app.context, stream_mode=["messages", "updates"]
    ):
        if mode == "messages":
            chunks += 1
        else:
            nodes += list(event)
    assert session.status.state == "done", session.status
    assert chunks > 6
    assert nodes[:3] == ["prepare_run", "check_feasibility", "make_plan"] and nodes[-1] == "finish"
    chat = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(chat) == 7 and all(r.body["stream"] is True for r in chat)
    state = session.state()
    assert state["feasibility"].method == "logprobs" and state["feasibility"].p_yes == pytest.approx(P_YES)
    assert validate_text(state["workflow"].yaml, lab).ok and state["code"].script == SCRIPT
    assert [f.path for f in state["config"].files] == [PROTOCOL_PATH]
    assert session.get_history()["validity"] == pytest.approx(P_YES)

    # The session API's own stream() yields node updates only: its model calls are not streamed.
    updates = list(session.stream(entry="code", stop_after="code"))
    assert [node for update in updates for node in update] == [
        "prepare_run",
        "design_tests",
        "write_code",
        "check_code",
        "finish",
    ]
    assert server.requests[-1].body["stream"] is False and session.status.state == "done"


# -- 2./3. the workflow validation retry edge ------------------------------------------------------------------------


def test_validator_feedback_fixes_the_workflow_on_the_second_attempt(app: WEIGen, server: ScriptedOpenAI) -> None:
    server.add(*pcr_rules(workflow=[pcr_workflow(action_of_peel=BAD_ACTION), pcr_workflow()]))
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    state = session.state()
    assert state["workflow_attempts"] == 2 and state["reports"]["workflow"].ok
    versions = [v for v in state["versions"] if v.agent == "workflow"]
    assert [(v.number, v.origin, v.ok) for v in versions] == [(1, "generated", False), (2, "generated", True)]
    assert f"action: {BAD_ACTION}" in versions[0].content and f"action: {BAD_ACTION}" not in versions[1].content

    first, second = requests_for(server, "workflow")
    assert len(first.body["messages"]) == 2 and BAD_ACTION not in json.dumps(first.body["messages"])
    feedback = last_user_text(second)
    assert f"module 'peeler' has no action '{BAD_ACTION}'" in feedback  # the validator's message, sent back
    assert "step 12 'Peel'" in feedback and "failed validation" in feedback
    assert f"action: {BAD_ACTION}" in feedback  # with the workflow it wrote
    assert session.get_history()["generated_workflow"] == versions[1].content


def test_a_model_that_never_fixes_the_workflow_fails_at_the_bound(server: ScriptedOpenAI, tmp_path: Path) -> None:
    server.add(*pcr_rules(workflow=[pcr_workflow(action_of_peel=BAD_ACTION)]))
    with make_app(server, tmp_path, max_workflow_attempts=2) as app:
        session = app.new_session()
        status = session.execute_experiment(DESCRIPTION, VALUES)  # no exception
        assert (status.state, status.step) == ("failed", "check_workflow")
        assert "after 2 attempt(s)" in status.reason and f"no action '{BAD_ACTION}'" in status.reason
        state = session.state()
        report = state["reports"]["workflow"]
        assert not report.ok and report.codes("error") == ["unknown-action"]
        assert state["workflow_attempts"] == 2 and len(requests_for(server, "workflow")) == 2
        assert requests_for(server, "code") == [] and state.get("code") is None
        assert [v.ok for v in state["versions"] if v.agent == "workflow"] == [False, False]
        history = assert_intact(app, tmp_path, session.session_id)
        assert history["wei_gen"]["status"]["state"] == "failed"
        assert history["wei_gen"]["reports"]["workflow"]["diagnostics"][0]["code"] == "unknown-action"
        assert f"action: {BAD_ACTION}" in history["generated_workflow"]


# -- 4. infeasible experiments ---------------------------------------------------------------------------------------


def test_infeasible_experiment_names_the_missing_capability(
    app: WEIGen, server: ScriptedOpenAI, tmp_path: Path
) -> None:
    explanation = Infeasibility(missing_capability=MISSING, reason="The lab has no instrument that spins plates.")
    server.add(
        rule(explanation, name="Infeasibility", contains="<task>feasibility-explanation</task>"),
        *pcr_rules(feasibility=[feasibility_answer(0.2)]),
    )
    session = app.new_session()
    status = session.execute_experiment(INFEASIBLE_DESCRIPTION, "speed_rpm: 4000")
    assert (status.state, status.step) == ("infeasible", "check_feasibility")
    assert MISSING in status.reason and "P(yes) = 0.20" in status.reason
    assert [task_of(r) for r in server.requests] == ["feasibility", "feasibility-explanation"]
    assert session.state().get("plan") is None and requests_for(server, "plan") == []

    history = assert_intact(app, tmp_path, session.session_id)
    assert history["validity"] == pytest.approx(0.2)
    assert history["generated_framework"] == "" and history["generated_workflow"] == ""
    verdict = history["wei_gen"]["feasibility"]
    assert verdict["method"] == "logprobs" and verdict["missing_capability"] == MISSING and not verdict["feasible"]
    assert history["framework_agent_ctx"][-1]["content"].startswith("feasible: False (P(yes) = 0.20) The lab has no")


def test_server_without_logprobs_gets_a_structured_verdict(app: WEIGen, server: ScriptedOpenAI) -> None:
    verdict = FeasibilityVerdict(
        feasible=False, confidence=0.8, missing_capability=MISSING, reason="Nothing in the lab spins plates."
    )
    server.add(
        rule(verdict, name="FeasibilityVerdict", contains="<task>feasibility-verdict</task>"),
        *pcr_rules(feasibility=[Reply.text("no", ignore_logprobs=True)]),
    )
    session = app.new_session()
    status = session.execute_experiment(INFEASIBLE_DESCRIPTION, "speed_rpm: 4000")
    assert status.state == "infeasible" and MISSING in status.reason
    first, fallback = server.requests
    assert first.body["logprobs"] is True and task_of(fallback) == "feasibility-verdict"
    assert fallback.body["tool_choice"]["function"]["name"] == "FeasibilityVerdict"
    state = session.state()
    assert state["feasibility"].method == "structured" and state["feasibility"].p_yes == pytest.approx(0.2)
    assert state.get("plan") is None  # and no explanation call: the verdict already named the missing capability
    assert session.get_history()["validity"] == pytest.approx(0.2)


def test_structured_verdict_feasible_goes_on_to_plan(app: WEIGen, server: ScriptedOpenAI) -> None:
    verdict = FeasibilityVerdict(feasible=True, confidence=0.75)
    server.add(
        rule(verdict, name="FeasibilityVerdict", contains="<task>feasibility-verdict</task>"),
        *pcr_rules(feasibility=[Reply.text("yes", ignore_logprobs=True)]),
    )
    session = app.new_session()
    assert session.framework_step(DESCRIPTION, VALUES).state == "done"
    state = session.state()
    assert state["feasibility"].method == "structured" and state["feasibility"].p_yes == pytest.approx(0.75)
    assert state["plan"] == pcr_plan() and state["reports"]["plan"].ok
    assert [task_of(r) for r in server.requests] == ["feasibility", "feasibility-verdict", "plan"]


# -- 5. transport faults and malformed answers -----------------------------------------------------------------------


def test_rate_limit_is_retried_by_the_node_policy(app: WEIGen, server: ScriptedOpenAI, tmp_path: Path) -> None:
    server.add(*pcr_rules(plan=[Reply.error(429, "Rate limit reached, slow down", retry_after=0.01), pcr_plan()]))
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    first, second = requests_for(server, "plan")
    assert first.rule is not None and second.body == first.body  # the same call again, not a feedback retry
    state = session.state()
    assert state["plan_attempts"] == 1 and state["plan"] == pcr_plan()
    assert state["usage"]["make_plan"].calls == 1  # the failed attempt's update is discarded
    assert len(server.requests) == 8
    assert_intact(app, tmp_path, session.session_id)


def test_a_rate_limit_asking_for_a_long_wait_is_waited_for(app: WEIGen, server: ScriptedOpenAI) -> None:
    """Retry-After longer than the policy's first backoff (0.5 s): the next request comes after it, not before."""
    wait = 1.5
    server.add(*pcr_rules(plan=[Reply.error(429, "Rate limit reached, slow down", retry_after=wait), pcr_plan()]))
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    first, second = requests_for(server, "plan")
    assert second.at - first.at >= wait, "the client asked again before the provider's Retry-After had passed"


def test_timeout_fails_the_step_and_the_step_method_resumes(server: ScriptedOpenAI, tmp_path: Path) -> None:
    late = Reply.data(ScriptDraft(script=SCRIPT), delay=30)  # cut short when the server closes
    server.add(*pcr_rules(code=[late, late, late, ScriptDraft(script=SCRIPT)]))
    with make_app(server, tmp_path, request_timeout=0.5) as app:
        session = app.new_session()
        status = session.execute_experiment(DESCRIPTION, VALUES)  # no exception
        assert (status.state, status.step) == ("failed", "write_code")
        assert "timeout" in status.reason.lower() or "timed out" in status.reason.lower()
        assert len(requests_for(server, "code")) == 3 and requests_for(server, "config") == []
        state = session.state()
        assert state.get("code") is None and state["reports"]["workflow"].ok  # everything before the failure is kept
        sid = session.session_id
        history = assert_intact(app, tmp_path, sid)
        assert history["generated_workflow"] and history["generated_code"] == ""
        assert history["wei_gen"]["status"]["step"] == "write_code"

    # Another process, the server answering promptly now: the same step method picks the session up again.
    with make_app(server, tmp_path, request_timeout=0.5) as app:
        session = app.load_session(sid)
        assert session.code_step().state == "done"
        assert session.config_step().state == "done"
        state = session.state()
        assert state["code"].script == SCRIPT and [f.path for f in state["config"].files] == [PROTOCOL_PATH]
        assert len(requests_for(server, "code")) == 4 and len(requests_for(server, "plan")) == 1
        assert session.get_history()["generated_code"] == SCRIPT


def test_non_transient_error_is_not_retried(app: WEIGen, server: ScriptedOpenAI, tmp_path: Path) -> None:
    server.add(*pcr_rules(plan=[Reply.error(401, "Incorrect API key provided")]))
    session = app.new_session()
    status = session.execute_experiment(DESCRIPTION, VALUES)
    assert (status.state, status.step) == ("failed", "make_plan")
    assert "AuthenticationError" in status.reason and "Incorrect API key" in status.reason
    assert len(requests_for(server, "plan")) == 1 and requests_for(server, "shortlist") == []
    history = assert_intact(app, tmp_path, session.session_id)
    assert history["validity"] == pytest.approx(P_YES) and history["generated_framework"] == ""


def test_malformed_json_plan_takes_the_plan_retry_edge(app: WEIGen, server: ScriptedOpenAI, tmp_path: Path) -> None:
    server.add(*pcr_rules(plan=[Reply.raw("{not json"), pcr_plan()]))
    session = app.new_session()
    status = session.execute_experiment(DESCRIPTION, VALUES)
    assert status.state == "done", status
    state = session.state()
    assert state["plan_attempts"] == 2 and state["plan"] == pcr_plan() and state["reports"]["plan"].ok
    assert [v.ok for v in state["versions"] if v.agent == "framework"] == [True]  # garbage is no version
    assert len(requests_for(server, "plan")) == 2
    contexts = state["contexts"]["framework"]
    assert any("not valid JSON" in t.content and "{not json" in t.content for t in contexts if t.role == "assistant")
    assert_intact(app, tmp_path, session.session_id)


# -- 6. chat refinement and user edits -------------------------------------------------------------------------------


def test_chat_refinement_and_user_edits_of_the_workflow(app: WEIGen, server: ScriptedOpenAI, lab: Lab) -> None:
    peeled = draft_to_workflow(pcr_workflow()).to_yaml()
    answer = f"Sure: the plate now goes through the peeler before the camera.\n\n```yaml\n{peeled}```\n"
    server.add(
        rule(answer, contains="<task>refine-workflow</task>"),
        *pcr_rules(workflow=[pcr_workflow(peel=False)]),
    )
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    before = session.state()["workflow"].yaml
    assert "module: peeler" not in before and validate_text(before, lab).ok

    reply = session.call_gen_env("workflow", "use the peeler before imaging")
    assert reply == answer
    (chat,) = requests_for(server, "refine-workflow")
    assert "tools" not in chat.body  # a plain chat call
    assert before in chat.body["messages"][0]["content"]  # the current workflow is in the prompt
    assert "<user_message>\nuse the peeler before imaging\n</user_message>" in last_user_text(chat)
    state = session.state()
    assert state["workflow"].yaml == peeled and "module: peeler" in peeled
    latest = [v for v in state["versions"] if v.agent == "workflow"][-1]
    assert (latest.number, latest.origin, latest.ok, latest.content) == (2, "chat", True, peeled)
    assert state["reports"]["workflow"].ok and validate_text(peeled, lab).ok
    history = session.get_history()
    assert history["generated_workflow"] == peeled
    assert history["wei_gen"]["stale"] == ["code", "config"]
    assert history["workflow_agent_ctx"][-2:] == [
        {"role": "user", "content": "use the peeler before imaging"},
        {"role": "assistant", "content": answer},
    ]

    # A user edit naming a module the lab does not have: stored as a version, with the validator's verdict.
    edited = peeled.replace("module: camera", "module: microscope")
    session.modify_generated_data("workflow", edited)
    state = session.state()
    latest = [v for v in state["versions"] if v.agent == "workflow"][-1]
    assert (latest.number, latest.origin, latest.ok) == (3, "edit", False)
    assert "unknown-module" in state["reports"]["workflow"].codes("error")
    assert state["workflow"].yaml == edited and session.get_history()["generated_workflow"] == edited

    # Text that is not a workflow at all is refused; the current workflow stays.
    with pytest.raises(WEIGenError, match="workflow edit was not accepted"):
        session.modify_generated_data("workflow", "not: [valid")
    state = session.state()
    assert state["workflow"].yaml == edited and len([v for v in state["versions"] if v.agent == "workflow"]) == 3
    assert session.get_history()["generated_workflow"] == edited
    assert len(requests_for(server, "refine-workflow")) == 1  # edits never call a model


# -- 7. bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("description", ["", "   \n\t "])
def test_empty_description_is_refused_before_any_call(app: WEIGen, server: ScriptedOpenAI, description: str) -> None:
    session = app.new_session()
    with pytest.raises(WEIGenError, match="description is empty"):
        session.execute_experiment(description, VALUES)
    with pytest.raises(WEIGenError, match="description is empty"):
        session.framework_step(description)
    assert server.requests == [] and app.list_sessions() == []


def test_unknown_agent_and_bad_session_ids_are_refused(app: WEIGen, server: ScriptedOpenAI) -> None:
    server.add(*pcr_rules())
    session = app.new_session()
    assert session.framework_step(DESCRIPTION, VALUES).state == "done"
    calls = len(server.requests)
    for agent in ("planner", "Workflow", ""):
        with pytest.raises(WEIGenError, match="unknown agent"):
            session.call_gen_env(agent, "make it faster")
        with pytest.raises(WEIGenError, match="unknown agent"):
            session.modify_generated_data(agent, "{}")
    assert len(server.requests) == calls and session.status.state == "done"

    with pytest.raises(SessionNotFoundError, match="no session 'nope'"):
        app.load_session("nope")
    for bad in ("../../etc", "a/b", ".hidden", "x" * 65, ""):
        with pytest.raises(WEIGenError, match="invalid session id") as info:
            app.load_session(bad)
        assert not isinstance(info.value, SessionNotFoundError)
    with pytest.raises(WEIGenError, match="already exists"):
        app.new_session(session.session_id)
    assert app.list_sessions() == [session.session_id]


def test_malformed_config_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "wei_gen.yaml"
    path.write_text("settings:\n  framework_model: gpt-4o\n  workflow_model: [gpt-4o\n  code_model: gpt-4o\n")
    with pytest.raises(ConfigError) as info:
        WEIGen(config_path=path, data_dir=tmp_path)
    assert info.value.source == str(path) and info.value.line is not None and info.value.line >= 3
    assert str(info.value).startswith(f"{path}:{info.value.line}")


def test_api_key_from_the_config_file_is_sent_but_never_stored(server: ScriptedOpenAI, tmp_path: Path) -> None:
    secret = "sk-proj-WEIGENTEST0123456789abcdefSECRET"
    path = tmp_path / "wei_gen.yaml"
    settings = all_agents("openai:scripted")
    settings |= {"base_url": server.base_url, "lab_dir": str(LAB_DIR), "request_timeout": 5}
    path.write_text(
        yaml.safe_dump({"api_keys": {"openai": {"key": secret, "org": "org-weigentest"}}, "settings": settings})
    )
    server.add(*pcr_rules())
    data_dir = tmp_path / "data"
    with WEIGen(config_path=path, data_dir=data_dir) as app:
        assert secret not in repr(app.config) and secret not in repr(app.context)
        session = app.new_session()
        assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
        history = session.get_history()
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {secret}"}
    assert {r.headers.get("openai-organization") for r in server.requests} == {"org-weigentest"}
    assert secret not in json.dumps(history) and "org-weigentest" not in json.dumps(history)
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert stored and secret.encode() not in stored


# -- bugs these tests found -------------------------------------------------------------------------------------------


def test_plan_retry_after_an_unreadable_answer_says_why(app: WEIGen, server: ScriptedOpenAI) -> None:
    # Found by this file: after an unreadable plan the retry used to resend the very same request, no feedback.
    server.add(*pcr_rules(plan=[Reply.raw("{not json"), pcr_plan()]))
    assert app.new_session().execute_experiment(DESCRIPTION, VALUES).state == "done"
    first, second = requests_for(server, "plan")
    assert second.body["messages"][: len(first.body["messages"])] == first.body["messages"]
    assert "not valid JSON" in last_user_text(second) and "{not json" in last_user_text(second)


def test_status_after_chat_and_edit_is_not_left_running(app: WEIGen, server: ScriptedOpenAI) -> None:
    # Found by this file: refine_artifact and apply_edit used to end the run with status "running" forever.
    server.add(rule("No change needed.", contains="<task>refine-workflow</task>"), *pcr_rules())
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    assert session.call_gen_env("workflow", "is the seal temperature right?") == "No change needed."
    assert session.status.state != "running", session.status
    session.modify_generated_data("workflow", session.state()["workflow"].yaml)
    assert session.status.state != "running", session.status
    assert session.get_history()["wei_gen"]["status"]["state"] != "running"


def test_a_new_experiment_in_a_session_does_not_keep_the_old_artifacts(app: WEIGen, server: ScriptedOpenAI) -> None:
    # Found by this file: a second execute_experiment that stopped early served the first one's artifacts.
    explanation = Infeasibility(missing_capability=MISSING, reason="No centrifuge.")
    server.add(
        rule(explanation, name="Infeasibility"),
        *pcr_rules(feasibility=[feasibility_answer(P_YES), feasibility_answer(0.1)]),
    )
    session = app.new_session()
    assert session.execute_experiment(DESCRIPTION, VALUES).state == "done"
    assert session.execute_experiment(INFEASIBLE_DESCRIPTION, "speed_rpm: 4000").state == "infeasible"
    history = session.get_history()
    assert history["original_user_description"] == INFEASIBLE_DESCRIPTION
    assert history["validity"] == pytest.approx(0.1)
    for agent in ("framework", "workflow", "code", "config"):
        assert history[f"generated_{agent}"] == "" or agent in history["wei_gen"]["stale"], agent


def test_streamed_run_records_token_usage(app: WEIGen, server: ScriptedOpenAI) -> None:
    # Found by this file: ChatOpenAI with a base_url streamed without stream_options.include_usage (0 tokens).
    server.add(*pcr_rules())
    session = app.new_session()
    inputs = {"entry": "start", "description": DESCRIPTION, "values": VALUES, "stop_after": "plan"}
    for _ in app.graph.stream(inputs, session.config, context=app.context, stream_mode="messages"):
        pass
    assert session.status.state == "done"
    assert session.state()["usage"]["make_plan"].prompt_tokens > 0
