"""The example index under concurrent use, across index objects and processes, and through the CLI.

Real MiniLM embeddings and embedded chroma in ``tmp_path``. Two threads search while a third re-indexes the example
lab plus one workflow file that it rewrites every round: no search may fail, every hit must come from a file that was
indexed, and the rewritten file must always be in the index (its old and new version may briefly coexist; it is never
absent). The index's own promises are checked too: a second ``ExampleIndex`` on the same data dir sees what the first
indexed, re-indexing unchanged files changes nothing, and ``wei-gen index`` / ``wei-gen examples search`` work from a
fresh process on the store they share.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import run_cli as support_run_cli
from wei_gen.tools.embeddings import embedder_available

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not embedder_available()[0], reason=embedder_available()[1]),
]

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"
EXAMPLES = LAB_DIR / "examples"
LAB_EXAMPLES = sorted(EXAMPLES.glob("*.yaml"))  # examples/protocols/ holds OT-2 protocols, which the index skips
ROUNDS = 8
SEARCHES_PER_THREAD = 30
TRIALS = 60
QUERIES = [
    "amplify DNA and photograph the plate",
    "mix dyes on the liquid handler",
    "measure absorbance of a plate",
    "seal a plate and take a picture",
    "put the plates back where they came from",
]


def write_version(path: Path, round_no: int) -> str:
    """Write the PCR example with a round-specific name and description; return the name."""
    data = yaml.safe_load((EXAMPLES / "pcr.yaml").read_text(encoding="utf-8"))
    data["name"] = f"PCR variant {round_no}"
    data["metadata"]["info"] = f"{data['metadata']['info']} Revision {round_no} of the rewritten example."
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(data["name"])


def sources_in_store(index: Any) -> list[str]:
    """Every document's source, straight from the collection (one entry per stored version)."""
    return [str(m["source"]) for m in index.collection.get(include=["metadatas"])["metadatas"]]


