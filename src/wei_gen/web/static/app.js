// The wei-gen page: sessions, runs with live progress, artifacts with their checks inline, edits, chat, versions,
// the workflow picture and the run bundle. Plain ES modules, no build step; all text goes in as textContent.

import { Api, ApiError, getToken, setToken } from "./api.js";
import { renderDiff } from "./diff.js";
import { diagnosticElement, diagnosticLine, planStepLines, renderCode, workflowStepLines } from "./highlight.js";

const $ = (id) => document.getElementById(id);

/** Create an element: el("div", {class: "x", onclick: f, dataset: {a: 1}}, "text", child, ...). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// -----------------------------------------------------------------------------------------------------------------
// What the page knows
// -----------------------------------------------------------------------------------------------------------------

const PHASES = [
  { id: "plan", label: "Plan", agent: "framework", key: "generated_framework" },
  { id: "workflow", label: "Workflow", agent: "workflow", key: "generated_workflow" },
  { id: "code", label: "Code", agent: "code", key: "generated_code" },
  { id: "config", label: "Configs", agent: "config", key: "generated_config" },
];

const TABS = [
  { id: "plan", label: "Plan", agent: "framework", key: "generated_framework", lang: "json", report: "plan" },
  { id: "workflow", label: "Workflow", agent: "workflow", key: "generated_workflow", lang: "yaml", report: "workflow" },
  { id: "picture", label: "Picture" },
  { id: "code", label: "Code", agent: "code", key: "generated_code", lang: "python", report: "code" },
  { id: "tests", label: "Tests" },
  { id: "configs", label: "Configs", agent: "config", key: "generated_config", lang: "yaml", report: "config" },
  { id: "setup", label: "Setup" },
  { id: "versions", label: "Versions" },
];

const AGENT_NAMES = { framework: "plan", workflow: "workflow", code: "code", config: "configs", validator: "validator" };
const TEST_CODES = new Set(["code-tests-failed", "code-no-tests"]);

const app = {
  sessionId: null,
  history: null,
  tab: "workflow",
  editing: null, // {agent, text, error}
  chatDraft: {},
  chatBusy: null,
  chatOpen: {},
  watchToken: 0,
  liveNode: "",
  runLog: [],
  svg: { key: "", text: "", error: "" },
  versionPick: { agent: "workflow", a: null, b: null },
  panelKey: "",
  pendingDescription: {}, // what was sent, until the session's first checkpoint has it
  pictureFit: true, // the whole picture on screen; "actual size" for small text
};

const api = new Api({ onUnauthorized: (message) => askToken(`The server did not accept the token: ${message}`) });

// -----------------------------------------------------------------------------------------------------------------
// Messages and the token
// -----------------------------------------------------------------------------------------------------------------

function showMessage(kind, text) {
  const box = el(
    "div",
    { class: `message ${kind}` },
    el("span", { class: "message-text" }, text),
    el("button", { type: "button", class: "ghost small", "aria-label": "Dismiss", onclick: () => box.remove() }, "×"),
  );
  // One passing note at a time (errors stay until dismissed): the screen is short.
  for (const old of $("messages").querySelectorAll(".message:not(.error)")) old.remove();
  $("messages").append(box);
  if (kind !== "error") setTimeout(() => box.remove(), 5000);
  return box;
}

function clearMessages() {
  $("messages").replaceChildren();
}

function reportError(err, what) {
  if (err instanceof ApiError && err.status === 401) return; // the token dialog says it
  const status = err instanceof ApiError && err.status ? ` (${err.status})` : "";
  showMessage("error", `${what} failed${status}: ${err.message}`);
}

function askToken(reason) {
  const dialog = $("token-dialog");
  $("token-reason").textContent = reason || "";
  $("token-input").value = "";
  updateAuthState();
  if (!dialog.open) dialog.showModal();
  $("token-input").focus();
}

function updateAuthState() {
  const has = Boolean(getToken());
  $("auth-state").textContent = has ? "token set" : "no token";
  $("auth-state").className = `auth-state ${has ? "ok" : "missing"}`;
  $("signout").hidden = !has;
}

// -----------------------------------------------------------------------------------------------------------------
// Sessions
// -----------------------------------------------------------------------------------------------------------------

function statusOf(history) {
  const wg = history?.wei_gen || {};
  const status = wg.status || { state: "running", step: "", reason: "" };
  if (wg.running) return { ...status, state: "running" };
  // A session nobody has run yet has the default "running" status but no run in progress.
  if (status.state === "running") return { ...status, state: "idle" };
  return status;
}

function statusLabel(state) {
  return { running: "running", idle: "not run", infeasible: "infeasible", failed: "failed", done: "done" }[state] || state;
}

async function loadSessions() {
  const list = $("session-list");
  try {
    const data = await api.sessions();
    const items = data.sessions || [];
    list.replaceChildren(
      ...(items.length
        ? items.map((s) => {
            const state = s.running ? "running" : s.status?.state === "running" ? "idle" : s.status?.state || "idle";
            const when = s.updated_at ? new Date(s.updated_at).toLocaleString() : "";
            return el(
              "li",
              { class: s.session_id === app.sessionId ? "current" : "" },
              el(
                "button",
                { type: "button", class: "session-item", dataset: { session: s.session_id }, onclick: () => openSession(s.session_id) },
                el("span", { class: "session-desc" }, s.description || "(no description)"),
                el("span", { class: "session-meta" }, el("span", { class: `pill ${state}` }, statusLabel(state)), " ", when),
              ),
            );
          })
        : [el("li", { class: "muted" }, "No sessions yet.")]),
    );
  } catch (err) {
    list.replaceChildren(el("li", { class: "muted" }, "Could not load the sessions."));
    reportError(err, "Loading the sessions");
  }
}

async function openSession(id) {
  clearMessages();
  app.sessionId = id;
  app.editing = null;
  app.svg = { key: "", text: "", error: "" };
  app.panelKey = "";
  app.runLog = [];
  location.hash = `#/session/${encodeURIComponent(id)}`;
  try {
    showHistory(await api.history(id));
    if (app.history.wei_gen?.running) watch();
  } catch (err) {
    reportError(err, "Opening the session");
    if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
      app.sessionId = null;
      location.hash = "";
      render();
    }
  }
  loadSessions();
}

async function createSession(event) {
  event.preventDefault();
  const description = $("description").value.trim();
  if (!description) {
    showMessage("error", "Say what the experiment should do first.");
    return;
  }
  const body = { user_description: description, user_values: $("values").value, run: $("run-mode").value };
  const lab = $("lab-dir").value.trim();
  if (lab) body.lab_dir = lab;
  const button = $("create");
  button.disabled = true;
  try {
    const history = await api.create(body);
    app.pendingDescription[history.session_id] = description;
    clearMessages();
    app.sessionId = history.session_id;
    app.editing = null;
    app.runLog = [];
    app.svg = { key: "", text: "", error: "" };
    location.hash = `#/session/${encodeURIComponent(history.session_id)}`;
    showHistory(history);
    $("new-session").open = false;
    showMessage("info", "Session created.");
    if (history.wei_gen?.running) watch();
    loadSessions();
  } catch (err) {
    reportError(err, "Creating the session");
  } finally {
    button.disabled = false;
  }
}

// -----------------------------------------------------------------------------------------------------------------
// Runs and live progress
// -----------------------------------------------------------------------------------------------------------------

/** Poll the history every second while a run is in progress (and follow the run's events when the server has them). */
async function watch() {
  const token = ++app.watchToken;
  const id = app.sessionId;
  const abort = new AbortController();
  api
    .events(id, (event, data) => {
      if (token !== app.watchToken) return;
      if (event === "end") return;
      const node = data && typeof data === "object" ? data.node : "";
      if (node) {
        app.liveNode = node;
        app.runLog.push(node);
        renderBanner();
        renderProgress();
      }
    }, abort.signal)
    .catch(() => {});
  try {
    for (;;) {
      await sleep(1000);
      if (token !== app.watchToken || id !== app.sessionId) return;
      const history = await api.history(id);
      if (token !== app.watchToken || id !== app.sessionId) return;
      showHistory(history);
      if (!history.wei_gen?.running) break;
    }
  } catch (err) {
    reportError(err, "Following the run");
  } finally {
    abort.abort();
    if (token === app.watchToken) {
      app.liveNode = "";
      loadSessions();
    }
  }
}

