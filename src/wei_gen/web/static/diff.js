// A line diff by longest common subsequence (small artifacts: a few hundred lines), as unified hunks.

const MAX_CELLS = 4_000_000; // beyond this the table is too big for a page; show a replace-all diff instead

/** Operations [" "|"-"|"+", text, oldLine|null, newLine|null] turning a into b (arrays of lines). */
export function diffLines(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const ops = [];
  for (let i = 0; i < start; i += 1) ops.push([" ", a[i], i + 1, i + 1]);
  const n = midA.length;
  const m = midB.length;
  if (n * m > MAX_CELLS) {
    midA.forEach((t, i) => ops.push(["-", t, start + i + 1, null]));
    midB.forEach((t, j) => ops.push(["+", t, null, start + j + 1]));
  } else {
    // lcs[i][j] = LCS length of midA[i:] and midB[j:]
    const width = m + 1;
    const lcs = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i -= 1) {
      for (let j = m - 1; j >= 0; j -= 1) {
        lcs[i * width + j] =
          midA[i] === midB[j] ? lcs[(i + 1) * width + j + 1] + 1 : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        ops.push([" ", midA[i], start + i + 1, start + j + 1]);
        i += 1;
        j += 1;
      } else if (i < n && (j === m || lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])) {
        ops.push(["-", midA[i], start + i + 1, null]); // removals before additions, as diff prints them
        i += 1;
      } else {
        ops.push(["+", midB[j], null, start + j + 1]);
        j += 1;
      }
    }
  }
  for (let k = 0; k < a.length - endA; k += 1) ops.push([" ", a[endA + k], endA + k + 1, endB + k + 1]);
  return ops;
}

/** Group operations into hunks with `context` unchanged lines around each change. */
export function hunks(ops, context = 3) {
  const keep = new Array(ops.length).fill(false);
  ops.forEach((op, i) => {
    if (op[0] !== " ") for (let k = Math.max(0, i - context); k <= Math.min(ops.length - 1, i + context); k += 1) keep[k] = true;
  });
  const out = [];
  let current = null;
  ops.forEach((op, i) => {
    if (!keep[i]) {
      current = null;
      return;
    }
    if (!current) {
      current = [];
      out.push(current);
    }
    current.push(op);
  });
  return out;
}

/** A DOM view of the diff between two texts. */
export function renderDiff(oldText, newText, oldLabel, newLabel) {
  const ops = diffLines(oldText.split("\n"), newText.split("\n"));
  const wrap = document.createElement("div");
  wrap.className = "diffview";
  const added = ops.filter((o) => o[0] === "+").length;
  const removed = ops.filter((o) => o[0] === "-").length;
  const head = document.createElement("div");
  head.className = "diff-head";
  head.textContent = added || removed ? `${oldLabel} → ${newLabel}: ${removed} line(s) removed, ${added} added` : `${oldLabel} and ${newLabel} are identical`;
  wrap.append(head);
  for (const hunk of hunks(ops)) {
    const block = document.createElement("div");
    block.className = "hunk";
    const first = hunk.find((o) => o[2] !== null) || hunk[0];
    const at = document.createElement("div");
    at.className = "hunk-at";
    at.textContent = `@@ line ${first[2] ?? first[3]} @@`;
    block.append(at);
    for (const [op, text, a, b] of hunk) {
      const row = document.createElement("div");
      row.className = `dl ${op === "+" ? "add" : op === "-" ? "del" : "same"}`;
      const na = document.createElement("span");
      na.className = "ln";
      na.textContent = a ?? "";
      const nb = document.createElement("span");
      nb.className = "ln";
      nb.textContent = b ?? "";
      const t = document.createElement("span");
      t.className = "src";
      t.textContent = `${op} ${text}`;
      row.append(na, nb, t);
      block.append(row);
    }
    wrap.append(block);
  }
  return wrap;
}
