// The wei-gen REST API as the page uses it (see the API contract): same origin, bearer token, JSON errors.
// Paths are relative, so the page also works when the server mounts it under a prefix.

const TOKEN_KEY = "wei-gen-token";

export class ApiError extends Error {
  /** An answer the server gave (status >= 400) or could not give (status 0: no connection). */
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/** Every request goes through here; a 401 clears the stored token and calls onUnauthorized. */
export class Api {
  constructor({ onUnauthorized }) {
    this.onUnauthorized = onUnauthorized;
  }

  headers(extra = {}) {
    const token = getToken();
    return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async raw(method, path, body) {
    const init = { method, headers: this.headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, `cannot reach the wei-gen server (${err.message}); is it running?`);
    }
    if (response.ok) return response;
    let data = null;
    let message = `${response.status} ${response.statusText}`;
    try {
      data = await response.json();
      if (data && typeof data.error === "string") message = data.error;
      else if (data && typeof data.detail === "string") message = data.detail;
    } catch {
      /* not JSON: keep the status line */
    }
    if (response.status === 401) {
      setToken("");
      this.onUnauthorized(message);
    }
    throw new ApiError(response.status, message, data);
  }

  async json(method, path, body) {
    const response = await this.raw(method, path, body);
    return response.json();
  }

  sessions() {
    return this.json("GET", "sessions");
  }
  history(id) {
    return this.json("GET", `session/${encodeURIComponent(id)}/history`);
  }
  create(body) {
    return this.json("POST", "session/init", body);
  }
  load(id) {
    return this.json("POST", "session/init", { session_id: id });
  }
  step(id, step) {
    return this.json("POST", `session/${encodeURIComponent(id)}/${step}_step`, {});
  }
  chat(id, agent, text) {
    return this.json("POST", `session/${encodeURIComponent(id)}/call_gen_env/${agent}`, { user_input: text });
  }
  update(id, agent, text) {
    return this.json("POST", `session/${encodeURIComponent(id)}/update_generated/${agent}`, { user_input: text });
  }
  async flowSvg(id) {
    const response = await this.raw("GET", `session/${encodeURIComponent(id)}/flow.svg`);
    return response.text();
  }
  async bundle(id) {
    const response = await this.raw("GET", `session/${encodeURIComponent(id)}/bundle.zip`);
    return response.blob();
  }
  /** Server-sent events of the current run, read with fetch (EventSource cannot send the token). */
  async events(id, onEvent, signal) {
    const response = await fetch(`session/${encodeURIComponent(id)}/events`, {
      headers: this.headers({ Accept: "text/event-stream" }),
      signal,
    });
    if (!response.ok || !response.body) return false;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buffer += value;
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        let parsed = data.join("\n");
        try {
          parsed = JSON.parse(parsed);
        } catch {
          /* plain text data */
        }
        onEvent(event, parsed);
      }
    }
  }
}