async function runStep(step) {
  const id = app.sessionId;
  const h = app.history;
  if (!id || !h) return;
  clearMessages();
  if (step === "all" || step === "framework") {
    // Both start the experiment again from its description (the server's init on an existing session).
    const has = PHASES.some((p) => h[p.key]);
    const what = step === "all" ? "run every step again" : "make a new plan";
    if (has && !window.confirm(`This will ${what} from the description; the current artifacts are replaced (their versions stay listed). Go on?`)) return;
  }
  setBusy(true);
  try {
    if (step === "all" || step === "framework") {
      const body = { session_id: id, user_description: h.original_user_description, user_values: h.original_user_values, run: step };
      if (h.wei_gen?.lab_dir) body.lab_dir = h.wei_gen.lab_dir;
      showHistory(await api.create(body));
    } else showHistory(await api.step(id, step));
    await watch();
  } catch (err) {
    reportError(err, `Running ${step === "framework" ? "the plan" : step === "all" ? "all steps" : `the ${step} step`}`);
  } finally {
    setBusy(false);
  }
}

function setBusy(busy) {
  for (const button of document.querySelectorAll("[data-run]")) button.disabled = busy || Boolean(app.history?.wei_gen?.running);
}

// -----------------------------------------------------------------------------------------------------------------
// Rendering the session
// -----------------------------------------------------------------------------------------------------------------

