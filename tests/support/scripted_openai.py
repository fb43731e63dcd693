"""A scripted OpenAI-compatible chat-completions server for end-to-end tests of the real ``ChatOpenAI``.

The server speaks just enough of the OpenAI HTTP API (``GET /v1/models``, ``POST /v1/chat/completions``, plain JSON
and SSE streaming) for langchain-openai and the openai SDK to run their real code paths: structured output
(``json_schema`` and ``function_calling``), ``bind_tools``, logprobs, retries and timeouts. What it answers is
scripted with `Rule`s, each holding a queue of `Reply`s::

    with ScriptedOpenAI([
        rule(Reply.data(Feasibility(ok=True)), name="Feasibility"),
        rule(Reply.text("yes", logprobs=("yes", [("yes", -0.1), ("no", -2.4)])), contains="<task>judge</task>"),
        rule(Reply.error(429, retry_after=0.01), "fine", contains="<task>retry</task>"),
    ]) as srv:
        llm = srv.chat_model(temperature=0)
        assert llm.with_structured_output(Feasibility).invoke("...").ok
        assert srv.requests[0].body["response_format"]["json_schema"]["name"] == "Feasibility"

Matching: the first rule whose matchers all hold and that still has replies answers; it consumes its next reply
(``repeat=True`` reuses the last reply forever). A request nothing matches gets HTTP 500 with ``x-should-retry:
false`` and an error message starting "no scripted reply for this request" plus a summary; it is still recorded.

Where a reply goes: ``text`` is always the assistant content. ``data`` (dict, pydantic model or dataclass) and
``raw`` (an exact string, e.g. malformed JSON) become the arguments of one tool call when the request carries
``tools``, else the content (``data`` serialised as JSON). Logprobs are only returned when the request asks for
them (``logprobs: true``), for the first token only, and ``top_logprobs`` is cut to the requested count, as OpenAI
does; an unscripted reply then gets the content's first word with logprob 0.0, and ``ignore_logprobs=True`` sends
none at all (a server without logprobs). Usage defaults to characters / 4.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

from langchain_openai import ChatOpenAI

JSONDict = dict[str, Any]
ReplyKind = Literal["text", "data", "raw", "error", "drop"]
NO_MATCH = "no scripted reply for this request"
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 429: "rate_limit"}


@dataclass(frozen=True, kw_only=True)
class Reply:
    """One scripted answer; build it with `text`, `data`, `raw`, `error` or `drop`.

    Attributes:
        kind: What the reply is (see the module docstring for where each kind goes).
        value: The content string, the data object or the error message.
        logprobs: ``(first_token, [(token, logprob), ...])`` for the first token's ``top_logprobs``.
        ignore_logprobs: Answer like a server that ignores ``logprobs: true`` (some vLLM/Ollama setups): the
            choice carries no logprobs at all, even when the request asks for them.
        usage: ``(prompt_tokens, completion_tokens)``; default is a deterministic characters / 4 estimate.
        status: HTTP status of an ``error`` reply (e.g. 429, 500, 503).
        retry_after: Seconds sent as ``retry-after`` (and ``retry-after-ms``) with an error.
        delay: Seconds to wait before answering (for client timeouts); interrupted when the server closes.
        finish_reason: Overrides ``"stop"`` / ``"tool_calls"``.
        tool_name: Name of the tool call for ``data``/``raw`` when the request has tools (default: the forced
            ``tool_choice``, else the rule's ``name`` if it is a tool, else the first tool).
    """

    kind: ReplyKind
    value: Any = None
    logprobs: tuple[str, Sequence[tuple[str, float]]] | None = None
    ignore_logprobs: bool = False
    usage: tuple[int, int] | None = None
    status: int = 200
    retry_after: float | None = None
    delay: float = 0.0
    finish_reason: str | None = None
    tool_name: str | None = None

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        """Assistant text content."""
        return cls(kind="text", value=content, **kw)

    @classmethod
    def data(cls, obj: Any, **kw: Any) -> Reply:
        """A JSON-able object: tool-call arguments if the request has tools, else JSON content."""
        return cls(kind="data", value=obj, **kw)

    @classmethod
    def raw(cls, content: str, **kw: Any) -> Reply:
        """An exact string placed where `data` would go (for malformed JSON and other garbage)."""
        return cls(kind="raw", value=content, **kw)

    @classmethod
    def error(cls, status: int = 500, message: str | None = None, **kw: Any) -> Reply:
        """An OpenAI-style error body with the given HTTP status."""
        return cls(kind="error", status=status, value=message or f"scripted error {status}", **kw)

    @classmethod
    def drop(cls, delay: float = 0.0) -> Reply:
        """Close the connection without answering."""
        return cls(kind="drop", delay=delay)


@dataclass(kw_only=True)
class Rule:
    """A matcher and a queue of replies; all given matchers must hold (none given: matches everything).

    Attributes:
        replies: The queue, consumed in order.
        name: Matches a structured-output schema name: ``response_format.json_schema.name``, the forced
            ``tool_choice`` function, or any tool name in the request.
        contains: Matches a substring of the concatenated message contents.
        when: Matches when ``when(request_body)`` is true.
        repeat: Reuse the last reply forever once the queue is used up.
        used: How many replies have been served.
    """

    replies: list[Reply]
    name: str | None = None
    contains: str | None = None
    when: Callable[[JSONDict], bool] | None = None
    repeat: bool = False
    used: int = 0

    def matches(self, body: JSONDict) -> bool:
        """Whether this rule's matchers all accept the request body."""
        if self.name is not None and self.name not in _names(body):
            return False
        if self.contains is not None and self.contains not in _text(body):
            return False
        return self.when is None or bool(self.when(body))

    @property
    def exhausted(self) -> bool:
        """No reply left to serve."""
        return self.used >= len(self.replies) and not (self.repeat and self.replies)

    def take(self) -> Reply:
        """Consume the next reply."""
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply

    def describe(self) -> str:
        """A short label for summaries."""
        parts = [f"{k}={v!r}" for k, v in (("name", self.name), ("contains", self.contains)) if v is not None]
        parts += [*(["when=..."] if self.when else []), f"{self.used}/{len(self.replies)}"]
        return f"Rule({', '.join(parts)})"


def rule(
    *replies: Reply | str | Any,
    name: str | None = None,
    contains: str | None = None,
    when: Callable[[JSONDict], bool] | None = None,
    repeat: bool = False,
) -> Rule:
    """Build a `Rule`; a bare ``str`` reply means `Reply.text`, any other non-`Reply` means `Reply.data`."""
    coerced = [r if isinstance(r, Reply) else Reply.text(r) if isinstance(r, str) else Reply.data(r) for r in replies]
    return Rule(replies=coerced, name=name, contains=contains, when=when, repeat=repeat)


@dataclass
class RecordedRequest:
    """A request as it arrived.

    Attributes:
        method: HTTP method.
        path: URL path without the query string.
        body: Parsed JSON body (``None`` for GET).
        headers: Request headers, names lower-cased.
        at: Arrival time, ``time.monotonic()``.
        rule: `Rule.describe` of the rule that answered, ``None`` if none did.
    """

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    at: float
    rule: str | None = None


def _names(body: JSONDict) -> set[str]:
    names = {t.get("function", {}).get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
    choice, fmt = body.get("tool_choice"), body.get("response_format")
    if isinstance(choice, dict):
        names.add(choice.get("function", {}).get("name"))
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        names.add(fmt.get("json_schema", {}).get("name"))
    return {n for n in names if isinstance(n, str)}


def _text(body: JSONDict) -> str:
    out: list[str] = []
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p.get("text", "") for p in content if isinstance(p, dict))
    return "\n".join(out)


def _summary(body: JSONDict) -> str:
    last = _text({"messages": (body.get("messages") or [])[-1:]}).replace("\n", " ")
    names = ", ".join(sorted(_names(body))) or "-"
    return f"stream={bool(body.get('stream'))} schema/tools=[{names}] last message={last[:200]!r}"


def _to_json(obj: Any) -> str:
    if hasattr(obj, "model_dump_json"):
        return str(obj.model_dump_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    return json.dumps(obj)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # non-daemon handler threads are the ones server_close() joins (block_on_close)

    def __init__(self, owner: ScriptedOpenAI) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads to reap
    server_version = "ScriptedOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def setup(self) -> None:
        """Track the connection so `ScriptedOpenAI.close` can cut it."""
        super().setup()
        self.server.owner._conns.add(self.connection)

    def finish(self) -> None:
        """Untrack the connection."""
        self.server.owner._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        """Serve every request through `ScriptedOpenAI._handle`."""
        self.server.owner._handle(self)

    do_POST = do_GET


class ScriptedOpenAI:
    """An OpenAI-compatible server on 127.0.0.1 (free port) answering from scripted rules; a context manager.

    Args:
        rules: Rules tried in order for every chat-completion request (more can be added with `add`).
        latency: Seconds added before every reply (for benchmarks).
    """

    def __init__(self, rules: Iterable[Rule] = (), *, latency: float = 0.0) -> None:
        self.rules: list[Rule] = list(rules)
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._conns: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> Self:
        """Bind a free port and serve in a daemon thread."""
        if self._server is None:
            self._closing.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-openai", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections and wait for every handler thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        if self._server is None:
            raise RuntimeError("ScriptedOpenAI is not running; use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def add(self, *rules: Rule) -> None:
        """Append rules (tried after the existing ones)."""
        with self._lock:
            self.rules.extend(rules)

    def unused(self) -> list[Rule]:
        """Rules that still have unserved replies (``repeat`` rules count once served)."""
        return [r for r in self.rules if r.used < len(r.replies)]

    def chat_model(self, **kw: Any) -> ChatOpenAI:
        """A real ``ChatOpenAI`` pointed at this server (no retries, 5 s timeout unless overridden)."""
        params: dict[str, Any] = {"model": "scripted", "api_key": "sk-test", "max_retries": 0, "timeout": 5.0}
        return ChatOpenAI(**{**params, **kw, "base_url": self.base_url})

    # -- request handling (runs in handler threads) ------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        try:
            length = int(h.headers.get("content-length") or 0)
            raw = h.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in h.headers.items()}
            rec = RecordedRequest(h.command, h.path.split("?")[0], body, headers, time.monotonic())
            with self._lock:
                self.requests.append(rec)
            if rec.method == "GET" and rec.path == "/v1/models":
                self._send(h, 200, {"object": "list", "data": [{"id": "scripted", "object": "model", "created": 0}]})
            elif rec.method == "POST" and rec.path == "/v1/chat/completions" and isinstance(body, dict):
                self._chat(h, rec, body)
            else:
                self._error(h, 404, f"unknown endpoint {rec.method} {rec.path}")
        except Exception as exc:  # report anything (e.g. a raising `when`) to the client
            self._error(h, 500, f"scripted server failure: {exc!r}", retry=False)

    def _chat(self, h: _Handler, rec: RecordedRequest, body: JSONDict) -> None:
        with self._lock:
            found = next((r for r in self.rules if not r.exhausted and r.matches(body)), None)
            reply = found.take() if found else None
            rec.rule = found.describe() if found else None
        wait = self.latency + (reply.delay if reply else 0.0)
        if wait > 0 and self._closing.wait(wait):
            return  # server closing: drop the connection
        if reply is None:
            return self._error(h, 500, f"{NO_MATCH}: {_summary(body)}", retry=False)
        if reply.kind == "drop":
            h.close_connection = True
            return None
        if reply.kind == "error":
            return self._error(h, reply.status, str(reply.value), retry_after=reply.retry_after)
        content, calls = self._answer(body, reply, found)
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        model = str(body.get("model") or "scripted")
        cid, created = f"chatcmpl-scripted-{next(self._ids)}", int(time.time())
        usage, logprobs = _usage(body, reply, content, calls), _logprobs(body, reply, content)

        def envelope(obj: str, choices: list[JSONDict], usage: Any = None) -> JSONDict:
            env = {"id": cid, "object": obj, "created": created, "model": model, "choices": choices, "usage": usage}
            return {**env, "system_fingerprint": "fp_scripted", "service_tier": "default"}

        if not body.get("stream"):
            message: JSONDict = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
            return self._send(h, 200, envelope("chat.completion", [choice], usage))
        deltas: list[tuple[JSONDict, Any]] = [({"role": "assistant", "content": ""}, None)]
        text = content or ""
        first = reply.logprobs[0] if reply.logprobs and reply.logprobs[0] and text.startswith(reply.logprobs[0]) else ""
        pieces = ([first] if first else []) + _split(text[len(first) :])
        deltas += [({"content": p}, logprobs if i == 0 else None) for i, p in enumerate(pieces)]
        for i, c in enumerate(calls):
            fn = {"name": c["function"]["name"], "arguments": ""}
            deltas.append(({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": fn}]}, None))
            deltas += [
                ({"tool_calls": [{"index": i, "function": {"arguments": a}}]}, None)
                for a in _split(c["function"]["arguments"])
            ]
        chunks = [envelope("chat.completion.chunk", [_choice(d, lp)]) for d, lp in deltas]
        chunks.append(envelope("chat.completion.chunk", [_choice({}, None, finish)]))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(envelope("chat.completion.chunk", [], usage))
        self._stream(h, chunks)
        return None

    def _answer(self, body: JSONDict, reply: Reply, found: Rule | None) -> tuple[str | None, list[JSONDict]]:
        """Content and tool calls for a text/data/raw reply."""
        if reply.kind == "text":
            return str(reply.value), []
        payload = str(reply.value) if reply.kind == "raw" else _to_json(reply.value)
        tools = [t["function"]["name"] for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
        if not tools:
            return payload, []
        choice = body.get("tool_choice")
        forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        by_rule = found.name if found and found.name in tools else None
        name = reply.tool_name or forced or by_rule or tools[0]
        call_id = f"call_scripted_{next(self._ids)}"
        return None, [{"id": call_id, "type": "function", "function": {"name": name, "arguments": payload}}]

    # -- low-level writers -------------------------------------------------------------------------------------

    def _send(self, h: _Handler, status: int, payload: JSONDict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        for k, v in {"content-type": "application/json", "content-length": str(len(data)), **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _error(
        self, h: _Handler, status: int, message: str, *, retry: bool | None = None, retry_after: float | None = None
    ) -> None:
        headers: dict[str, str] = {}
        if retry is not None:
            headers["x-should-retry"] = str(retry).lower()
        if retry_after is not None:
            headers |= {"retry-after": f"{retry_after:g}", "retry-after-ms": f"{retry_after * 1000:g}"}
        kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        error = {"message": message, "type": kind, "param": None, "code": kind if status == 429 else None}
        self._send(h, status, {"error": error}, headers)

    def _stream(self, h: _Handler, chunks: list[JSONDict]) -> None:
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.end_headers()
        try:
            for chunk in chunks:
                h.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                h.wfile.flush()
            h.wfile.write(b"data: [DONE]\n\n")
        except OSError:  # client went away mid-stream
            h.close_connection = True


def _choice(delta: JSONDict, logprobs: Any, finish: str | None = None) -> JSONDict:
    return {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _lp(token: str, logprob: float) -> JSONDict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


def _split(text: str, parts: int = 3) -> list[str]:
    """Split into up to `parts` non-empty pieces (the stream's content/argument fragments)."""
    if not text:
        return []
    size = max(1, math.ceil(len(text) / parts))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _usage(body: JSONDict, reply: Reply, content: str | None, calls: list[JSONDict]) -> JSONDict:
    out_text = (content or "") + "".join(c["function"]["arguments"] for c in calls)
    prompt, completion = reply.usage or (_tokens(_text(body)), _tokens(out_text))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _logprobs(body: JSONDict, reply: Reply, content: str | None) -> JSONDict | None:
    if not body.get("logprobs") or reply.ignore_logprobs:
        return None
    if reply.logprobs is not None:
        token, top = reply.logprobs
    else:
        token = (content or "").split(" ", 1)[0]
        top = [(token, 0.0)]
    entries = [_lp(t, lp) for t, lp in top][: int(body.get("top_logprobs") or 0)]
    own = next((lp for t, lp in top if t == token), top[0][1] if top else 0.0)
    return {"content": [{**_lp(token, own), "top_logprobs": entries}], "refusal": None}
