"""The web page in a real browser: Playwright drives Debian's chromium against the real server and scripted model.

One scenario, as a scientist would use the page on a laptop screen (1366×768): enter the API token (a wrong one
first), create a session and run every step with live progress, look at the workflow and its picture, edit the
workflow to call an action the peeler does not have and see it flagged on its line and in red in the picture, try
an edit that is not YAML at all (refused, text kept), fix the workflow, compare versions, chat with the workflow
agent, download the run bundle and check the zip. Screenshots of each stage go to ``tests/browser/screenshots/``
(or ``$WEI_GEN_SCREENSHOTS``); the test prints where.

Without /usr/bin/chromium the test is skipped with the reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.browser.scenario import CHAT_REPLY, DESCRIPTION, VALUES, scripted_rules
from tests.browser.server import web_server
from tests.support.scripted_openai import ScriptedOpenAI
from tests.support.serving import ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(os.environ.get("WEI_GEN_SCREENSHOTS") or Path(__file__).with_name("screenshots"))
TOKEN = "lab-token-for-the-browser-test"
RUN_TIMEOUT_MS = 300_000
"""The whole pipeline (with the sandboxed code run) on a loaded 2-core machine."""
UI_TIMEOUT_MS = 60_000


def _require_chromium() -> Any:
    """The Playwright sync API, or skip (fail under CI=true) when chromium or Playwright is missing."""
    missing = ""
    if not CHROMIUM.is_file():
        missing = f"Debian chromium not found at {CHROMIUM} (apt-get install chromium; Playwright cannot download one)"
    else:
        try:
            from playwright import sync_api
        except ImportError:
            missing = "the playwright Python package is not installed (pip install playwright)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} — required under CI=true")
        pytest.skip(missing)
    return sync_api


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    _require_chromium()
    tmp = tmp_path_factory.mktemp("web")
    with (
        ScriptedOpenAI(scripted_rules()) as model,
        web_server(tmp / "server", model, TOKEN) as base,
    ):
        yield base


@pytest.fixture
def page(base_url: str, tmp_path: Path) -> Iterator[Any]:
    sync_api = _require_chromium()
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile: no stored token, nothing from earlier runs
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1366, "height": 768},
            accept_downloads=True,
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


class Shots:
    """Numbered screenshots of the stages."""

    def __init__(self, page: Any):
        self.page, self.n = page, 0
        if SHOTS.exists():
            shutil.rmtree(SHOTS)
        SHOTS.mkdir(parents=True)

    def __call__(self, name: str) -> Path:
        self.n += 1
        path = SHOTS / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        return path


def test_scientist_session(page: Any, base_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sync_api = _require_chromium()
    expect = sync_api.expect
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            # The browser logs every 401/422 answer itself; the page shows those on purpose.
            if msg.type == "error" and not re.search(r"status of (401|422)", msg.text)
            else None
        ),
    )
    shot = Shots(page)
    with capsys.disabled():
        sys.stdout.write(f"\nscreenshots: {SHOTS}\n")

    # -- 1. the token: a wrong one is refused with a clear message, the right one is kept -----------------------
    page.goto(f"{base_url}/")
    dialog = page.locator("#token-dialog")
    expect(dialog).to_be_visible()
    shot("token-asked")
    page.fill("#token-input", "not-a-token")
    page.click("#token-save")
    expect(page.locator("#token-reason")).to_contain_text("did not accept the token")
    expect(dialog).to_be_visible()
    shot("token-refused")
    page.fill("#token-input", TOKEN)
    page.click("#token-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#session-list")).to_contain_text("No sessions yet")
    assert page.evaluate("localStorage.getItem('wei-gen-token')") == TOKEN
    assert TOKEN not in page.content()  # the token is in storage, never in the page

    # -- 2. create a session and run every step, with live progress ---------------------------------------------
    page.fill("#description", DESCRIPTION)
    page.fill("#values", VALUES)
    page.select_option("#run-mode", "all")
    shot("new-experiment")
    page.click("#create")
    banner = page.locator("#banner")
    expect(banner).to_have_attribute("data-state", "running")
    expect(page.locator("#progress .phase.running")).to_have_count(1)
    shot("running")
    expect(banner).to_have_attribute("data-state", "done", timeout=RUN_TIMEOUT_MS)
    expect(banner).to_contain_text("Every artifact passed its checks")
    expect(page.locator("#progress .phase.good")).to_have_count(4)
    expect(page.locator("#session-description")).to_have_text(DESCRIPTION)
    session_id = page.locator("#session-id").inner_text()
    expect(page.locator(f'#session-list [data-session="{session_id}"]')).to_contain_text("done")

    # The workflow with highlighting and its check result.
    page.click('[data-tab="workflow"]')
    expect(page.locator('[data-check="workflow"]')).to_have_text("✓ all checks pass")
    expect(page.locator(".codeview .t-key", has_text="flowdef")).to_have_count(1)
    expect(page.locator(".codeview .line.has-error")).to_have_count(0)
    shot("workflow-done")
    for tab, text in (("plan", "sciclops.get_plate"), ("code", "ExperimentClient"), ("configs", "commands")):
        page.click(f'[data-tab="{tab}"]')
        expect(page.locator("#panel")).to_contain_text(text)
        shot(f"tab-{tab}")
    page.click('[data-tab="tests"]')
    expect(page.locator("#panel .result")).to_contain_text("tests passed")
    shot("tab-tests")
    page.click('[data-tab="setup"]')
    expect(page.locator("#panel .setup-text")).to_be_visible()
    shot("setup")

    # The picture: instruments, numbered plate moves, nothing red.
    page.click('[data-tab="picture"]')
    svg = page.locator("#panel svg.flow-svg")
    expect(svg).to_be_visible()
    expect(svg.locator('g.node[data-module="peeler"]')).to_have_count(1)
    expect(svg.locator('g.move[data-source="biometra"][data-target="peeler"]')).to_have_count(1)
    expect(svg.locator(".fail")).to_have_count(0)
    shot("picture")
    no_sideways_scroll(page)

    # -- 3. edit the workflow: an action the peeler does not have is flagged on its line and in the picture --------
    page.click('[data-tab="workflow"]')
    page.click(".edit-btn")
    area = page.locator("textarea.edit-area")
    original = area.input_value()
    assert "action: peel\n" in original
    broken = original.replace("action: peel\n", "action: depeel\n")
    area.fill(broken)
    page.click(".save-btn")
    expect(page.locator('[data-check="workflow"]')).to_contain_text("✗ 1 error", timeout=RUN_TIMEOUT_MS)
    bad_line = page.locator(".codeview .line.has-error")
    expect(bad_line).to_have_count(1)
    expect(bad_line).to_contain_text("action: depeel")
    note = page.locator(".codeview .line.has-error + .line-notes .diag.error")
    expect(note).to_contain_text("depeel")
    expect(note).to_contain_text("did you mean 'peel'")
    expect(banner).to_have_attribute("data-state", "done")
    expect(banner).to_contain_text("the workflow has errors")
    expect(page.locator('#progress .phase[data-phase="workflow"]')).to_have_class(re.compile(r"\bbad\b"))
    shot("edit-flagged")
    page.click('[data-tab="picture"]')
    expect(svg.locator('g.node.fail[data-module="peeler"]')).to_have_count(1)
    expect(svg.locator("text.step.fail")).to_contain_text("depeel")
    shot("picture-flagged")

    # A text that is not a workflow at all is refused; the reason is shown and nothing typed is lost.
    page.click('[data-tab="workflow"]')
    page.click(".edit-btn")
    not_yaml = "name: PCR\nflowdef: [\n"
    area.fill(not_yaml)
    page.click(".save-btn")
    expect(page.locator(".edit-error")).to_contain_text("not accepted", timeout=RUN_TIMEOUT_MS)
    assert area.input_value() == not_yaml
    shot("edit-refused")

    # -- 4. fix it ------------------------------------------------------------------------------------------------
    area.fill(broken.replace("action: depeel\n", "action: peel\n"))
    page.click(".save-btn")
    expect(page.locator('[data-check="workflow"]')).to_have_text("✓ all checks pass", timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".codeview .line.has-error")).to_have_count(0)
    expect(banner).to_contain_text("Every artifact passed its checks")
    shot("edit-fixed")
    page.click('[data-tab="picture"]')
    expect(svg.locator(".fail")).to_have_count(0)

    # Versions: generated, the broken edit, the fix; the diff between the last two shows the one changed line.
    page.click('[data-tab="versions"]')
    rows = page.locator(".version-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("✗ errors")
    expect(page.locator(".diff-head")).to_contain_text("1 line(s) removed, 1 added")
    expect(page.locator(".dl.del")).to_have_text(re.compile(r"-\s+action: depeel"))
    expect(page.locator(".dl.add")).to_have_text(re.compile(r"\+\s+action: peel"))
    shot("versions-diff")

    # -- 5. chat with the workflow agent ---------------------------------------------------------------------------
    page.click('[data-tab="workflow"]')
    page.click(".chat summary")
    page.fill(".chat-input", "Does the peeler need any settings?")
    page.click(".chat-send")
    expect(page.locator(".chat .turn.assistant").last).to_contain_text(CHAT_REPLY, timeout=RUN_TIMEOUT_MS)
    expect(page.locator(".chat .turn.user").last).to_contain_text("Does the peeler need any settings?")
    page.locator(".chat").scroll_into_view_if_needed()
    shot("chat")

    # -- 6. download the bundle ------------------------------------------------------------------------------------
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == f"wei-gen-{session_id}.zip"
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as bundle:
        names = set(bundle.namelist())
        assert {"workflow.yaml", "experiment.py", "setup.md", "report.md"} <= names, names
        assert "configs/ot2_pcr_protocol.yaml" in names
        workflow = yaml.safe_load(bundle.read("workflow.yaml"))
    assert [s["action"] for s in workflow["flowdef"] if s["module"] == "peeler"] == ["peel"]
    shot("bundle-downloaded")

    # -- 7. a reload keeps the token and reopens the session ---------------------------------------------------------
    page.reload()
    expect(page.locator("#token-dialog")).to_be_hidden()
    expect(page.locator("#session-id")).to_have_text(session_id)
    expect(banner).to_have_attribute("data-state", "done")
    assert problems == [], problems


def no_sideways_scroll(page: Any) -> None:
    """The page fits a 1366 px wide screen: no horizontal scroll bar on the document."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"the page is {width} px wide"