function showHistory(history) {
  app.history = history;
  render();
}

function render() {
  const h = app.history;
  $("empty").hidden = Boolean(app.sessionId && h);
  $("session").hidden = !(app.sessionId && h);
  if (!h || !app.sessionId) return;
  const description = h.original_user_description || (app.pendingDescription[h.session_id] ?? "");
  $("session-description").textContent = description || "(no description yet)";
  $("session-description").title = description;
  $("session-id").textContent = h.session_id;
  $("session-lab").textContent = h.wei_gen?.lab_dir || "server default";
  const running = Boolean(h.wei_gen?.running);
  for (const button of document.querySelectorAll("[data-run]")) button.disabled = running;
  $("download").disabled = !h.generated_workflow;
  renderBanner();
  renderProgress();
  renderTabs();
  renderPanel();
}

function reportOf(name) {
  return app.history?.wei_gen?.reports?.[name] || null;
}

function counts(report) {
  const diags = report?.diagnostics || [];
  return {
    errors: diags.filter((d) => d.severity === "error").length,
    warnings: diags.filter((d) => d.severity === "warning").length,
  };
}

function checkSummary(report) {
  if (!report) return { text: "not checked", cls: "muted" };
  const { errors, warnings } = counts(report);
  if (errors) return { text: `✗ ${errors} error${errors > 1 ? "s" : ""}${warnings ? `, ${warnings} warning${warnings > 1 ? "s" : ""}` : ""}`, cls: "bad" };
  if (warnings) return { text: `✓ passes · ${warnings} warning${warnings > 1 ? "s" : ""}`, cls: "warn" };
  return { text: "✓ all checks pass", cls: "good" };
}

function renderBanner() {
  const h = app.history;
  const status = statusOf(h);
  const banner = $("banner");
  const parts = [];
  let cls = status.state;
  if (status.state === "running") {
    parts.push(el("span", { class: "spinner", "aria-hidden": "true" }), `Running… ${app.liveNode ? `now: ${app.liveNode}` : status.step ? `(${status.step})` : ""}`);
  } else if (status.state === "idle") {
    parts.push("Not run yet — use the buttons above to run the steps.");
  } else if (status.state === "infeasible") {
    parts.push(el("strong", {}, "Not feasible in this lab. "), status.reason || "");
  } else if (status.state === "failed") {
    parts.push(el("strong", {}, `Failed${status.step ? ` at ${status.step}` : ""}. `), status.reason || "");
  } else if (status.state === "done") {
    const bad = ["plan", "workflow", "code", "config"].filter((p) => counts(reportOf(p)).errors);
    if (bad.length) {
      cls = "attention";
      parts.push(el("strong", {}, "Done, but "), `the ${bad.join(", ")} ${bad.length > 1 ? "have" : "has"} errors now — see the tab${bad.length > 1 ? "s" : ""}.`);
    } else parts.push(el("strong", {}, "Done. "), "Every artifact passed its checks.");
  }
  const feas = h.wei_gen?.feasibility;
  if (feas && typeof feas.p_yes === "number") parts.push(el("span", { class: "feas" }, ` feasibility ${Math.round(feas.p_yes * 100)} %`));
  const stale = h.wei_gen?.stale || [];
  if (stale.length) parts.push(el("span", { class: "stale-note" }, ` · out of date after an edit: ${stale.map((a) => AGENT_NAMES[a] || a).join(", ")} — run their steps again`));
  banner.className = `banner ${cls}`;
  banner.dataset.state = status.state;
  banner.replaceChildren(...parts);
  if (h.wei_gen?.offline) {
    banner.append(el("div", { class: "offline" }, "Offline planner: the answers come from wei-gen's rule-based planner, not a language model — check them with care."));
  }
}

function phaseOfNode(node) {
  if (/feasib|plan|prepare/.test(node)) return "plan";
  if (/shortlist|retriev|workflow/.test(node)) return "workflow";
  if (/code|test/.test(node)) return "code";
  if (/config/.test(node)) return "config";
  return "";
}

