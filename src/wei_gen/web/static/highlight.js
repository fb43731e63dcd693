// A small syntax highlighter for the artifacts' languages (YAML, Python, JSON) and a code view with the
// checks' diagnostics shown under the lines they are about. Written here rather than vendored: three line-based
// tokenizers are ~150 lines, need no licence file or network, and the code view needs line-level control anyway.
// Everything is built with DOM nodes and textContent: artifact text is never parsed as HTML.

const PY_KEYWORDS = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for from " +
    "global if import in is lambda nonlocal not or pass raise return try while with yield match case").split(" "),
);
const PY_BUILTINS = new Set(
  "print len range dict list set tuple str int float bool open isinstance enumerate zip sorted min max sum any all super".split(" "),
);

function push(tokens, cls, text) {
  if (text) tokens.push([cls, text]);
}

/** A quoted string starting at i (either quote); returns its end index (exclusive). */
function stringEnd(line, i) {
  const quote = line[i];
  let j = i + 1;
  while (j < line.length) {
    if (line[j] === "\\" && quote === '"') j += 2;
    else if (line[j] === quote) {
      if (quote === "'" && line[j + 1] === "'") j += 2; // YAML's '' escape
      else return j + 1;
    } else j += 1;
  }
  return line.length;
}

function scalarClass(text) {
  const t = text.trim();
  if (/^[-+]?(\d[\d_]*\.?\d*([eE][-+]?\d+)?|\.\d+)$/.test(t)) return "num";
  if (/^(true|false|yes|no|on|off|null|~|True|False|None)$/i.test(t)) return "bool";
  if (/^\$\{?\w+\}?$/.test(t)) return "param";
  return "str";
}

