// The bottom dock: validation problems, the test-run console and version history.
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import { ErrorBox } from "./Inspector.jsx";
import { TERMINAL } from "./runs.js";

export function ProblemsList({ problems, onFocusNode }) {
  if (!problems.length) return <p className="ok-line"><span aria-hidden="true">✓</span> No problems: this flow can be published.</p>;
  return (
    <ul className="problem-list" aria-label="Problems">
      {problems.map((problem, index) => (
        <li key={index} className={problem.local ? "is-local" : ""}>
          <span className="problem-icon" aria-hidden="true">⚠</span>
          {problem.node ? (
            <button type="button" className="link-button" onClick={() => onFocusNode(problem.node)}>
              {problem.node}
            </button>
          ) : (
            <span className="muted">flow</span>
          )}
          {problem.field && problem.field !== "edges" && <code className="problem-field">{problem.field}</code>}
          <span className="problem-message">{problem.message}</span>
        </li>
      ))}
    </ul>
  );
}

export function TestRunPanel({ runUrl, sample, setSample, triggerSample, testRun, onStart, busy, readOnly, onFocusNode }) {
  const [dryRun, setDryRun] = useState(false);
  const [inputError, setInputError] = useState("");
  const { run, steps, error } = testRun;
  const submit = (event) => {
    event.preventDefault();
    let input;
    try {
      input = sample.trim() ? JSON.parse(sample) : {};
    } catch (problem) {
      setInputError(`The sample input is not valid JSON: ${problem.message}`);
      return;
    }
    setInputError("");
    onStart(input, dryRun);
  };
  const ordered = run && run.steps ? run.steps : [];
  return (
    <div className="test-run">
      <form className="test-run-form" onSubmit={submit}>
        <label htmlFor="sample-input">Sample input (JSON, becomes <code>trigger.body</code>)</label>
        <textarea
          id="sample-input"
          className="json-input"
          rows={5}
          spellCheck={false}
          value={sample}
          aria-invalid={inputError ? true : undefined}
          onChange={(event) => setSample(event.target.value)}
        />
        {inputError && <p className="error" role="alert">{inputError}</p>}
        {sample !== triggerSample && (
          <button type="button" className="link-button small" onClick={() => setSample(null)}>
            Use the trigger's sample instead
          </button>
        )}
        <div className="toolbar">
          <button type="submit" className="button button-primary" disabled={busy || readOnly}>
            {busy ? "Starting…" : "Run test"}
          </button>
          <label className="checkbox">
            <input type="checkbox" checked={dryRun} onChange={(event) => setDryRun(event.target.checked)} /> Dry run (stub side effects)
          </label>
        </div>
      </form>
      <div className="test-run-result" aria-live="polite">
        {error && <p className="error" role="alert">{error}</p>}
        {run && (
          <>
            <p className="run-line">
              Run <a href={runUrl(run.id)} title="Open the run's page"><code>{run.id.slice(0, 8)}</code></a>{" "}
              <span className={`status status-${run.status}`} data-run-status={run.status}>{run.status}</span>
              {run.duration_ms !== null && run.duration_ms !== undefined && <span className="muted"> · {Math.round(run.duration_ms)} ms</span>}
              {!TERMINAL.has(run.status) && <span className="spinner" aria-hidden="true" />}
            </p>
            {run.error && <ErrorBox error={run.error} />}
            {ordered.length > 0 && (
              <ol className="test-step-list" aria-label="Steps">
                {ordered.map((step) => (
                  <li key={step.node}>
                    <button type="button" className="link-button" onClick={() => onFocusNode(step.node, "data")}>{step.node}</button>
                    <span className={`status status-${steps[step.node] ? steps[step.node].status : step.status}`}>{step.status}</span>
                    {step.duration_ms !== null && step.duration_ms !== undefined && <span className="muted small">{Math.round(step.duration_ms)} ms</span>}
                  </li>
                ))}
              </ol>
            )}
            {TERMINAL.has(run.status) && run.output !== undefined && run.output !== null && (
              <>
                <h3 className="panel-heading">Run output</h3>
                <pre className="json">{JSON.stringify(run.output, null, 2)}</pre>
              </>
            )}
          </>
        )}
      </div>
    </div>
  );
}