function renderProgress() {
  const h = app.history;
  const status = statusOf(h);
  const stale = new Set(h.wei_gen?.stale || []);
  const livePhase = phaseOfNode(app.liveNode || status.step || "");
  const firstMissing = PHASES.find((p) => !h[p.key])?.id;
  const items = PHASES.map((p) => {
    const report = reportOf(p.id);
    let state = "todo";
    let note = "not yet";
    if (h[p.key]) {
      const { errors } = counts(report);
      state = errors ? "bad" : "good";
      note = errors ? `${errors} error${errors > 1 ? "s" : ""}` : "checked";
      if (stale.has(p.agent)) {
        state = "stale";
        note = "out of date";
      }
    } else if (report && counts(report).errors) {
      state = "bad";
      note = "failed";
    }
    if (status.state === "running" && (livePhase ? livePhase === p.id : firstMissing === p.id)) {
      state = "running";
      note = "working…";
    }
    return el(
      "li",
      { class: `phase ${state}`, dataset: { phase: p.id } },
      el("span", { class: "dot", "aria-hidden": "true" }, { good: "✓", bad: "✗", stale: "!", running: "", todo: "" }[state]),
      el("span", { class: "phase-label" }, p.label),
      el("span", { class: "phase-note" }, note),
    );
  });
  $("progress").replaceChildren(...items);
}

function renderTabs() {
  const h = app.history;
  const stale = new Set(h.wei_gen?.stale || []);
  const tabs = TABS.map((t) => {
    let badge = null;
    if (t.report && h[t.key]) {
      const { errors } = counts(reportOf(t.report));
      if (errors) badge = el("span", { class: "badge bad" }, String(errors));
      else if (stale.has(t.agent)) badge = el("span", { class: "badge stale" }, "!");
    }
    if (t.id === "picture" && h.generated_workflow && counts(reportOf("workflow")).errors) badge = el("span", { class: "badge bad" }, "!");
    return el(
      "button",
      {
        type: "button",
        role: "tab",
        class: `tab${app.tab === t.id ? " active" : ""}`,
        "aria-selected": app.tab === t.id ? "true" : "false",
        dataset: { tab: t.id },
        onclick: () => selectTab(t.id),
      },
      t.label,
      badge,
    );
  });
  $("tabs").replaceChildren(...tabs);
}

function selectTab(id) {
  if (app.editing && app.tab !== id) {
    showMessage("info", "Your edit is kept; come back to this tab to save or cancel it.");
  }
  app.tab = id;
  app.panelKey = "";
  renderTabs();
  renderPanel();
}

/** Re-render the panel only when what it shows changed, so reading, scrolling and typing are not disturbed. */
function renderPanel() {
  const h = app.history;
  const key = JSON.stringify([app.tab, app.sessionId, h.timestamp, h.wei_gen?.versions?.length, h.wei_gen?.reports, h.wei_gen?.running,
    app.editing?.agent, app.chatBusy, app.versionPick, app.svg.key, app.svg.error, h.wei_gen?.status, app.pictureFit]);
  if (key === app.panelKey) return;
  const panel = $("panel");
  const scroll = panel.scrollTop;
  app.panelKey = key;
  const tab = TABS.find((t) => t.id === app.tab) || TABS[0];
  let content;
  if (tab.agent) content = artifactPanel(tab);
  else if (tab.id === "picture") content = picturePanel();
  else if (tab.id === "tests") content = testsPanel();
  else if (tab.id === "setup") content = setupPanel();
  else content = versionsPanel();
  panel.replaceChildren(content);
  panel.scrollTop = scroll;
  scrollChats(); // the newest message in view
}

function emptyNote(text) {
  return el("div", { class: "empty-note" }, text);
}

function stepLinesFor(tab, text) {
  if (tab.id === "workflow") return workflowStepLines(text);
  if (tab.id === "plan") return planStepLines(text);
  return [];
}

function artifactPanel(tab) {
  const h = app.history;
  const text = h[tab.key] || "";
  const report = reportOf(tab.report);
  const editing = app.editing && app.editing.agent === tab.agent;
  const summary = checkSummary(text ? report : null);
  const stale = (h.wei_gen?.stale || []).includes(tab.agent);
  const toolbar = el(
    "div",
    { class: "toolbar" },
    el("span", { class: "artifact-name" }, tab.label),
    el("span", { class: `check ${summary.cls}`, dataset: { check: tab.report } }, summary.text),
    stale ? el("span", { class: "badge stale" }, "out of date after an earlier edit") : null,
    el("span", { class: "spacer" }),
    !editing && text ? el("button", { type: "button", class: "edit-btn", onclick: () => startEdit(tab.agent, text) }, "✎ Edit") : null,
  );
  const body = [];
  if (editing) body.push(editor(tab));
  else if (!text) body.push(emptyNote(h.wei_gen?.running ? "Being written…" : `No ${tab.label.toLowerCase()} yet: run its step.`));
  else {
    if (tab.id === "plan") body.push(planSummary(text, report));
    const stepLines = stepLinesFor(tab, text);
    body.push(problemList(report, text, stepLines));
    body.push(renderCode(text, tab.lang, report?.diagnostics || [], stepLines));
  }
  return el("div", { class: "artifact" }, toolbar, ...body, chatBox(tab.agent));
}