function yamlValue(tokens, rest) {
  // Flow collections and scalars after "key:" or "- ".
  let i = 0;
  while (i < rest.length) {
    const ch = rest[i];
    if (ch === "#" && (i === 0 || /\s/.test(rest[i - 1]))) {
      push(tokens, "comment", rest.slice(i));
      return;
    }
    if (ch === '"' || ch === "'") {
      const end = stringEnd(rest, i);
      push(tokens, "str", rest.slice(i, end));
      i = end;
      continue;
    }
    if ("[]{},".includes(ch)) {
      push(tokens, "punct", ch);
      i += 1;
      continue;
    }
    if (ch === "&" || ch === "*" || ch === "|" || ch === ">") {
      const m = /^[&*|>][\w+-]*/.exec(rest.slice(i));
      push(tokens, "meta", m[0]);
      i += m[0].length;
      continue;
    }
    const m = /^[^#"'\[\]{},]+?(?=\s#|[\[\]{},]|$)/.exec(rest.slice(i)) || [rest.slice(i)];
    const word = m[0];
    const key = /^(\s*)([^:\s][^:]*?)(:)(\s|$)/.exec(word); // a key inside a flow mapping
    if (key && rest.slice(i).startsWith(word)) {
      push(tokens, "", key[1]);
      push(tokens, "key", key[2]);
      push(tokens, "punct", key[3]);
      i += key[1].length + key[2].length + 1;
      continue;
    }
    const lead = /^\s*/.exec(word)[0];
    push(tokens, "", lead);
    const body = word.slice(lead.length);
    const trail = /\s*$/.exec(body)[0];
    const core = body.slice(0, body.length - trail.length);
    if (core) push(tokens, scalarClass(core), core);
    push(tokens, "", trail);
    i += word.length;
  }
}

function yamlLine(line, state) {
  const tokens = [];
  if (state.block !== null) {
    const indent = /^\s*/.exec(line)[0].length;
    if (line.trim() === "" || indent > state.block) {
      push(tokens, "str", line);
      return tokens;
    }
    state.block = null;
  }
  const m = /^(\s*)((?:-\s+)*)(.*)$/.exec(line);
  push(tokens, "", m[1]);
  push(tokens, "punct", m[2]);
  let rest = m[3];
  if (rest.startsWith("#")) {
    push(tokens, "comment", rest);
    return tokens;
  }
  if (/^(---|\.\.\.)\s*$/.test(rest)) {
    push(tokens, "meta", rest);
    return tokens;
  }
  const key = /^("[^"]*"|'[^']*'|[^\s#'"{\[][^#]*?)(\s*:)(\s|$)/.exec(rest);
  if (key) {
    push(tokens, "key", key[1]);
    push(tokens, "punct", key[2]);
    rest = rest.slice(key[1].length + key[2].length);
  }
  if (/^\s*[|>][-+0-9]*\s*(#.*)?$/.test(rest)) state.block = m[1].length + m[2].length;
  yamlValue(tokens, rest);
  return tokens;
}

function pythonLine(line, state) {
  const tokens = [];
  let i = 0;
  if (state.triple) {
    const end = line.indexOf(state.triple);
    if (end < 0) {
      push(tokens, "str", line);
      return tokens;
    }
    push(tokens, "str", line.slice(0, end + 3));
    i = end + 3;
    state.triple = null;
  }
  let afterDef = false;
  while (i < line.length) {
    const rest = line.slice(i);
    const ch = line[i];
    if (ch === "#") {
      push(tokens, "comment", rest);
      break;
    }
    const prefix = /^[rRbBuUfF]{0,2}('''|""")/.exec(rest);
    if (prefix) {
      const open = prefix[0].length;
      const close = rest.indexOf(prefix[1], open);
      if (close < 0) {
        push(tokens, "str", rest);
        state.triple = prefix[1];
        break;
      }
      push(tokens, "str", rest.slice(0, close + 3));
      i += close + 3;
      continue;
    }
    const single = /^[rRbBuUfF]{0,2}(['"])/.exec(rest);
    if (single) {
      const start = single[0].length - 1;
      const end = stringEnd(rest, start);
      push(tokens, "str", rest.slice(0, end));
      i += end;
      continue;
    }
    const word = /^[A-Za-z_]\w*/.exec(rest);
    if (word) {
      const w = word[0];
      let cls = "";
      if (afterDef) cls = "def";
      else if (PY_KEYWORDS.has(w)) cls = "kw";
      else if (PY_BUILTINS.has(w)) cls = "builtin";
      push(tokens, cls, w);
      afterDef = w === "def" || w === "class";
      i += w.length;
      continue;
    }
    const num = /^\d[\d_]*(\.\d*)?([eE][-+]?\d+)?/.exec(rest);
    if (num) {
      push(tokens, "num", num[0]);
      i += num[0].length;
      continue;
    }
    if (ch === "@" && /^\s*$/.test(line.slice(0, i))) {
      const deco = /^@[\w.]+/.exec(rest)[0];
      push(tokens, "meta", deco);
      i += deco.length;
      continue;
    }
    push(tokens, /\s/.test(ch) ? "" : "punct", ch);
    i += 1;
  }
  return tokens;
}

function jsonLine(line) {
  const tokens = [];
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === '"') {
      const end = stringEnd(line, i);
      const isKey = /^\s*:/.test(line.slice(end));
      push(tokens, isKey ? "key" : "str", line.slice(i, end));
      i = end;
      continue;
    }
    const word = /^(-?\d[\d.eE+-]*|true|false|null)/.exec(line.slice(i));
    if (word) {
      push(tokens, /^-?\d/.test(word[0]) ? "num" : "bool", word[0]);
      i += word[0].length;
      continue;
    }
    push(tokens, /\s/.test(ch) ? "" : "punct", ch);
    i += 1;
  }
  return tokens;
}

/** Lines of tokens [class, text] for a language: "yaml", "python", "json" or anything else (plain). */
export function tokenize(lang, text) {
  const state = { block: null, triple: null };
  return text.split("\n").map((line) => {
    if (lang === "yaml") return yamlLine(line, state);
    if (lang === "python") return pythonLine(line, state);
    if (lang === "json") return jsonLine(line);
    return [["", line]];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Where a diagnostic belongs
// ---------------------------------------------------------------------------------------------------------------

/** 1-based first line of each step of a WEI workflow's flowdef (by 0-based index). */
export function workflowStepLines(text) {
  const lines = text.split("\n");
  const out = [];
  const start = lines.findIndex((l) => /^flowdef\s*:/.test(l));
  if (start < 0) return out;
  let indent = null;
  for (let n = start + 1; n < lines.length; n += 1) {
    const line = lines[n];
    if (!line.trim() || line.trim().startsWith("#")) continue;
    const lead = /^\s*/.exec(line)[0].length;
    if (lead === 0 && !line.startsWith("-")) break; // the next top-level key
    if (/^\s*-(\s|$)/.test(line) && (indent === null || lead === indent)) {
      indent = lead;
      out.push(n + 1);
    }
  }
  return out;
}

/** 1-based first line of each step of a plan (JSON with a "steps" list of objects). */
export function planStepLines(text) {
  const lines = text.split("\n");
  const out = [];
  const start = lines.findIndex((l) => /"steps"\s*:\s*\[/.test(l));
  if (start < 0) return out;
  let indent = null;
  for (let n = start + 1; n < lines.length; n += 1) {
    const lead = /^\s*/.exec(lines[n])[0].length;
    const t = lines[n].trim();
    if (t.startsWith("]") && (indent === null || lead < indent)) break;
    if (t === "{" && (indent === null || lead === indent)) {
      indent = lead;
      out.push(n + 1);
    }
  }
  return out;
}

/** The line a diagnostic is about: its own line, else the line of the field in its step, else its step's line. */
export function diagnosticLine(d, text, stepLines) {
  const own = Number.isInteger(d.line) && d.line > 0 ? d.line : null;
  if (!Number.isInteger(d.step_index) || d.step_index >= stepLines.length) return own;
  const first = stepLines[d.step_index];
  // The checks give a step's first line; the field they name (e.g. flowdef[11].action) is more precise.
  if (own !== null && own !== first) return own;
  const last = d.step_index + 1 < stepLines.length ? stepLines[d.step_index + 1] - 1 : text.split("\n").length;
  const leaf = d.field ? /([A-Za-z_$][\w$-]*)\]?$/.exec(d.field.replace(/\[\d+\]$/, "")) : null;
  if (leaf) {
    const lines = text.split("\n");
    const key = new RegExp(`^\\s*(-\\s+)?"?${leaf[1].replace(/[$]/g, "\\$")}"?\\s*:`);
    for (let n = first; n <= last; n += 1) if (key.test(lines[n - 1] || "")) return n;
  }
  return own ?? first;
}

// ---------------------------------------------------------------------------------------------------------------
// The code view
// ---------------------------------------------------------------------------------------------------------------

const MARK = { error: "✗", warning: "!", info: "i" };

export function diagnosticElement(d) {
  const box = document.createElement("div");
  box.className = `diag ${d.severity}`;
  const head = document.createElement("div");
  const mark = document.createElement("span");
  mark.className = "mark";
  mark.textContent = MARK[d.severity] || "•";
  const where = [];
  if (Number.isInteger(d.step_index)) where.push(`step ${d.step_index + 1}${d.step_name ? ` “${d.step_name}”` : ""}`);
  const msg = document.createElement("span");
  msg.className = "msg";
  msg.textContent = `${where.length ? where.join(", ") + ": " : ""}${d.message}`;
  const code = document.createElement("span");
  code.className = "code-id";
  code.textContent = d.code;
  head.append(mark, " ", msg, " ", code);
  box.append(head);
  if (d.hint) {
    const hint = document.createElement("div");
    hint.className = "hint";
    hint.textContent = `hint: ${d.hint}`;
    box.append(hint);
  }
  return box;
}

/**
 * Render text as highlighted, numbered lines; each diagnostic appears under its line (or above the code when it
 * has none). `stepLines` maps step indexes to lines for diagnostics that name only a step.
 */
export function renderCode(text, lang, diagnostics = [], stepLines = []) {
  const wrap = document.createElement("div");
  wrap.className = "codeview";
  const byLine = new Map();
  const general = [];
  for (const d of diagnostics) {
    const line = diagnosticLine(d, text, stepLines);
    if (line === null) general.push(d);
    else {
      if (!byLine.has(line)) byLine.set(line, []);
      byLine.get(line).push(d);
    }
  }
  if (general.length) {
    const top = document.createElement("div");
    top.className = "diag-general";
    for (const d of general) top.append(diagnosticElement(d));
    wrap.append(top);
  }
  const pre = document.createElement("div");
  pre.className = "code";
  const lines = tokenize(lang, text);
  lines.forEach((tokens, i) => {
    const n = i + 1;
    const row = document.createElement("div");
    const found = byLine.get(n) || [];
    const worst = found.some((d) => d.severity === "error") ? "error" : found.some((d) => d.severity === "warning") ? "warning" : "";
    row.className = `line${worst ? " has-" + worst : ""}`;
    row.dataset.line = String(n);
    const gutter = document.createElement("span");
    gutter.className = "ln";
    gutter.textContent = String(n);
    const code = document.createElement("span");
    code.className = "src";
    for (const [cls, part] of tokens) {
      if (!cls) code.append(part);
      else {
        const span = document.createElement("span");
        span.className = `t-${cls}`;
        span.textContent = part;
        code.append(span);
      }
    }
    if (!tokens.length) code.append("\u200b");
    row.append(gutter, code);
    pre.append(row);
    if (found.length) {
      const notes = document.createElement("div");
      notes.className = "line-notes";
      for (const d of found) notes.append(diagnosticElement(d));
      pre.append(notes);
    }
  });
  // Lines past the end (e.g. a parse error at EOF) still show.
  for (const [line, found] of byLine) {
    if (line > lines.length) {
      const notes = document.createElement("div");
      notes.className = "line-notes";
      for (const d of found) notes.append(diagnosticElement(d));
      pre.append(notes);
    }
  }
  wrap.append(pre);
  return wrap;
}
