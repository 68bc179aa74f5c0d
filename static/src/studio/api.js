// The editor's only door to the server: the flows, runs and blocks REST API.
// Every call returns parsed JSON or throws an ApiError carrying the server's error body.

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The server answered ${status}.`);
    this.status = status;
    this.code = error.code || "error";
    this.problems = error.problems || [];
    this.reasons = error.reasons || [];
    this.fields = error.fields || {};
    this.next = error.next || null; // {message, url}: what to do when refused
  }
}

export function createApi({ workspace, flowId, csrfToken }) {
  const base = `/api/w/${workspace}`;

  async function call(method, url, body) {
    const options = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, options);
    } catch {
      throw new ApiError(0, { error: { code: "offline", message: "The server cannot be reached." } });
    }
    const data = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  const flow = `${base}/flows/${flowId}`;
  return {
    blocks: () => call("GET", "/api/blocks/"),
    ports: (type, config, version) => call("POST", "/api/blocks/ports/", { type, config, version }),
    upgrade: (type, version, config) => call("POST", "/api/blocks/upgrade/", { type, version, config }),
    flow: () => call("GET", `${flow}/`),
    saveDraft: (definition, revision) => call("PUT", `${flow}/draft/`, { definition, revision }),
    validate: (definition) => call("POST", `${flow}/validate/`, { definition }),
    publish: (note) => call("POST", `${flow}/publish/`, { note }),
    versions: () => call("GET", `${flow}/versions/`),
    diff: (from, to) =>
      call("GET", `${flow}/diff/?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
    rollback: (number) => call("POST", `${flow}/rollback/`, { number }),
    testRun: (input, dryRun) => call("POST", `${flow}/test-runs/`, { input, dry_run: dryRun }),
    run: (runId) => call("GET", `${base}/runs/${runId}/`),
    // What an ai.agent node may call: {flows: [...], blocks: [...]} (the tool picker).
    agentTools: () => call("GET", `${base}/agent-tools/`),
    preview: (expression, scope) => call("POST", `${base}/expressions/preview/`, { expression, scope }),
    exportUrl: `${flow}/export/`,
  };
}
