"""A scripted chat model for unit tests: replies are queued per prompt ``<task>`` tag, never a network call.

``with_structured_output(..., method="function_calling")`` works because ``bind_tools`` returns the model itself and
a reply for a schema is an ``AIMessage`` whose tool call is named after that schema.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, PrivateAttr

_TASK = re.compile(r"<task>([\w-]+)</task>")


def tool_reply(schema: type[BaseModel] | str, args: dict[str, Any] | BaseModel) -> AIMessage:
    """An answer that calls the tool of a structured-output schema with these arguments."""
    name = schema if isinstance(schema, str) else schema.__name__
    data = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
    return AIMessage("", tool_calls=[{"name": name, "args": data, "id": f"call_{uuid.uuid4().hex[:8]}"}])


def yes_no(answer: str, p: float) -> AIMessage:
    """A one-token answer with logprobs: ``answer`` at probability ``p``, the other word at ``1 - p``."""
    import math

    other = "no" if answer.strip().lower() == "yes" else "yes"
    top = [{"token": answer, "logprob": math.log(p)}, {"token": other, "logprob": math.log(max(1 - p, 1e-9))}]
    return AIMessage(answer, response_metadata={"logprobs": {"content": [{"token": answer, "logprob": math.log(p),
                                                                          "top_logprobs": top}]}})  # fmt: skip


class TaskScriptedChatModel(BaseChatModel):
    """Replies from per-task queues (task = the ``<task>`` tag of the system prompt); the last reply repeats."""

    _queues: dict[str, deque[AIMessage | BaseException]] = PrivateAttr(default_factory=lambda: defaultdict(deque))
    _last: dict[str, AIMessage | BaseException] = PrivateAttr(default_factory=dict)
    _calls: list[tuple[str, list[BaseMessage]]] = PrivateAttr(default_factory=list)

    @property
    def calls(self) -> list[tuple[str, list[BaseMessage]]]:
        """Every call as (task, messages)."""
        return self._calls

    def script(self, task: str, *replies: AIMessage | BaseException) -> TaskScriptedChatModel:
        """Queue replies for a task; an exception is raised when its turn comes (a failing provider)."""
        self._queues[task].extend(replies)
        return self

    @property
    def _llm_type(self) -> str:
        return "task-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Ignore tools: the scripted reply already names the tool."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = " ".join(m.text for m in messages)
        match = _TASK.search(text)
        task = match.group(1) if match else ""
        self._calls.append((task, list(messages)))
        queue = self._queues.get(task)
        if queue:
            self._last[task] = queue.popleft()
        if task not in self._last:
            raise AssertionError(f"no scripted reply for task {task!r}")
        last = self._last[task]
        if isinstance(last, BaseException):
            raise last
        reply = last.model_copy()
        return ChatResult(generations=[ChatGeneration(message=reply)])
