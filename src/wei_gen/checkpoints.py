"""Where sessions live: SQLite under the data directory by default, PostgreSQL by URL.

A session is a LangGraph thread (thread id = session id). The serializer allow-lists exactly the pydantic types the
state holds, so artifacts come back from a checkpoint with their type and nothing else is deserialised.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from wei_gen.context import default_data_dir
from wei_gen.state import State

SQLITE_FILE = "sessions.sqlite"


def _models_in(annotation: Any, found: set[type[BaseModel]]) -> None:
    """Collect the pydantic models reachable from a type annotation (fields of models included)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in found:
            return
        found.add(annotation)
        for field in annotation.model_fields.values():
            _models_in(field.annotation, found)
        return
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            _models_in(arg, found)


def state_models() -> list[type[BaseModel]]:
    """Every pydantic type the session state can hold."""
    found: set[type[BaseModel]] = set()
    for hint in get_type_hints(State, include_extras=True).values():
        _models_in(hint, found)
    return sorted(found, key=lambda t: (t.__module__, t.__name__))


def serializer() -> JsonPlusSerializer:
    """The checkpoint serializer, allow-listing our state's pydantic types."""
    return JsonPlusSerializer(allowed_msgpack_modules=[(t.__module__, t.__name__) for t in state_models()])


def is_postgres(spec: str) -> bool:
    """Whether a checkpointer spec is a PostgreSQL URL."""
    return spec.startswith(("postgresql://", "postgres://"))


def sqlite_path(spec: str, data_dir: Path | None = None) -> Path:
    """The SQLite file of a spec (``sqlite:PATH`` or empty = under the data directory)."""
    if spec.startswith("sqlite:"):
        return Path(spec.removeprefix("sqlite:"))
    return (data_dir or default_data_dir()) / SQLITE_FILE


@contextmanager
def open_checkpointer(spec: str = "", data_dir: Path | None = None) -> Iterator[BaseCheckpointSaver[Any]]:
    """Open the saver a spec names: ``postgresql://...``, ``sqlite:PATH``, or SQLite under ``data_dir``."""
    if is_postgres(spec):
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row

        with Connection.connect(spec, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
            saver = PostgresSaver(conn, serde=serializer())
            saver.setup()
            yield saver
        return
    path = sqlite_path(spec, data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lite = sqlite3.connect(str(path), check_same_thread=False)
    try:
        yield SqliteSaver(lite, serde=serializer())
    finally:
        lite.close()


@asynccontextmanager
async def make_checkpointer() -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """The async saver ``langgraph.json`` names (``checkpointer.path``).

    The spec and data directory come from the server's config file (``$WEI_GEN_CONFIG``, ``settings.checkpointer``
    / ``settings.data_dir``) or the environment (``WEI_GEN_CHECKPOINTER``, ``WEI_GEN_DATA_DIR``), as the REST
    endpoints' session registry reads them.
    """
    import os

    from wei_gen.context import load_config

    config_file = os.environ.get("WEI_GEN_CONFIG")
    config = load_config(Path(config_file) if config_file else None)
    spec = config.checkpointer
    if is_postgres(spec):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(spec) as saver:
            saver.serde = serializer()
            await saver.setup()
            yield saver
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = sqlite_path(spec, config.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = serializer()
        yield saver


def thread_exists(saver: BaseCheckpointSaver[Any], thread_id: str) -> bool:
    """Whether a session has any checkpoint."""
    return saver.get_tuple({"configurable": {"thread_id": thread_id}}) is not None


_THREADS_SQL = "SELECT thread_id FROM checkpoints GROUP BY thread_id ORDER BY MAX(checkpoint_id) DESC"


def list_threads(saver: BaseCheckpointSaver[Any]) -> list[str]:
    """Ids of every stored session, newest first.

    Our two savers are asked in SQL (checkpoint ids are time-ordered), which reads no checkpoint blobs; any other
    saver is walked checkpoint by checkpoint.
    """
    if isinstance(saver, SqliteSaver):
        with saver.cursor(transaction=False) as cur:
            return [str(row[0]) for row in cur.execute(_THREADS_SQL).fetchall()]
    conn = getattr(saver, "conn", None)
    if type(saver).__name__ == "PostgresSaver" and conn is not None:
        with conn.cursor() as cur:
            cur.execute(_THREADS_SQL)
            return [str(row["thread_id"]) for row in cur.fetchall()]
    seen: dict[str, None] = {}
    for item in saver.list(None):
        seen.setdefault(str(item.config["configurable"]["thread_id"]), None)
    return list(seen)