MODULE_CHECKS = """
async ([texts]) => {
  const { diffLines } = await import("./static/diff.js");
  const { tokenize, workflowStepLines, planStepLines } = await import("./static/highlight.js");
  const out = { diffBad: [], tokenBad: [], stepLines: {}, planLines: [] };
  // The diff: both sides are rebuilt from the operations, and the kept lines are a longest common subsequence.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let k = 0; k < 1500; k += 1) {
    const make = () => Array.from({ length: Math.floor(rand() * 9) }, () => "abc"[Math.floor(rand() * 3)]);
    const a = make(), b = make();
    const ops = diffLines(a, b);
    const L = Array.from({ length: a.length + 1 }, () => Array(b.length + 1).fill(0));
    for (let i = a.length - 1; i >= 0; i -= 1)
      for (let j = b.length - 1; j >= 0; j -= 1)
        L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const left = ops.filter((o) => o[0] !== "+").map((o) => o[1]).join("");
    const right = ops.filter((o) => o[0] !== "-").map((o) => o[1]).join("");
    const kept = ops.filter((o) => o[0] === " ").length;
    if (left !== a.join("") || right !== b.join("") || kept !== L[0][0]) out.diffBad.push([a.join(""), b.join("")]);
  }
  // The highlighter never changes the text: every line's tokens put together are the line.
  for (const [name, lang, text] of texts) {
    const lines = tokenize(lang, text);
    text.split("\\n").forEach((line, i) => {
      const joined = lines[i].map((t) => t[1]).join("");
      if (joined !== line) out.tokenBad.push([name, i + 1, line, joined]);
    });
    if (lang === "yaml") out.stepLines[name] = workflowStepLines(text);
    if (lang === "json") out.planLines = planStepLines(text);
  }
  return out;
}
"""


