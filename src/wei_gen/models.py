"""Chat models: ``provider:model`` strings to LangChain chat models, structured calls, usage, transient errors.

Models are built with ``max_retries=0``: retrying transient failures (429, 5xx, timeouts) is the graph's job (a
per-node retry policy), so that it is visible and bounded in one place. Tests register scripted models by name.
"""

from __future__ import annotations

import email.utils
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx
import openai
from langchain.chat_models import init_chat_model
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableSequence
from pydantic import BaseModel, ValidationError

from wei_gen.context import Context, credentials
from wei_gen.state import Usage

T = TypeVar("T", bound=BaseModel)

_REGISTERED: dict[str, BaseChatModel] = {}

# Built models and structured-output runnables are reused across calls: building them per node call (a new client,
# the schema converted to a tool again) cost a few ms per call. Both caches are bounded and keyed by everything the
# build reads, so a changed setting, key or environment variable builds a new model.
_CACHE_SIZE = 32
_LOCK = threading.Lock()
_MODELS: OrderedDict[str, BaseChatModel] = OrderedDict()
_STRUCTURED: OrderedDict[tuple[int, type[BaseModel]], tuple[BaseChatModel, Runnable[Any, Any], Runnable[Any, Any]]] = (
    OrderedDict()
)


class ModelSetupError(Exception):
    """A model cannot be built (unknown provider, no API key): not transient, not retried."""


def register_model(spec: str, model: BaseChatModel) -> None:
    """Serve ``spec`` from this model instance (tests, embedding wei-gen in another app)."""
    _REGISTERED[spec] = model


def unregister_models() -> None:
    """Forget every registered model (and every cached one)."""
    _REGISTERED.clear()
    with _LOCK:
        _MODELS.clear()
        _STRUCTURED.clear()


def _cache_put(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Insert into a bounded cache, dropping the least recently used entry beyond ``_CACHE_SIZE``."""
    with _LOCK:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)


def _cache_get(cache: OrderedDict[Any, Any], key: Any) -> Any:
    with _LOCK:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value


def load_chat_model(spec: str, context: Context) -> BaseChatModel:
    """The chat model for ``provider:model`` with the run's temperature, timeout and endpoint (built once)."""
    if spec in _REGISTERED:
        return _REGISTERED[spec]
    kwargs = _model_kwargs(spec, context)
    provider = spec.partition(":")[0].upper()
    # Provider SDKs read their own environment variables (OPENAI_BASE_URL, OPENAI_PROXY ...) when a model is built.
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith(provider + "_"))
    key = repr((spec, sorted(kwargs.items()), env))
    model: BaseChatModel | None = _cache_get(_MODELS, key)
    if model is None:
        try:
            model = init_chat_model(spec, **kwargs)
        except (ImportError, ValueError) as exc:
            raise ModelSetupError(f"cannot build model '{spec}': {exc}") from None
        _cache_put(_MODELS, key, model)
    return model


def _model_kwargs(spec: str, context: Context) -> dict[str, Any]:
    """Keyword arguments of ``init_chat_model`` for a spec; raises ``ModelSetupError`` when it cannot be built."""
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
    return kwargs


RETRY_AFTER_CAP = 30.0
"""Longest wait (seconds) a provider's Retry-After may impose before the node's retry policy asks again."""


def retry_after_seconds(exc: BaseException) -> float | None:
    """The wait a 429 answer asks for (``retry-after-ms``, or ``retry-after`` in seconds or as an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    if headers.get("retry-after-ms"):
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            return None
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@contextmanager
def retry_after_respected() -> Iterator[None]:
    """Around a model call: on a rate limit that says how long to wait, wait that long (capped), then re-raise.

    The node's retry policy (graph.py) retries rate limits with its own short backoff (0.5 s, 1 s ...); a provider
    that asks for 20 s would otherwise be asked again too early and the run would fail after three quick attempts.
    """
    try:
        yield
    except openai.RateLimitError as exc:
        delay = retry_after_seconds(exc)
        if delay:
            time.sleep(min(delay, RETRY_AFTER_CAP))
        raise


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
    parts = _structured_parts(model, schema)
    try:
        with retry_after_respected():
            out = _invoke_with_raw(parts, messages) if parts else _include_raw(model, schema).invoke(messages)
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


def _include_raw(model: BaseChatModel, schema: type[T]) -> Runnable[Any, Any]:
    return model.with_structured_output(schema, method="function_calling", include_raw=True)


def _structured_parts(
    model: BaseChatModel, schema: type[BaseModel]
) -> tuple[Runnable[Any, Any], Runnable[Any, Any]] | None:
    """The model's structured-output runnable split into (model bound to the schema's tool, parser), cached.

    ``with_structured_output(include_raw=True)`` gives the same raw message, parsed value and parsing error, but it
    runs the model in a ``RunnableParallel`` (a new thread pool per call) and converts the schema again on every
    build; split, the model is invoked in the node's thread. ``None`` when the model's runnable is not
    ``model | parser``.
    """
    key = (id(model), schema)
    hit = _cache_get(_STRUCTURED, key)
    if hit is not None and hit[0] is model:  # the entry holds the model, so its id cannot be reused meanwhile
        return hit[1], hit[2]
    runnable = model.with_structured_output(schema, method="function_calling")
    if not isinstance(runnable, RunnableSequence) or not _is_model(runnable.first, model):
        return None
    steps = runnable.steps
    parser = steps[1] if len(steps) == 2 else RunnableSequence(*steps[1:])
    _cache_put(_STRUCTURED, key, (model, steps[0], parser))
    return steps[0], parser


def _is_model(step: Runnable[Any, Any], model: BaseChatModel) -> bool:
    """Whether a step is the model itself or the model with bound arguments (tools), so only the parser follows."""
    return step is model or (isinstance(step, RunnableBinding) and step.bound is model)


def _invoke_with_raw(
    parts: tuple[Runnable[Any, Any], Runnable[Any, Any]], messages: list[BaseMessage]
) -> dict[str, Any]:
    """``{"raw", "parsed", "parsing_error"}`` as ``include_raw=True`` returns it; model errors propagate."""
    bound, parser = parts
    raw = bound.invoke(messages)
    try:
        return {"raw": raw, "parsed": parser.invoke(raw), "parsing_error": None}
    except Exception as exc:  # noqa: BLE001 - as include_raw=True's fallback: any parser failure is a parsing error
        return {"raw": raw, "parsed": None, "parsing_error": exc}


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