/** The errors in one list above the code, each a link to its line (the code can be long). */
function problemList(report, text, stepLines) {
  const errors = (report?.diagnostics || []).filter((d) => d.severity === "error");
  if (!errors.length) return null;
  return el(
    "ul",
    { class: "problems" },
    errors.map((d) => {
      const line = diagnosticLine(d, text, stepLines);
      const where = [line ? `line ${line}` : "", Number.isInteger(d.step_index) ? `step ${d.step_index + 1}` : ""].filter(Boolean).join(", ");
      return el(
        "li",
        {},
        el("span", { class: "mark" }, "✗ "),
        line ? el("button", { type: "button", class: "linklike", onclick: () => scrollToLine(line) }, where) : where,
        where ? ": " : "",
        d.message,
      );
    }),
  );
}

function scrollToLine(line) {
  const row = document.querySelector(`.codeview .line[data-line="${line}"]`);
  if (!row) return;
  row.scrollIntoView({ block: "center" });
  row.classList.add("flash");
  setTimeout(() => row.classList.remove("flash"), 1600);
}

function planSummary(text, report) {
  let plan;
  try {
    plan = JSON.parse(text);
  } catch {
    return null;
  }
  if (!plan || !Array.isArray(plan.steps)) return null;
  const bad = new Set((report?.diagnostics || []).filter((d) => d.severity === "error" && Number.isInteger(d.step_index)).map((d) => d.step_index));
  return el(
    "div",
    { class: "plan-summary" },
    el("div", { class: "plan-title" }, plan.title || "Plan", plan.summary ? el("span", { class: "muted" }, ` — ${plan.summary}`) : null),
    el(
      "ol",
      {},
      plan.steps.map((s, i) =>
        el(
          "li",
          { class: bad.has(i) ? "bad" : "" },
          el("code", {}, `${s.instrument}.${s.action}`),
          (s.args || []).length ? ` (${s.args.map((a) => `${a.name}=${a.value}`).join(", ")})` : "",
          s.purpose ? el("span", { class: "muted" }, ` — ${s.purpose}`) : null,
        ),
      ),
    ),
  );
}

// -- editing --------------------------------------------------------------------------------------------------------

function startEdit(agent, text) {
  app.editing = { agent, text, error: "" };
  app.panelKey = "";
  renderPanel();
  document.querySelector(".editor textarea")?.focus();
}

function editor(tab) {
  const area = el("textarea", {
    class: "edit-area",
    spellcheck: "false",
    "aria-label": `Edit the ${tab.label.toLowerCase()}`,
    oninput: (e) => {
      app.editing.text = e.target.value;
    },
  });
  area.value = app.editing.text;
  const error = el("div", { class: "edit-error", role: "alert" });
  if (app.editing.error) error.append(el("strong", {}, "Not saved: "), app.editing.error);
  const save = el("button", { type: "button", class: "primary save-btn", onclick: () => saveEdit(tab, save) }, "Save and check");
  return el(
    "div",
    { class: "editor" },
    el("div", { class: "muted small" }, "Your text is checked against the lab when you save; it becomes a new version and later artifacts are marked out of date."),
    area,
    error,
    el("div", { class: "edit-actions" }, save, el("button", { type: "button", onclick: cancelEdit }, "Cancel")),
  );
}

function cancelEdit() {
  app.editing = null;
  app.panelKey = "";
  renderPanel();
}

async function saveEdit(tab, button) {
  const { agent, text } = app.editing;
  button.disabled = true;
  button.textContent = "Checking…";
  try {
    const history = await api.update(app.sessionId, agent, text);
    app.editing = null;
    app.svg.key = "";
    showHistory(history);
    const { errors } = counts(reportOf(tab.report));
    showMessage(errors ? "warn" : "info", errors ? `Saved as a new version — the checks found ${errors} error${errors > 1 ? "s" : ""}, marked on ${errors > 1 ? "their lines" : "its line"}.` : "Saved as a new version; all checks pass.");
    document.querySelector(".codeview .line.has-error")?.scrollIntoView({ block: "center" });
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401 && app.editing) {
      // Refused (422) or any other failure: say why and keep the user's text.
      app.editing.error = err.status === 422 ? err.message : `${err.message} (${err.status || "no connection"})`;
      app.panelKey = "";
      renderPanel();
    } else reportError(err, "Saving the edit");
  } finally {
    button.disabled = false;
    button.textContent = "Save and check";
  }
}

// -- chat -----------------------------------------------------------------------------------------------------------