def test_highlighter_and_diff_modules_in_the_browser(page: Any, base_url: str) -> None:
    """The page's own modules, run in chromium.

    The diff is minimal and lossless, highlighting keeps every character, and a diagnostic that names only a step
    lands on the line the validator gives that step.
    """
    from tests.integration.test_pipeline_e2e import pcr_plan
    from wei_gen.yamlio import parse_yaml

    examples = sorted((ROOT / "examples" / "labs" / "rpl_like" / "examples").glob("*.yaml"))
    texts = [[p.name, "yaml", p.read_text(encoding="utf-8")] for p in examples]
    texts += [
        [p.name, "python", p.read_text(encoding="utf-8")] for p in sorted((ROOT / "src" / "wei_gen").glob("*.py"))
    ]
    plan = pcr_plan()
    texts.append(["plan.json", "json", plan.model_dump_json(indent=2)])
    page.goto(f"{base_url}/")
    result = page.evaluate(MODULE_CHECKS, [texts])
    assert result["diffBad"] == []
    assert result["tokenBad"] == []
    for path in examples:
        expected = parse_yaml(path.read_text(encoding="utf-8"), path.name).step_lines
        assert result["stepLines"][path.name] == expected, path.name
    plan_json = plan.model_dump_json(indent=2).splitlines()
    assert len(result["planLines"]) == len(plan.steps)
    assert all(plan_json[n - 1].strip() == "{" for n in result["planLines"])
