"""``wei-gen run / sessions / refine / serve`` as a user runs them: subprocesses against the scripted model server."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.scripted_openai import Reply, ScriptedOpenAI, rule
from tests.support.serving import LAB_DIR, free_port, tagged_rules, tagged_scenario, write_wei_gen_config

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    no = rule(
        Reply.text("no", logprobs=("no", [("no", math.log(0.95)), ("yes", math.log(0.05))])),
        when=lambda body: (
            "<task>feasibility</task>" in json.dumps(body["messages"]) and "centrifuge" in json.dumps(body)
        ),
        repeat=True,
    )
    why = rule(
        Reply.data({"missing_capability": "a centrifuge", "reason": "The lab has no centrifuge."}),
        contains="<task>feasibility-explanation</task>",
        repeat=True,
    )
    with ScriptedOpenAI([no, why, *tagged_rules("cli")]) as srv:
        yield srv


@pytest.fixture
def env(model: ScriptedOpenAI, tmp_path: Path) -> dict[str, str]:
    config = write_wei_gen_config(tmp_path / "wei-gen.yaml", [])
    scrub = ("OPENAI_API_KEY", "WEI_GEN_API_TOKEN", "WEI_GEN_CONFIG", "WEI_GEN_CHECKPOINTER", "WEI_GEN_LAB")
    base = {k: v for k, v in os.environ.items() if k not in scrub}
    return {**base, "OPENAI_BASE_URL": model.base_url, "WEI_GEN_DATA_DIR": str(tmp_path / "data"),
            "CONFIG": str(config)}  # fmt: skip


def wei_gen(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    config = ["--config", env["CONFIG"]] if args[0] in ("run", "refine") or args[:1] == ("sessions",) else []
    cmd = [sys.executable, "-m", "wei_gen", *args, *config]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_run_streams_progress_writes_the_bundle_and_sessions_commands_see_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    scn = tagged_scenario("cli")
    out = tmp_path / "bundle"
    done = wei_gen(env, "run", "--text", scn.description, "--values", "temperature: 175", "--lab", str(LAB_DIR),
                   "--out", str(out), "--session", "cli-run-1")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("✓ check_feasibility: feasibility P(yes) = 0.90", "✓ check_workflow", "✓ finish: done"):
        assert line in done.stdout
    assert (
        "! check_workflow: workflow checked (problems in workflow)" in done.stdout
    )  # the scripted first workflow is wrong, the retry fixes it
    assert "done (session cli-run-1)" in done.stdout
    assert yaml.safe_load((out / "workflow.yaml").read_text())["name"] == "Seal cli"
    assert (out / "experiment.py").is_file()

    listed = wei_gen(env, "sessions", "list")
    assert listed.returncode == 0 and "cli-run-1" in listed.stdout and "done" in listed.stdout
    shown = wei_gen(env, "sessions", "show", "cli-run-1")
    assert "done" in shown.stdout and "workflow check: ok" in shown.stdout
    history = json.loads(wei_gen(env, "sessions", "history", "cli-run-1").stdout)
    assert history["session_id"] == "cli-run-1" and "Seal cli" in history["generated_workflow"]
    exported = tmp_path / "exported"
    assert wei_gen(env, "sessions", "export", "cli-run-1", "--out", str(exported)).returncode == 0
    assert (exported / "workflow.yaml").read_text() == (out / "workflow.yaml").read_text()

    reply = wei_gen(env, "refine", "cli-run-1", "workflow", "is the order right?")
    assert reply.returncode == 0 and "Looks right to me (cli)." in reply.stdout
    wrong = wei_gen(env, "refine", "cli-run-1", "wizard", "hello")
    assert wrong.returncode == 2 and "unknown agent" in wrong.stderr
    missing = wei_gen(env, "sessions", "show", "no-such-session")
    assert missing.returncode == 2 and "no session" in missing.stderr
    path_like = wei_gen(env, "sessions", "history", "../etc")
    assert path_like.returncode == 2 and "invalid session id" in path_like.stderr


def test_run_exit_codes_for_infeasible_and_bad_input(env: dict[str, str], tmp_path: Path) -> None:
    infeasible = wei_gen(env, "run", "--text", "Spin the plate in a centrifuge at 4000 rpm", "--lab", str(LAB_DIR))
    assert infeasible.returncode == 1, infeasible.stdout + infeasible.stderr
    assert "infeasible" in infeasible.stdout and "centrifuge" in infeasible.stdout
    description = tmp_path / "experiment.txt"
    description.write_text("seal a plate", encoding="utf-8")
    both = wei_gen(env, "run", str(description), "--text", "seal a plate")
    assert both.returncode == 2 and "one of them" in both.stderr
    assert wei_gen(env, "run").returncode == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    assert "description is empty" in wei_gen(env, "run", str(empty)).stderr
    no_lab = wei_gen(env, "run", "--text", "seal a plate", "--lab", str(tmp_path))
    assert no_lab.returncode == 2 and "cannot load the lab" in no_lab.stderr
    assert "Traceback" not in no_lab.stderr + both.stderr + infeasible.stderr


def test_serve_starts_the_server_with_the_page_and_token_auth(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "served"
    cmd = [sys.executable, "-m", "wei_gen", "serve", "--port", str(port), "--data-dir", str(data)]
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(cmd, env={**env, "WEI_GEN_API_TOKEN": "serve-token"}, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("wei-gen serve did not come up:\n" + (tmp_path / "serve.log").read_text())
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "html" in page.headers["content-type"]
        assert httpx.get(f"{base}/sessions").status_code == 401
        listed = httpx.get(f"{base}/sessions", headers={"Authorization": "Bearer serve-token"})
        assert listed.status_code == 200 and listed.json() == {"sessions": []}
        assert (data / "langgraph.json").is_file() and (data / ".langgraph_api").is_dir()  # runs in the data dir
        busy = wei_gen(env, "serve", "--port", str(port), "--data-dir", str(data))
        assert busy.returncode == 2 and "in use" in busy.stderr
        assert "offline planner" not in busy.stdout + (tmp_path / "serve.log").read_text()  # a model is configured
        keyless = {k: v for k, v in env.items() if k != "OPENAI_BASE_URL"}
        offline = wei_gen(keyless, "serve", "--port", str(port), "--data-dir", str(data))
        assert offline.returncode == 2 and "offline planner: no model configured" in offline.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