function chatBox(agent) {
  const turns = app.history[`${agent}_agent_ctx`] || [];
  const busy = app.chatBusy === agent;
  const input = el("textarea", {
    class: "chat-input",
    rows: "2",
    placeholder: `Ask the ${AGENT_NAMES[agent]} agent to change something, e.g. “use the peeler before imaging”`,
    "aria-label": `Message to the ${AGENT_NAMES[agent]} agent`,
    oninput: (e) => {
      app.chatDraft[agent] = e.target.value;
    },
    onkeydown: (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) sendChat(agent);
    },
  });
  input.value = app.chatDraft[agent] || "";
  input.disabled = busy;
  // Only the conversation (the generation prompts are long); the last few turns.
  const shown = turns.slice(-6).map((t) =>
    el("div", { class: `turn ${t.role}` }, el("span", { class: "who" }, t.role === "user" ? "you" : "agent"), said(t.content)),
  );
  const details = el(
    "details",
    {
      class: "chat",
      open: app.chatOpen[agent] || busy,
      ontoggle: (e) => {
        app.chatOpen[agent] = e.target.open;
      },
    },
    el("summary", {}, `Chat with the ${AGENT_NAMES[agent]} agent`, turns.length ? el("span", { class: "muted" }, ` · ${turns.length} messages`) : null),
    el("div", { class: "turns" }, shown.length ? shown : el("div", { class: "muted small" }, "No messages yet. A complete new version in the agent's answer is checked and stored like an edit.")),
    el(
      "div",
      { class: "chat-row" },
      input,
      el("button", { type: "button", class: "primary chat-send", disabled: busy, onclick: () => sendChat(agent) }, busy ? "Waiting…" : "Send"),
    ),
  );
  return details;
}

/** A chat message; the long ones (generation requests, whole artifacts) folded to their start. */
function said(content) {
  if (content.length <= 600) return el("div", { class: "said" }, content);
  return el(
    "details",
    { class: "said long" },
    el("summary", {}, `${content.slice(0, 240).trimEnd()}… `, el("span", { class: "muted" }, `(${content.length.toLocaleString()} characters — show all)`)),
    el("div", { class: "full" }, content),
  );
}

function scrollChats() {
  for (const box of document.querySelectorAll(".chat .turns")) box.scrollTop = box.scrollHeight;
}

async function sendChat(agent) {
  const text = (app.chatDraft[agent] || "").trim();
  if (!text || app.chatBusy) return;
  app.chatBusy = agent;
  app.chatOpen[agent] = true;
  app.panelKey = "";
  renderPanel();
  try {
    const history = await api.chat(app.sessionId, agent, text);
    app.chatDraft[agent] = "";
    app.svg.key = "";
    app.chatBusy = null;
    showHistory(history);
    if (history.reply) showMessage("info", "The agent answered (see the chat below the artifact).");
  } catch (err) {
    reportError(err, "The chat");
  } finally {
    app.chatBusy = null;
    app.panelKey = "";
    renderPanel();
  }
}

// -- the picture ----------------------------------------------------------------------------------------------------

function pictureKey() {
  const h = app.history;
  return JSON.stringify([app.sessionId, h.wei_gen?.versions?.length, h.generated_workflow?.length, reportOf("workflow")?.diagnostics?.length]);
}

function picturePanel() {
  const h = app.history;
  const wrap = el("div", { class: "picture" });
  if (!h.generated_workflow) {
    wrap.append(emptyNote(h.wei_gen?.running ? "The workflow is being written…" : "No workflow yet: run the workflow step."));
    return wrap;
  }
  const key = pictureKey();
  if (app.svg.key !== key) {
    wrap.append(emptyNote("Drawing…"));
    loadPicture(key);
    return wrap;
  }
  if (app.svg.error) {
    wrap.append(el("div", { class: "message error" }, `The picture could not be loaded: ${app.svg.error}`));
    return wrap;
  }
  const fit = app.pictureFit;
  wrap.append(
    el(
      "div",
      { class: "toolbar" },
      el("span", { class: "muted small" }, "Hover a red step for why; click a step or an arrow to see it in the workflow."),
      el("span", { class: "spacer" }),
      el(
        "button",
        {
          type: "button",
          class: "fit-toggle",
          onclick: () => {
            app.pictureFit = !app.pictureFit;
            app.panelKey = "";
            renderPanel();
          },
        },
        fit ? "Actual size" : "Fit to screen",
      ),
    ),
  );
  const svg = parseSvg(app.svg.text);
  if (svg) {
    svg.addEventListener("click", (event) => {
      const target = event.target.closest("[data-step],[data-steps]");
      if (!target) return;
      const step = Number((target.dataset.step || target.dataset.steps || "").split(",")[0]);
      if (step) showWorkflowStep(step);
    });
    wrap.append(el("div", { class: `svg-holder${fit ? " fit" : ""}` }, svg));
  }
  return wrap;
}

