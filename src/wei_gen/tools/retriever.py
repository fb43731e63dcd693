"""Example-workflow retrieval: a persistent chromadb index of example workflows, ranked for the current experiment.

One document per workflow: a concise text (name, description, step summary ``module.action -> ...``, modules) whose
MiniLM embedding (computed offline, see ``embeddings.py``) is stored with metadata (modules, actions, source, lab).
The document id is the hash of its content, so re-indexing the same file is a no-op; a changed file is added before
its old version is removed, so a session searching meanwhile sees one or the other, never neither. Ranking combines
embedding similarity with the overlap of modules and actions with the plan, and prefers examples whose modules exist
in the user's lab.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wei_gen.lab import Lab
from wei_gen.tools.embeddings import MiniLMEmbedder
from wei_gen.yamlio import InputError, load_yaml_file

COLLECTION = "wei_gen_examples"
WEIGHTS = {"similarity": 0.6, "modules": 0.2, "actions": 0.1, "in_lab": 0.1}
"""How the ranking score combines its parts (each part is 0..1)."""


class ExampleDoc(BaseModel):
    """One indexed example workflow."""

    id: str
    text: str
    name: str
    source: str
    lab: str = ""
    modules: list[str]
    actions: list[str]
    steps: str


class Hit(BaseModel):
    """A search result with the parts of its score."""

    doc: ExampleDoc
    score: float
    similarity: float
    module_overlap: float
    action_overlap: float
    in_lab: float


@dataclass
class IndexResult:
    """What an indexing run did."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def describe_workflow(data: Any, source: str, lab: str = "") -> ExampleDoc | None:
    """The document for one workflow file's data, or None when it has no steps to learn from."""
    if not isinstance(data, dict) or not isinstance(data.get("flowdef"), list):
        return None
    steps = [s for s in data["flowdef"] if isinstance(s, dict)]
    pairs = [(str(s.get("module", "")), str(s.get("action") or s.get("command") or "")) for s in steps]
    pairs = [(m, a) for m, a in pairs if m and a]
    if not pairs:
        return None
    raw_meta = data.get("metadata")
    meta = raw_meta if isinstance(raw_meta, dict) else {}
    name = str(data.get("name") or meta.get("name") or Path(source).stem)
    description = str(meta.get("info") or meta.get("description") or "")
    modules = sorted({m for m, _ in pairs})
    summary = " -> ".join(f"{m}.{a}" for m, a in pairs)
    step_names = "; ".join(str(s.get("name", "")) for s in steps if s.get("name"))
    # The embedded text is the workflow's words only (name, description, step names): modules and actions are scored
    # from the metadata by ``search``, and a long ``module.action`` chain in the text pushed the words out of MiniLM's
    # 256-token window and pulled unrelated workflows together (measured: hit@3 with the lab 19/22 -> 21/22 on the
    # corpus queries). A workflow without description or step names keeps its action chain, or there is no text.
    text = f"{name}. {description} Steps: {step_names}."
    if not description.strip() and not step_names:
        text += f" Actions: {summary}."
    digest = hashlib.sha256(f"{source}\n{text}".encode()).hexdigest()[:32]
    return ExampleDoc(
        id=digest,
        text=text,
        name=name,
        source=source,
        lab=lab,
        modules=modules,
        actions=sorted({f"{m}.{a}" for m, a in pairs}),
        steps=summary,
    )