def test_searches_stay_consistent_while_another_thread_reindexes(tmp_path: Path) -> None:
    from wei_gen.tools.retriever import ExampleIndex

    rewritten = tmp_path / "work" / "rewritten.yaml"
    rewritten.parent.mkdir()
    names = [write_version(rewritten, 0)]
    index = ExampleIndex(tmp_path / "data")
    first = index.index([EXAMPLES, rewritten])
    assert sorted(first.added) == sorted(map(str, [*LAB_EXAMPLES, rewritten]))
    assert all(Path(path).parent.name == "protocols" for path, _ in first.skipped), first.skipped
    known = {str(p) for p in LAB_EXAMPLES} | {str(rewritten)}
    total = len(known)

    errors: list[str] = []
    writer_done = threading.Event()
    rounds: list[dict[str, Any]] = []
    searched: dict[str, int] = {}
    during: dict[str, int] = {}  # searches that started while the writer was still re-indexing
    version_counts: list[int] = []  # how many versions of the rewritten file a snapshot of the store held
    lock = threading.Lock()

    def writer() -> None:
        try:
            for round_no in range(1, ROUNDS + 1):
                name = write_version(rewritten, round_no)
                with lock:
                    names.append(name)
                result = index.index([EXAMPLES, rewritten])
                rounds.append({"replaced": result.replaced, "unchanged": result.unchanged, "added": result.added})
                time.sleep(0.02)
        except Exception as exc:  # the test reports it instead of losing it in the thread
            errors.append(f"writer: {exc!r}")
        finally:
            writer_done.set()

    def searcher(tag: str) -> None:
        done = overlapping = 0
        try:
            while done < SEARCHES_PER_THREAD or not writer_done.is_set():
                overlapping += not writer_done.is_set()
                query = QUERIES[done % len(QUERIES)]
                hits = index.search(query, k=total + 2)
                got = [h.doc.source for h in hits]
                with lock:
                    written = set(names)
                if not set(got) <= known:
                    errors.append(f"{tag}: unknown sources {set(got) - known}")
                for hit in hits:
                    if hit.doc.source == str(rewritten) and hit.doc.name not in written:
                        errors.append(f"{tag}: a version never written: {hit.doc.name!r}")
                if not hits:
                    errors.append(f"{tag}: no hits for {query!r}")
                stored = sources_in_store(index)
                count = stored.count(str(rewritten))
                version_counts.append(count)
                if count not in (1, 2):
                    errors.append(f"{tag}: {count} versions of the rewritten file in the store")
                missing = {str(p) for p in LAB_EXAMPLES} - set(stored)
                if missing or len(stored) - count != len(LAB_EXAMPLES):
                    errors.append(f"{tag}: lab examples missing or doubled: {sorted(stored)}")
                done += 1
        except Exception as exc:
            errors.append(f"{tag}: {exc!r}")
        searched[tag] = done
        during[tag] = overlapping

    threads = [threading.Thread(target=writer), *(threading.Thread(target=searcher, args=(f"s{i}",)) for i in (1, 2))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert errors == [], "\n".join(errors[:20])
    assert len(rounds) == ROUNDS
    assert all(r["replaced"] == [str(rewritten)] for r in rounds), rounds
    assert all(sorted(r["unchanged"]) == sorted(map(str, LAB_EXAMPLES)) for r in rounds), rounds
    assert all(n >= SEARCHES_PER_THREAD for n in searched.values()) and len(searched) == 2, searched
    assert all(n >= 5 for n in during.values()), f"too little overlap with re-indexing: {during}"
    assert set(version_counts) <= {1, 2}
    sys.stdout.write(
        f"\nsearches {searched}, during re-indexing {during}, versions seen {sorted(set(version_counts))}\n"
    )
    # Afterwards exactly the last version is there, once, and it is what a search finds.
    assert sorted(sources_in_store(index)) == sorted(known)
    best = index.search("PCR variant: set up reactions, seal, thermocycle, peel, photograph", k=total)
    assert [h.doc.name for h in best if h.doc.source == str(rewritten)] == [names[-1]]


def test_a_second_index_object_sees_what_the_first_indexed(tmp_path: Path) -> None:
    from wei_gen.tools.retriever import ExampleIndex

    first = ExampleIndex(tmp_path / "data")
    first.index([EXAMPLES])
    second = ExampleIndex(tmp_path / "data")
    assert second.count() == first.count() == len(LAB_EXAMPLES)
    hits = second.search("photograph a sealed plate", k=len(LAB_EXAMPLES))
    assert {h.doc.source for h in hits} == {str(p) for p in LAB_EXAMPLES}


def test_reindexing_unchanged_files_is_a_no_op(tmp_path: Path) -> None:
    from wei_gen.tools.retriever import ExampleIndex

    index = ExampleIndex(tmp_path / "data")
    index.index([EXAMPLES])
    ids_before = sorted(index.collection.get(include=[])["ids"])
    again = index.index([EXAMPLES])
    assert again.added == [] and again.replaced == []
    assert sorted(again.unchanged) == sorted(map(str, LAB_EXAMPLES))
    assert index.count() == len(LAB_EXAMPLES)
    assert sorted(index.collection.get(include=[])["ids"]) == ids_before


class HashEmbedder:
    """Stand-in for MiniLM: a deterministic unit vector per text."""

    def embed(self, texts: list[str]) -> Any:
        import numpy as np

        rows = [np.random.default_rng(zlib.crc32(t.encode())).normal(size=384) for t in texts]
        return np.array([r / np.linalg.norm(r) for r in rows], dtype=np.float32)


def test_two_index_objects_storing_versions_of_one_file_at_once_never_lose_it(tmp_path: Path) -> None:
    from wei_gen.tools.retriever import ExampleIndex, IndexResult, describe_workflow

    embedder: Any = HashEmbedder()  # the race is in the chroma writes; real vectors would only slow the trials
    first = ExampleIndex(tmp_path / "data", embedder=embedder)
    second = ExampleIndex(tmp_path / "data", embedder=embedder)
    base = yaml.safe_load((EXAMPLES / "pcr.yaml").read_text(encoding="utf-8"))
    source = str(tmp_path / "shared.yaml")
    absent = 0
    for trial in range(TRIALS):
        versions = [describe_workflow(dict(base, name=f"PCR {trial} {who}"), source) for who in "ab"]
        barrier = threading.Barrier(2)

        def store(index: Any, doc: Any, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            with index._write_lock:  # what index() does once it has parsed the file
                index._store([doc], IndexResult())

        threads = [threading.Thread(target=store, args=pair) for pair in zip((first, second), versions, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not first.collection.get(where={"source": source}, include=[])["ids"]:
            absent += 1
            first._store([describe_workflow(dict(base, name=f"PCR {trial} again"), source)], IndexResult())
    assert absent == 0, f"the file was absent from the index after {absent} of {TRIALS} concurrent updates"


def test_indexing_more_files_than_one_chroma_batch_writes_in_chunks(tmp_path: Path) -> None:
    from wei_gen.tools.retriever import ExampleIndex

    index = ExampleIndex(tmp_path / "data", embedder=HashEmbedder())
    assert 1 <= index.write_batch <= index.collection._client.get_max_batch_size()
    index.write_batch = 3  # stands in for chroma's limit (5,461): a call with more records would be refused
    sizes: list[int] = []
    real_upsert = index.collection.upsert

    def spy(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["ids"]))
        return real_upsert(**kwargs)

    index.collection.upsert = spy  # type: ignore[method-assign]
    folder = tmp_path / "many"
    folder.mkdir()
    base = yaml.safe_load((EXAMPLES / "pcr.yaml").read_text(encoding="utf-8"))
    for i in range(10):
        (folder / f"wf{i}.yaml").write_text(yaml.safe_dump(dict(base, name=f"PCR {i}")), encoding="utf-8")
    result = index.index([folder])
    assert len(result.added) == 10 and index.count() == 10
    assert sizes == [3, 3, 3, 1]


def test_a_version_stored_by_another_writer_meanwhile_is_not_deleted(tmp_path: Path) -> None:
    """Replacement removes only the versions that existed before this write (another process has its own lock)."""
    from wei_gen.tools.retriever import ExampleIndex, _metadata, describe_workflow

    embedder = HashEmbedder()
    index = ExampleIndex(tmp_path / "data", embedder=embedder)
    path = tmp_path / "shared.yaml"
    base = yaml.safe_load((EXAMPLES / "pcr.yaml").read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(dict(base, name="PCR v1")), encoding="utf-8")
    index.index([path])
    (v1,) = index.collection.get(include=[])["ids"]
    other = describe_workflow(dict(base, name="PCR written by another process"), str(path))
    assert other is not None
    real_embed = embedder.embed

    def embed_while_another_process_writes(texts: list[str]) -> Any:
        # Between our "what is stored" read and our upsert, another process stores its own version of the file.
        index.collection.upsert(
            ids=[other.id], embeddings=[real_embed([other.text])[0].tolist()], metadatas=[_metadata(other)]
        )
        return real_embed(texts)

    embedder.embed = embed_while_another_process_writes  # type: ignore[method-assign]
    path.write_text(yaml.safe_dump(dict(base, name="PCR v2")), encoding="utf-8")
    result = index.index([path])
    assert result.replaced == [str(path)]
    stored = set(index.collection.get(include=[])["ids"])
    assert v1 not in stored, "the version that existed before the write is replaced"
    assert other.id in stored, "a version written meanwhile by another writer must survive"
    assert len(stored) == 2


# ---------------------------------------------------------------------------------------------------------------------
# The CLI, in fresh processes
# ---------------------------------------------------------------------------------------------------------------------


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with no data dir from the environment."""
    return support_run_cli(*args, cwd=cwd, timeout=120, drop=("WEI_GEN_DATA_DIR",))


def test_cli_index_then_search_as_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    indexed = run_cli("index", EXAMPLES, "--data-dir", data_dir, "--format", "json", cwd=tmp_path)
    assert indexed.returncode == 0, indexed.stderr
    result = json.loads(indexed.stdout)
    assert sorted(result["added"]) == sorted(map(str, LAB_EXAMPLES))
    again = run_cli("index", EXAMPLES, "--data-dir", data_dir, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"indexed: 0 new, 0 updated, {len(LAB_EXAMPLES)} unchanged" in again.stdout

    found = run_cli(
        "examples", "search", "set up PCR reactions, then seal and thermocycle the plate", "-k", "2",
        "--data-dir", data_dir, "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "Traceback" not in found.stderr
    hits = json.loads(found.stdout)
    assert len(hits) == 2
    for hit in hits:
        assert 0.0 < hit["score"] <= 1.0 and 0.0 < hit["similarity"] <= 1.0
        assert hit["doc"]["source"] in {str(p) for p in LAB_EXAMPLES}
        assert hit["doc"]["steps"] and hit["doc"]["name"]
    assert hits[0]["score"] >= hits[1]["score"]
    assert Path(hits[0]["doc"]["source"]).name == "pcr.yaml", [h["doc"]["source"] for h in hits]


def test_cli_index_of_a_missing_path_is_one_error_line(tmp_path: Path) -> None:
    result = run_cli("index", "missing_path", "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "missing_path" in lines[0]
    assert not (tmp_path / "data").exists(), "a failed index run must not create the store"