async function loadPicture(key) {
  const id = app.sessionId;
  try {
    const text = await api.flowSvg(id);
    if (id !== app.sessionId) return;
    app.svg = { key, text, error: "" };
  } catch (err) {
    if (id !== app.sessionId) return;
    app.svg = { key, text: "", error: err.message };
  }
  renderPanel();
}

/** The server's SVG as a node, without anything executable (it is ours, but a picture must never run code). */
function parseSvg(text) {
  const doc = new DOMParser().parseFromString(text, "image/svg+xml");
  const root = doc.documentElement;
  if (!root || root.nodeName !== "svg") return null;
  for (const bad of root.querySelectorAll("script, foreignObject")) bad.remove();
  for (const node of root.querySelectorAll("*")) {
    for (const attr of [...node.attributes]) if (/^on/i.test(attr.name) || /javascript:/i.test(attr.value)) node.removeAttribute(attr.name);
  }
  // Fill the panel's width, but never larger than drawn (text stays at its intended size or smaller).
  const natural = Number(root.getAttribute("width")) || 0;
  root.removeAttribute("width");
  root.removeAttribute("height");
  if (natural) root.style.maxWidth = `${natural}px`;
  root.classList.add("flow-svg");
  return document.importNode(root, true);
}

function showWorkflowStep(step) {
  selectTab("workflow");
  const line = workflowStepLines(app.history.generated_workflow || "")[step - 1];
  if (line) scrollToLine(line);
}

// -- tests, setup, versions -----------------------------------------------------------------------------------------

function testsPanel() {
  const h = app.history;
  const tests = h.wei_gen?.tests || "";
  const report = reportOf("code");
  const wrap = el("div", { class: "artifact" }, el("div", { class: "toolbar" }, el("span", { class: "artifact-name" }, "Tests of the experiment code")));
  if (!tests) {
    wrap.append(emptyNote("No tests yet: the code step writes them (independently of the script) and runs them against a simulated lab."));
    return wrap;
  }
  const testDiags = (report?.diagnostics || []).filter((d) => TEST_CODES.has(d.code));
  const others = (report?.diagnostics || []).filter((d) => d.severity === "error" && !TEST_CODES.has(d.code));
  let verdict;
  if (!report) verdict = el("div", { class: "result muted" }, "Not run yet.");
  else if (testDiags.some((d) => d.severity === "error")) verdict = el("div", { class: "result bad" }, "✗ The tests failed against the simulated lab:");
  else if (others.length) verdict = el("div", { class: "result warn" }, "The tests did not run: the script failed earlier checks (see the Code tab).");
  else verdict = el("div", { class: "result good" }, "✓ The script ran in the simulated lab and its tests passed.");
  wrap.append(verdict);
  for (const d of testDiags) wrap.append(diagnosticElement(d));
  wrap.append(renderCode(tests, "python", []));
  return wrap;
}

function setupPanel() {
  const h = app.history;
  const setup = h.wei_gen?.setup || "";
  const flow = h.wei_gen?.flow;
  const wrap = el("div", { class: "artifact" }, el("div", { class: "toolbar" }, el("span", { class: "artifact-name" }, "Initial lab setup")));
  wrap.append(el("div", { class: "muted small" }, "What must be in place before the run: from the labware-flow check of the workflow (and the configs, once written)."));
  if (flow && flow.verdict === "unsat") wrap.append(el("div", { class: "result bad" }, "✗ The labware flow is impossible as written, so no setup can be given; see the Workflow tab."));
  wrap.append(setup ? markdownLite(setup) : emptyNote("No setup yet: it follows from a checked workflow."));
  return wrap;
}