def workflow_files(paths: Iterable[Path]) -> list[Path]:
    """YAML files named directly or found under folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        else:
            found.append(path)
    return found


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()
_WRITE_LOCKS: dict[str, threading.Lock] = {}


def _client(data_dir: Path | None, url: str) -> Any:
    """One chroma client per store in this process (chroma refuses two differently configured ones)."""
    import chromadb
    from chromadb.config import Settings

    key = url or str((data_dir or Path(".wei_gen")).resolve() / "chroma")
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            settings = Settings(anonymized_telemetry=False)
            if url:
                host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
                _CLIENTS[key] = chromadb.HttpClient(host=host, port=int(port or 8000), settings=settings)
            else:
                Path(key).mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=key, settings=settings)
        return _CLIENTS[key]


class ExampleIndex:
    """The persistent example index (embedded chroma under the data directory, or a chroma server by URL)."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        chroma_url: str = "",
        embedder: MiniLMEmbedder | None = None,
        collection: str = COLLECTION,
    ):
        """Open (or create) the collection; vectors are always ours, so chroma's downloading embedder is never used."""
        self.embedder = embedder or shared_embedder()
        client = _client(data_dir, chroma_url)
        self.write_batch = max(1, min(int(client.get_max_batch_size()), 1000))
        """Records per chroma read/write while indexing (chroma refuses more than its max batch size per call)."""
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )
        store = chroma_url or str((data_dir or Path(".wei_gen")).resolve())
        with _CLIENTS_LOCK:
            # One writer at a time per collection in this process, whichever index object writes: two writers storing
            # versions of the same file could otherwise each delete the other's version.
            self._write_lock = _WRITE_LOCKS.setdefault(f"{store}::{collection}", threading.Lock())

    def count(self) -> int:
        """Indexed workflows."""
        return int(self.collection.count())

    def index(self, paths: Iterable[Path], lab: str = "") -> IndexResult:
        """Index workflow files (folders recursively); idempotent by content hash."""
        result = IndexResult()
        docs: list[ExampleDoc] = []
        for path in workflow_files(paths):
            try:
                data = load_yaml_file(path).data
            except InputError as exc:
                result.skipped.append((str(path), exc.message))
                continue
            doc = describe_workflow(data, str(path), lab)
            if doc is None:
                result.skipped.append((str(path), "not a workflow with steps"))
            else:
                docs.append(doc)
        with self._write_lock:
            self._store(docs, result)
        return result

    def _store(self, docs: list[ExampleDoc], result: IndexResult) -> None:
        # chroma refuses a single call with more records than its max batch size (5,461 with embedded SQLite), so
        # every read and write goes in chunks; one chunk is also the unit that becomes visible to searches at once.
        for start in range(0, len(docs), self.write_batch):
            self._store_chunk(docs[start : start + self.write_batch], result)

    def _store_chunk(self, docs: list[ExampleDoc], result: IndexResult) -> None:
        # One read gives both answers: which documents are stored already (an id is the hash of source and text, so
        # a stored id is that file's current version) and which versions exist before this write. Only those are
        # removed after the upsert, so a newer version written meanwhile by another process is never deleted by us.
        before = self.collection.get(where={"source": {"$in": [d.source for d in docs]}}, include=["metadatas"])
        old_ids: dict[str, list[str]] = {}
        for doc_id, meta in zip(before["ids"], before["metadatas"] or [], strict=False):
            old_ids.setdefault(str((meta or {}).get("source", "")), []).append(doc_id)
        new = [d for d in docs if d.id not in old_ids.get(d.source, [])]
        result.unchanged += [d.source for d in docs if d.id in old_ids.get(d.source, [])]
        if not new:
            return
        vectors = self.embedder.embed([d.text for d in new])
        self.collection.upsert(
            ids=[d.id for d in new],
            embeddings=[v.tolist() for v in vectors],
            documents=[d.text for d in new],
            metadatas=[_metadata(d) for d in new],
        )
        # The new versions are in; only now drop the older ones (a search meanwhile sees one or the other).
        stale = [i for d in new for i in old_ids.get(d.source, []) if i != d.id]
        if stale:
            self.collection.delete(ids=stale)
        for doc in new:
            (result.replaced if old_ids.get(doc.source) else result.added).append(doc.source)

    def search(
        self,
        text: str,
        k: int = 3,
        *,
        modules: Iterable[str] = (),
        actions: Iterable[str] = (),
        lab: Lab | None = None,
        candidates: int = 20,
    ) -> list[Hit]:
        """The ``k`` best examples for a query, re-ranked with module/action overlap and lab fit."""
        if k < 1 or not text.strip():
            return []
        vector = self.embedder.embed([text])[0].tolist()
        # No count() first (a round trip per search): chroma returns fewer results when the collection is smaller.
        found = self.collection.query(
            query_embeddings=[vector],
            n_results=max(candidates, k),
            include=["metadatas", "distances"],
        )
        wanted_modules, wanted_actions = set(modules), set(actions)
        lab_modules = set(lab.modules) if lab else set()
        hits = []
        for meta, distance in zip(found["metadatas"][0], found["distances"][0], strict=True):
            if meta is None:
                continue  # removed by a concurrent re-index between the vector search and the metadata fetch
            doc = _doc(meta)
            similarity = max(0.0, 1.0 - float(distance))
            mod = _overlap(set(doc.modules), wanted_modules)
            act = _overlap(set(doc.actions), wanted_actions)
            fit = len(set(doc.modules) & lab_modules) / len(doc.modules) if lab and doc.modules else 0.0
            score = (
                WEIGHTS["similarity"] * similarity
                + WEIGHTS["modules"] * mod
                + WEIGHTS["actions"] * act
                + WEIGHTS["in_lab"] * fit
            )
            hits.append(
                Hit(
                    doc=doc,
                    score=round(score, 4),
                    similarity=round(similarity, 4),
                    module_overlap=mod,
                    action_overlap=act,
                    in_lab=fit,
                )
            )
        hits.sort(key=lambda h: (-h.score, h.doc.name))
        return hits[:k]


def _overlap(have: set[str], wanted: set[str]) -> float:
    return len(have & wanted) / len(have | wanted) if have and wanted else 0.0


def _metadata(doc: ExampleDoc) -> dict[str, str]:
    return {
        "name": doc.name,
        "source": doc.source,
        "lab": doc.lab,
        "modules": ",".join(doc.modules),
        "actions": ",".join(doc.actions),
        "steps": doc.steps,
        "text": doc.text,
    }


def _doc(meta: dict[str, Any]) -> ExampleDoc:
    split = [x for x in str(meta.get("modules", "")).split(",") if x]
    acts = [x for x in str(meta.get("actions", "")).split(",") if x]
    return ExampleDoc(
        id="",
        text=str(meta.get("text", "")),
        name=str(meta.get("name", "")),
        source=str(meta.get("source", "")),
        lab=str(meta.get("lab", "")),
        modules=split,
        actions=acts,
        steps=str(meta.get("steps", "")),
    )


_EMBEDDER: MiniLMEmbedder | None = None


def shared_embedder() -> MiniLMEmbedder:
    """One embedder per process (weights load once)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        _EMBEDDER = MiniLMEmbedder()
    return _EMBEDDER


def render_hits(hits: list[Hit]) -> str:
    """Examples for a prompt, compactly: name, steps, and where they come from."""
    return "\n".join(f"- {h.doc.name} (from {Path(h.doc.source).name}): {h.doc.steps}" for h in hits) or "(none)"
