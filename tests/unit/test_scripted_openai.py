"""The scripted OpenAI server driven by the real ChatOpenAI (no mocks): shapes, streaming, structured output, faults."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Literal

import httpx
import openai
import pydantic
import pytest
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from pydantic import BaseModel

from tests.support.scripted_openai import NO_MATCH, Reply, ScriptedOpenAI, rule

# langchain-openai model_dumps the SDK's ParsedChatCompletion[Model]; pydantic warns about the generic `parsed` field.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

YES_NO = ("yes", [("yes", -0.105), (" Yes", -2.5), ("no", -3.0), ("maybe", -5.0), ("No", -6.0), ("x", -9.0)])


class Step(BaseModel):
    module: str
    action: str
    args: dict[str, int] = {}


class Verdict(BaseModel):
    feasible: bool
    reason: str


STEP = {"module": "sealer", "action": "seal", "args": {"time": 3}}


@pytest.fixture
def srv() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI() as server:
        yield server


def _aggregate(chunks: Iterable[BaseMessage]) -> AIMessageChunk:
    parts = list(chunks)
    assert len(parts) > 2, "expected a real multi-chunk stream"
    chunks_ = [p for p in parts if isinstance(p, AIMessageChunk)]
    assert len(chunks_) == len(parts), "stream() must yield AIMessageChunks"
    total = chunks_[0]
    for part in chunks_[1:]:
        total += part
    return total


def test_plain_text_and_request_recording(srv: ScriptedOpenAI) -> None:
    srv.add(rule("Hello, scientist."))
    msg = srv.chat_model(temperature=0.3).invoke("hi")
    assert isinstance(msg, AIMessage)
    assert msg.content == "Hello, scientist."
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.usage_metadata is not None and msg.usage_metadata["output_tokens"] == 5  # 17 chars / 4, rounded up
    (req,) = srv.requests
    assert (req.method, req.path, req.rule) == ("POST", "/v1/chat/completions", "Rule(1/1)")
    assert req.body["temperature"] == 0.3 and req.body["stream"] is False
    assert req.body["messages"] == [{"role": "user", "content": "hi"}]
    assert req.headers["authorization"] == "Bearer sk-test"


def test_models_endpoint_and_unknown_path(srv: ScriptedOpenAI) -> None:
    assert httpx.get(f"{srv.base_url}/models").json()["data"][0]["id"] == "scripted"
    missing = httpx.post(f"{srv.base_url}/embeddings", json={"input": "x"})
    assert missing.status_code == 404 and "unknown endpoint" in missing.json()["error"]["message"]
    assert [r.path for r in srv.requests] == ["/v1/models", "/v1/embeddings"]


def test_logprobs_invoke(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.text("yes", logprobs=YES_NO)))
    msg = srv.chat_model().bind(logprobs=True, top_logprobs=5).invoke("Is it feasible?")
    first = msg.response_metadata["logprobs"]["content"][0]
    assert (first["token"], first["logprob"], first["bytes"]) == ("yes", -0.105, [121, 101, 115])
    assert [t["token"] for t in first["top_logprobs"]] == ["yes", " Yes", "no", "maybe", "No"]  # cut to 5
    assert srv.requests[0].body["logprobs"] is True and srv.requests[0].body["top_logprobs"] == 5


def test_logprobs_only_when_requested(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.text("yes", logprobs=YES_NO), "no logprobs scripted"))
    assert srv.chat_model().invoke("q").response_metadata.get("logprobs") is None
    msg = srv.chat_model(logprobs=True, top_logprobs=2).invoke("q")
    assert msg.response_metadata["logprobs"]["content"][0]["top_logprobs"] == [
        {"token": "no", "logprob": 0.0, "bytes": [110, 111]}
    ]


def test_stream_text_aggregates_with_logprobs_and_usage(srv: ScriptedOpenAI) -> None:
    text = "yes, the plate fits the reader"
    srv.add(rule(Reply.text(text, logprobs=YES_NO, usage=(40, 7)), repeat=True))
    plain = _aggregate(srv.chat_model().stream("q"))
    assert plain.content == text and plain.response_metadata["finish_reason"] == "stop"
    total = _aggregate(srv.chat_model(stream_usage=True).bind(logprobs=True, top_logprobs=3).stream("q"))
    assert total.content == text
    assert total.response_metadata["logprobs"]["content"][0]["top_logprobs"][1]["token"] == " Yes"
    assert total.usage_metadata is not None and total.usage_metadata["input_tokens"] == 40
    assert srv.requests[1].body["stream"] is True and srv.requests[1].body["stream_options"] == {"include_usage": True}


def test_structured_output_json_schema_default(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.data(Step.model_validate(STEP)), name="Step"))
    out = srv.chat_model().with_structured_output(Step).invoke("seal the plate")
    assert out == Step.model_validate(STEP)
    fmt = srv.requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Step" and fmt["json_schema"]["strict"]


def test_structured_output_function_calling(srv: ScriptedOpenAI) -> None:
    srv.add(rule(STEP, name="Step"))
    out = srv.chat_model().with_structured_output(Step, method="function_calling").invoke("seal the plate")
    assert out == Step.model_validate(STEP)
    body = srv.requests[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Step"}}
    assert [t["function"]["name"] for t in body["tools"]] == ["Step"]


@pytest.mark.parametrize("method", ["json_schema", "function_calling", "json_mode"])
def test_structured_output_streamed(
    srv: ScriptedOpenAI, method: Literal["json_schema", "function_calling", "json_mode"]
) -> None:
    srv.add(rule(STEP, when=lambda body: body.get("stream") is True))
    structured = srv.chat_model().with_structured_output(Step if method != "json_mode" else None, method=method)
    parts = list(structured.stream("seal the plate"))
    final = parts[-1]
    assert (final if isinstance(final, dict) else final.model_dump()) == STEP


def test_invoke_switched_to_streaming_like_langgraph_messages_mode(srv: ScriptedOpenAI) -> None:
    # LangGraph stream_mode="messages" makes a node's invoke() stream; streaming=True takes the same path.
    srv.add(rule(STEP, name="Step", repeat=True), rule("plain answer"))
    llm = srv.chat_model(streaming=True)
    assert llm.with_structured_output(Step, method="function_calling").invoke("x") == Step.model_validate(STEP)
    assert llm.with_structured_output(Step).invoke("x") == Step.model_validate(STEP)
    assert llm.invoke("x").content == "plain answer"
    assert [r.body["stream"] for r in srv.requests] == [True, True, True]


def test_bind_tools_streamed_arguments_aggregate(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.data(STEP, tool_name="Step")))
    total = _aggregate(srv.chat_model().bind_tools([Verdict, Step]).stream("plan"))
    assert total.content == ""
    assert [(c["name"], c["args"]) for c in total.tool_calls] == [("Step", STEP)]
    assert total.response_metadata["finish_reason"] == "tool_calls"
    assert "tool_choice" not in srv.requests[0].body


def test_include_raw_reports_bad_replies_for_json_mode_and_function_calling(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.raw('{"feasible": tru'), Reply.data({"feasible": "perhaps"}), Reply.raw("not json at all")))
    llm = srv.chat_model()
    out = llm.with_structured_output(Verdict, method="json_mode", include_raw=True).invoke("judge, answer in JSON")
    assert isinstance(out, dict) and out["parsed"] is None and isinstance(out["parsing_error"], OutputParserException)
    out = llm.with_structured_output(Verdict, method="function_calling", include_raw=True).invoke("judge")
    assert out["parsed"] is None and isinstance(out["parsing_error"], pydantic.ValidationError)  # schema-invalid args
    # Arguments that are not JSON at all land in `invalid_tool_calls`: no parsed value, but no parsing_error either.
    out = llm.with_structured_output(Verdict, method="function_calling", include_raw=True).invoke("judge")
    assert out["parsed"] is None and out["parsing_error"] is None
    assert out["raw"].invalid_tool_calls[0]["args"] == "not json at all"


def test_json_schema_bad_reply_raises_even_with_include_raw(srv: ScriptedOpenAI) -> None:
    # The openai SDK parses json_schema replies inside the model call, before include_raw's fallback can see them.
    srv.add(rule(Reply.raw('{"feasible": tru'), Reply.data({"feasible": "perhaps"}), name="Verdict"))
    judge = srv.chat_model().with_structured_output(Verdict, include_raw=True)
    with pytest.raises(pydantic.ValidationError, match="json_invalid"):
        judge.invoke("judge")
    with pytest.raises(pydantic.ValidationError, match="reason"):
        judge.invoke("judge")


def test_rate_limit_then_success_is_retried(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.error(429, "slow down", retry_after=0.01), "done"))
    start = time.monotonic()
    assert srv.chat_model(max_retries=1).invoke("go").content == "done"
    assert time.monotonic() - start < 1.0
    assert len(srv.requests) == 2 and srv.requests[1].headers["x-stainless-retry-count"] == "1"


def test_server_error_raises_without_retries(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.error(500, "boom")))
    with pytest.raises(openai.InternalServerError, match="boom"):
        srv.chat_model().invoke("go")


def test_delay_beyond_client_timeout_raises_quickly(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.text("late", delay=10)))
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        srv.chat_model(timeout=0.5).invoke("go")
    assert time.monotonic() - start < 2.0


def test_dropped_connection_raises_connection_error(srv: ScriptedOpenAI) -> None:
    srv.add(rule(Reply.drop()))
    with pytest.raises(openai.APIConnectionError):
        srv.chat_model().invoke("go")


def test_rules_match_by_schema_name_substring_and_callable(srv: ScriptedOpenAI) -> None:
    srv.add(
        rule({"feasible": True, "reason": "ok"}, name="Verdict", repeat=True),
        rule("feasibility text", contains="<task>feasibility</task>"),
        rule("hot", when=lambda body: body.get("temperature", 0) > 1),
        rule("fallback", repeat=True),
    )
    llm = srv.chat_model(temperature=0)
    judge = llm.with_structured_output(Verdict)
    assert judge.invoke("<task>feasibility</task>") == Verdict(feasible=True, reason="ok")  # name rule comes first
    assert llm.invoke([("system", "You judge."), ("user", "<task>feasibility</task> plate")]).content == (
        "feasibility text"
    )
    assert llm.invoke("<task>feasibility</task>").content == "fallback"  # substring rule used up
    assert srv.chat_model(temperature=1.5).invoke("x").content == "hot"
    assert judge.invoke("again") == Verdict(feasible=True, reason="ok")  # repeat
    assert srv.unused() == []


def test_unmatched_request_is_a_clear_error_and_recorded(srv: ScriptedOpenAI) -> None:
    srv.add(rule("only for planning", contains="<task>plan</task>"))
    with pytest.raises(openai.InternalServerError) as info:
        srv.chat_model(max_retries=2).with_structured_output(Verdict).invoke("<task>judge</task> is it ok?")
    message = str(info.value)
    assert NO_MATCH in message and "Verdict" in message and "<task>judge</task>" in message
    assert len(srv.requests) == 1 and srv.requests[0].rule is None  # x-should-retry: false stops SDK retries


def test_latency_is_added_to_every_reply() -> None:
    with ScriptedOpenAI([rule("a", repeat=True)], latency=0.1) as srv:
        start = time.monotonic()
        srv.chat_model().invoke("x")
        srv.chat_model().invoke("y")
        assert time.monotonic() - start >= 0.2


def test_close_leaves_no_threads_or_port() -> None:
    before = set(threading.enumerate())
    srv = ScriptedOpenAI([rule(Reply.text("never", delay=30))]).start()
    port = int(srv.base_url.split(":")[2].split("/")[0])
    with pytest.raises(openai.APITimeoutError):
        srv.chat_model(timeout=0.2).invoke("x")
    start = time.monotonic()
    srv.close()
    assert time.monotonic() - start < 1.0  # the delayed handler is woken, not waited for
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass
    with pytest.raises(RuntimeError):
        _ = srv.base_url