/** The little Markdown the setup text uses (headings, bullets, `code`), as DOM nodes; anything else stays text. */
function markdownLite(text) {
  const box = el("div", { class: "setup-text" });
  let list = null;
  const inline = (line) =>
    line.split(/(`[^`]+`)/).map((part) => (part.startsWith("`") && part.endsWith("`") && part.length > 1 ? el("code", {}, part.slice(1, -1)) : part));
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    const bullet = /^\s*[-*]\s+(.*)$/.exec(line);
    if (bullet) {
      if (!list) box.append((list = el("ul")));
      list.append(el("li", {}, inline(bullet[1])));
      continue;
    }
    list = null;
    if (heading) box.append(el(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2])));
    else if (line) box.append(el("p", {}, inline(line)));
  }
  return box;
}

function versionsPanel() {
  const versions = app.history.wei_gen?.versions || [];
  const agents = [...new Set(versions.map((v) => v.agent))];
  const pick = app.versionPick;
  if (!agents.includes(pick.agent)) pick.agent = agents[0] || "workflow";
  const mine = versions.filter((v) => v.agent === pick.agent);
  const numbers = mine.map((v) => v.number);
  if (!numbers.includes(pick.b)) pick.b = numbers[numbers.length - 1] ?? null;
  if (!numbers.includes(pick.a) || pick.a === pick.b) pick.a = numbers.length > 1 ? numbers[numbers.length - 2] : null;
  const wrap = el("div", { class: "artifact versions" });
  wrap.append(
    el(
      "div",
      { class: "toolbar" },
      el("span", { class: "artifact-name" }, "Versions"),
      el(
        "select",
        {
          "aria-label": "Artifact",
          onchange: (e) => {
            app.versionPick = { agent: e.target.value, a: null, b: null };
            renderPanel();
          },
        },
        agents.map((a) => el("option", { value: a, selected: a === pick.agent }, AGENT_NAMES[a] || a)),
      ),
      el("span", { class: "muted small" }, "Pick two versions (A and B) to see what changed."),
    ),
  );
  if (!mine.length) {
    wrap.append(emptyNote("No versions yet."));
    return wrap;
  }
  const radio = (side, number) =>
    el("input", {
      type: "radio",
      name: `version-${side}`,
      "aria-label": `${side.toUpperCase()}: version ${number}`,
      checked: pick[side] === number,
      onchange: () => {
        app.versionPick = { ...pick, [side]: number };
        renderPanel();
      },
    });
  wrap.append(
    el(
      "table",
      { class: "version-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "A"), el("th", {}, "B"), el("th", {}, "version"), el("th", {}, "made by"), el("th", {}, "checks"), el("th", {}, "size"))),
      el(
        "tbody",
        {},
        mine.map((v) =>
          el(
            "tr",
            { dataset: { version: String(v.number) } },
            el("td", {}, radio("a", v.number)),
            el("td", {}, radio("b", v.number)),
            el("td", {}, `#${v.number}`),
            el("td", {}, { generated: "generated", chat: "chat", edit: "your edit" }[v.origin] || v.origin),
            el("td", { class: v.ok ? "good" : "bad" }, v.ok ? "✓ pass" : "✗ errors"),
            el("td", { class: "muted" }, `${v.content.split("\n").length} lines`),
          ),
        ),
      ),
    ),
  );
  const a = mine.find((v) => v.number === pick.a);
  const b = mine.find((v) => v.number === pick.b);
  if (a && b) wrap.append(renderDiff(a.content, b.content, `#${a.number}`, `#${b.number}`));
  else if (b) wrap.append(el("div", { class: "muted small" }, "Only one version so far."));
  return wrap;
}

// -----------------------------------------------------------------------------------------------------------------
// The bundle
// -----------------------------------------------------------------------------------------------------------------

async function downloadBundle() {
  const id = app.sessionId;
  const button = $("download");
  button.disabled = true;
  try {
    const blob = await api.bundle(id);
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: `wei-gen-${id}.zip` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    showMessage("info", `Bundle downloaded: wei-gen-${id}.zip`);
  } catch (err) {
    reportError(err, "Downloading the bundle");
  } finally {
    button.disabled = !app.history?.generated_workflow;
  }
}

// -----------------------------------------------------------------------------------------------------------------
// Start
// -----------------------------------------------------------------------------------------------------------------

function start() {
  $("create-form").addEventListener("submit", createSession);
  $("refresh-sessions").addEventListener("click", loadSessions);
  $("download").addEventListener("click", downloadBundle);
  $("signout").addEventListener("click", () => askToken("Enter another token (the current one stays until you save)."));
  for (const button of document.querySelectorAll("[data-run]")) button.addEventListener("click", () => runStep(button.dataset.run));
  $("token-form").addEventListener("submit", (event) => {
    const token = $("token-input").value.trim();
    if (!token) {
      event.preventDefault();
      return;
    }
    setToken(token);
    updateAuthState();
    clearMessages();
    loadSessions();
    const fromHash = /^#\/session\/(.+)$/.exec(location.hash);
    if (app.sessionId) openSession(app.sessionId);
    else if (fromHash) openSession(decodeURIComponent(fromHash[1]));
  });
  $("token-dialog").addEventListener("cancel", (event) => {
    if (!getToken()) event.preventDefault(); // nothing works without a token
  });
  updateAuthState();
  render();
  if (!getToken()) {
    askToken("");
    return;
  }
  loadSessions();
  const fromHash = /^#\/session\/(.+)$/.exec(location.hash);
  if (fromHash) openSession(decodeURIComponent(fromHash[1]));
}

start();