export function VersionsPanel({ api, canPublish, reloadKey, onRolledBack, notify, onDiff }) {
  const [versions, setVersions] = useState(null);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("draft");
  const [diff, setDiff] = useState(null);
  const [error, setError] = useState("");

  useEffect(() => {
    api.versions().then((list) => {
      setVersions(list);
      if (list.length) setFrom(String(list[0].number));
    }, (problem) => setError(problem));
  }, [api, reloadKey]);

  const compare = async (event) => {
    event.preventDefault();
    setError("");
    try {
      const shown = { from, to, ...(await api.diff(from, to)) };
      setDiff(shown);
      onDiff(shown);
    } catch (problem) {
      setError(problem);
    }
  };
  const rollback = async (number) => {
    if (!window.confirm(`Roll back to version ${number}? Its definition is published again as a new version, and new runs use it.`)) return;
    setError(null);
    try {
      const version = await api.rollback(number);
      notify(`Published version ${version.number} from version ${number}.`);
      onRolledBack();
    } catch (problem) {
      setError(problem);
    }
  };
  if (!versions) return <p className="muted">{error ? error.message : "Loading versions…"}</p>;
  const references = [["draft", "Current draft"], ...versions.map((v) => [String(v.number), `Version ${v.number}`])];
  return (
    <div className="versions">
      {error && (
        <div className="error" role="alert">
          <p>{error.reasons && error.reasons.length ? `${error.message}: ${error.reasons.join("; ")}` : error.message}</p>
          <NextStep next={error.next} />
        </div>
      )}
      {versions.length === 0 ? (
        <p className="muted">Not published yet. Publishing freezes the draft into version 1.</p>
      ) : (
        <table className="table version-table">
          <thead><tr><th scope="col">Version</th><th scope="col">Note</th><th scope="col">By</th><th scope="col">Published</th>{canPublish && <th scope="col"><span className="visually-hidden">Actions</span></th>}</tr></thead>
          <tbody>
            {versions.map((version, index) => (
              <tr key={version.number}>
                <td><strong>v{version.number}</strong>{index === 0 && <span className="status status-published"> live</span>}</td>
                <td>{version.note || <span className="muted">—</span>}</td>
                <td>{version.published_by || "—"}</td>
                <td className="muted">{new Date(version.published_at).toLocaleString()}</td>
                {canPublish && (
                  <td>{index > 0 && <button type="button" className="button button-small" onClick={() => rollback(version.number)}>Roll back to v{version.number}</button>}</td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {versions.length > 0 && (
        <form className="toolbar diff-form" onSubmit={compare}>
          <label htmlFor="diff-from">Compare</label>
          <select id="diff-from" value={from} onChange={(event) => setFrom(event.target.value)}>
            {references.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
          <label htmlFor="diff-to">with</label>
          <select id="diff-to" value={to} onChange={(event) => setTo(event.target.value)}>
            {references.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
          <button type="submit" className="button button-small">Show changes</button>
        </form>
      )}
      {diff && diff.to === "draft" && <p className="muted small">Blocks added or changed in the draft are marked on the canvas.</p>}
      {diff && <DiffView diff={diff} />}
    </div>
  );
}

function DiffView({ diff }) {
  const { nodes, edges } = diff;
  const empty = !nodes.added.length && !nodes.removed.length && !nodes.changed.length && !edges.added.length && !edges.removed.length;
  return (
    <section className="diff" aria-label={`Changes from ${diff.from} to ${diff.to}`}>
      {empty && <p className="muted">No differences.</p>}
      <ul className="diff-list">
        {nodes.added.map((id) => <li key={`na-${id}`} className="diff-added">+ block <strong>{id}</strong></li>)}
        {nodes.removed.map((id) => <li key={`nr-${id}`} className="diff-removed">− block <strong>{id}</strong></li>)}
        {edges.added.map((edge) => <li key={`ea-${edge}`} className="diff-added">+ connection {edge}</li>)}
        {edges.removed.map((edge) => <li key={`er-${edge}`} className="diff-removed">− connection {edge}</li>)}
        {nodes.changed.map((change) => (
          <li key={`nc-${change.id}`} className="diff-changed">
            ~ block <strong>{change.id}</strong>
            <ul>
              {change.changes.map((item) => (
                <li key={item.path}>
                  <code>{item.path}</code>: <del>{JSON.stringify(item.before) ?? "—"}</del> → <ins>{JSON.stringify(item.after) ?? "—"}</ins>
                </li>
              ))}
            </ul>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function PublishDialog({ onPublish, onClose, result }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  // Read while rendering, before the note field takes focus: where focus returns on close.
  const [opener] = useState(() => document.activeElement);
  const dialog = useRef(null);
  const close = useRef(onClose);
  close.current = onClose; // the parent passes a new function on each render
  useLayoutEffect(() => {
    // A modal <dialog>: the browser keeps Tab inside it and makes the page behind inert.
    const element = dialog.current;
    element.showModal();
    // Escape is handled once, on the page (focus may have fallen to <body> while the submit
    // button was disabled, where the dialog gets no "cancel"); the parent closes the dialog,
    // so the browser must not close it by itself.
    const onCancel = (event) => event.preventDefault();
    const onKey = (event) => {
      if (event.key === "Escape") close.current();
    };
    element.addEventListener("cancel", onCancel);
    document.addEventListener("keydown", onKey);
    return () => {
      element.removeEventListener("cancel", onCancel);
      document.removeEventListener("keydown", onKey);
      element.close();
      if (opener && opener.isConnected && opener.focus) opener.focus();
    };
  }, [opener]);
  return (
    <dialog ref={dialog} className="dialog" aria-labelledby="publish-title">
      <div>
        <h2 id="publish-title">Publish this flow</h2>
        <p className="muted">The saved draft becomes a new immutable version; new runs use it. The workspace publishing policy decides.</p>
        <form
          onSubmit={async (event) => {
            event.preventDefault();
            setBusy(true);
            await onPublish(note);
            setBusy(false);
          }}
        >
          <div className="field">
            <label htmlFor="publish-note">Change note</label>
            <input id="publish-note" type="text" maxLength={500} autoFocus value={note} placeholder="What changed and why" onChange={(event) => setNote(event.target.value)} />
          </div>
          {result && result.error && (
            <div className="form-error" role="alert">
              <p><strong>{result.error.message}</strong></p>
              {result.error.reasons.length > 0 && (
                <ul>{result.error.reasons.map((reason, index) => <li key={index}>{reason}</li>)}</ul>
              )}
              <NextStep next={result.error.next} />
              {result.error.problems.length > 0 && (
                <ul>{result.error.problems.map((problem, index) => <li key={index}>{problem.node ? `${problem.node}: ` : ""}{problem.field && problem.field !== "edges" ? `${problem.field} ` : ""}{problem.message}</li>)}</ul>
              )}
            </div>
          )}
          <div className="toolbar dialog-actions">
            <button type="button" className="button" onClick={onClose}>Cancel</button>
            <button type="submit" className="button button-primary" disabled={busy}>{busy ? "Publishing…" : "Publish"}</button>
          </div>
        </form>
      </div>
    </dialog>
  );
}

// What a refused builder does next: ask an admin, with a link to who they are.
export function NextStep({ next }) {
  if (!next) return null;
  return (
    <p className="next-step">
      {next.message} <a href={next.url}>See the workspace's admins</a>
    </p>
  );
}
