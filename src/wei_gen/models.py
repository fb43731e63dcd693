"""Chat models: ``provider:model`` strings to LangChain chat models, structured calls, usage, transient errors.

Models are built with ``max_retries=0``: retrying transient failures (429, 5xx, timeouts) is the graph's job (a
per-node retry policy), so that it is visible and bounded in one place. Tests register scripted models by name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import openai
from langchain.chat_models import init_chat_model
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel, ValidationError

from wei_gen.context import Context, credentials
from wei_gen.state import Usage

T = TypeVar("T", bound=BaseModel)

_REGISTERED: dict[str, BaseChatModel] = {}


class ModelSetupError(Exception):
    """A model cannot be built (unknown provider, no API key): not transient, not retried."""


def register_model(spec: str, model: BaseChatModel) -> None:
    """Serve ``spec`` from this model instance (tests, embedding wei-gen in another app)."""
    _REGISTERED[spec] = model


def unregister_models() -> None:
    """Forget every registered model."""
    _REGISTERED.clear()


def load_chat_model(spec: str, context: Context) -> BaseChatModel:
    """Build the chat model for ``provider:model`` with the run's temperature, timeout and endpoint."""
    if spec in _REGISTERED:
        return _REGISTERED[spec]
    provider, sep, name = spec.partition(":")
    if not sep or not provider or not name:
        raise ModelSetupError(f"model '{spec}' must be written provider:model, e.g. openai:gpt-4o")
    kwargs: dict[str, Any] = {
        "temperature": context.temperature,
        "timeout": context.request_timeout,
        "max_retries": 0,
        **context.model_kwargs,
    }
    if provider == "openai":
        creds = credentials()
        if context.base_url:
            kwargs["base_url"] = context.base_url
        if creds.openai_api_key:
            kwargs["api_key"] = creds.openai_api_key
        elif context.base_url:
            kwargs["api_key"] = "not-needed"  # local OpenAI-compatible servers (vLLM, Ollama) ignore the key
        else:
            raise ModelSetupError(
                "no OpenAI API key: set OPENAI_API_KEY (or api_keys.openai.key in the config), or point "
                "OPENAI_BASE_URL / settings.base_url at an OpenAI-compatible server"
            )
        if creds.openai_organization:
            kwargs["organization"] = creds.openai_organization
        # Streamed calls (LangGraph's "messages" mode) report tokens only when usage is asked for.
        kwargs.setdefault("stream_usage", True)
    try:
        model: BaseChatModel = init_chat_model(spec, **kwargs)
    except (ImportError, ValueError) as exc:
        raise ModelSetupError(f"cannot build model '{spec}': {exc}") from None
    return model


def is_transient(exc: BaseException) -> bool:
    """Whether a model error is worth retrying: rate limits, server errors, timeouts, dropped connections."""
    transient = (
        openai.RateLimitError,
        openai.APITimeoutError,
        openai.APIConnectionError,
        openai.InternalServerError,
        httpx.TimeoutException,
        httpx.TransportError,
        TimeoutError,
    )
    if isinstance(exc, transient):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def usage_of(message: BaseMessage | None, prompt: Sequence[BaseMessage]) -> Usage:
    """Usage of one call: tokens as the provider reports them, characters as we sent them."""
    chars = sum(len(m.content) if isinstance(m.content, str) else len(json.dumps(m.content)) for m in prompt)
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(
        calls=1,
        prompt_tokens=int(meta.get("input_tokens", 0)),
        completion_tokens=int(meta.get("output_tokens", 0)),
        prompt_chars=chars,
    )


@dataclass
class Structured(Generic[T]):
    """The outcome of a structured call: the parsed object or why there is none, plus the raw answer."""

    value: T | None
    error: str
    raw: AIMessage | None
    usage: Usage


def call_structured(model: BaseChatModel, schema: type[T], messages: list[BaseMessage]) -> Structured[T]:
    """Ask for ``schema`` through tool calling; an unparsable answer is returned as an error, not raised.

    Tool calling (not strict json_schema) because free-form values travel as JSON text and every OpenAI-compatible
    server we target supports tools. Transport errors are raised for the node's retry policy.
    """
    runnable = model.with_structured_output(schema, method="function_calling", include_raw=True)
    try:
        out = runnable.invoke(messages)
    except (ValidationError, OutputParserException) as exc:
        error = f"the answer did not match the {schema.__name__} schema: {_short(exc)}"
        return Structured(None, error, None, usage_of(None, messages))
    raw = out.get("raw") if isinstance(out, dict) else None
    raw_msg = raw if isinstance(raw, AIMessage) else None
    usage = usage_of(raw_msg, messages)
    parsed = out.get("parsed") if isinstance(out, dict) else None
    if isinstance(parsed, schema):
        return Structured(parsed, "", raw_msg, usage)
    return Structured(None, _why_unparsed(out, raw_msg, schema), raw_msg, usage)


def _why_unparsed(out: Any, raw: AIMessage | None, schema: type[BaseModel]) -> str:
    error = out.get("parsing_error") if isinstance(out, dict) else None
    if error is not None:
        return f"the answer did not match the {schema.__name__} schema: {_short(error)}"
    if raw is not None and raw.invalid_tool_calls:
        return f"the answer was not valid JSON: {_short(raw.invalid_tool_calls[0].get('args') or '')}"
    text = raw.content if raw is not None and isinstance(raw.content, str) else ""
    return f"the answer contained no {schema.__name__} (it said: {_short(text) or 'nothing'})"


def _short(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
