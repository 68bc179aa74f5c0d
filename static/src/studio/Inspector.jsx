// The right-hand panel for the selected node: its settings (a form generated from the
// block's config schema), its connections (a keyboard way to wire the graph) and, after a
// test run, the step's input, output and error.
import { useState } from "react";
import { useEditorView } from "./context.js";
import { blockOf } from "./graph.js";
import { glyph } from "./icons.js";
import SchemaForm, { SUGGESTIONS_ID } from "./SchemaForm.jsx";
import { localProblems } from "./schema.js";
import WebhookPanel from "./WebhookPanel.jsx";

// Settings every node has, whatever its block (the engine's NodeSettings).
const NODE_SETTINGS_SCHEMA = {
  type: "object",
  properties: {
    retry: {
      type: "object",
      title: "Retries",
      properties: {
        max_attempts: { type: "integer", minimum: 1, maximum: 20, title: "Max attempts", description: "Including the first; the block's default when empty." },
        backoff_seconds: { type: "number", minimum: 0, maximum: 3600, title: "Backoff (seconds)", description: "Wait before the first retry; it doubles each time." },
      },
    },
    timeout_seconds: { type: "number", exclusiveMinimum: 0, maximum: 3600, title: "Timeout (seconds)", description: "How long one attempt may take." },
    notes: { type: "string", title: "Notes", description: "For the people who maintain this flow." },
  },
};

export default function Inspector({ node, nodes, edges, onConfig, onNodeData, onUpgrade, onConnect, onDisconnect, onDelete, tab, setTab }) {
  const { blocks, problems, steps, readOnly, expressions } = useEditorView();
  if (!node) {
    return (
      <aside className="inspector inspector-empty" aria-label="Inspector">
        <p className="empty-title">Nothing selected</p>
        <p className="muted">Select a block on the canvas to edit its settings, or add one from the palette.</p>
        <ShortcutList />
      </aside>
    );
  }
  const block = blockOf(blocks, node.data);
  const schema = (block && block.config_schema) || { properties: {} };
  const serverProblems = (problems[node.id] || []).filter((problem) => problem.field !== "edges");
  const local = localProblems(schema, node.data.config || {});
  const seen = new Set(serverProblems.map((problem) => `${problem.field}|${problem.message}`));
  const fieldProblems = [...serverProblems, ...local.filter((problem) => !seen.has(`${problem.field}|${problem.message}`))];
  const nodeLevel = (problems[node.id] || []).filter((problem) => !problem.field || problem.field === "edges");
  const step = steps[node.id];

  return (
    <aside className="inspector" aria-label="Inspector">
      <header className="inspector-header">
        <span className={`block-icon cat-${block ? block.category : "unknown"}`} aria-hidden="true">{glyph(block && block.icon)}</span>
        <div>
          <h2 className="inspector-title">{node.data.label || (block ? block.title : node.data.type)}</h2>
          <p className="muted small mono">{node.id} · {node.data.type}</p>
        </div>
      </header>
      <div className="tabs" role="tablist" aria-label="Node panels">
        <TabButton id="settings" tab={tab} setTab={setTab}>Settings</TabButton>
        <TabButton id="connections" tab={tab} setTab={setTab}>Connections</TabButton>
        <TabButton id="data" tab={tab} setTab={setTab}>
          Run data{step ? <span className={`dot dot-${step.status}`} aria-hidden="true" /> : null}
        </TabButton>
      </div>
      <datalist id={SUGGESTIONS_ID}>
        {(expressions ? expressions.suggestions : []).map((path) => (
          <option key={path} value={path} />
        ))}
      </datalist>
      <div className="inspector-body" role="tabpanel" aria-label={tab}>
        {tab === "settings" && (
          <>
            {block && block.description && <p className="block-description">{block.description}</p>}
            {block && block.version < block.latest_version && (
              <UpgradeNotice block={block} readOnly={readOnly} onUpgrade={() => onUpgrade(node)} />
            )}
            {nodeLevel.length > 0 && (
              <ul className="node-problems" role="alert">
                {nodeLevel.map((problem, index) => (
                  <li key={index}>{problem.message}</li>
                ))}
              </ul>
            )}
            <div className="field">
              <label htmlFor="node-label">Label</label>
              <input
                id="node-label"
                type="text"
                maxLength={120}
                value={node.data.label || ""}
                placeholder={block ? block.title : ""}
                disabled={readOnly}
                onChange={(event) => onNodeData(node.id, { label: event.target.value })}
              />
            </div>
            <form className="config-form" onSubmit={(event) => event.preventDefault()} aria-label="Block settings">
              <SchemaForm
                key={node.id}
                schema={schema}
                value={node.data.config || {}}
                problems={fieldProblems}
                readOnly={readOnly}
                onChange={(config) => onConfig(node.id, config)}
              />
            </form>
            {node.data.type === "trigger.webhook" && <WebhookPanel node={node} nodes={nodes} />}
            <details className="advanced">
              <summary>Retries, timeout and notes</summary>
              <SchemaForm
                key={`${node.id}-advanced`}
                schema={NODE_SETTINGS_SCHEMA}
                value={{ retry: node.data.retry, timeout_seconds: node.data.timeout_seconds, notes: node.data.notes }}
                problems={[]}
                readOnly={readOnly}
                onChange={(settings) => onNodeData(node.id, settings)}
              />
            </details>
            {!readOnly && (
              <button type="button" className="button button-danger-quiet" onClick={() => onDelete([node.id])}>
                Delete block
              </button>
            )}
          </>
        )}
        {tab === "connections" && (
          <Connections node={node} nodes={nodes} edges={edges} onConnect={onConnect} onDisconnect={onDisconnect} readOnly={readOnly} />
        )}
        {tab === "data" && <StepData step={step} />}
      </div>
    </aside>
  );
}

function TabButton({ id, tab, setTab, children }) {
  return (
    <button
      type="button"
      role="tab"
      id={`tab-${id}`}
      aria-selected={tab === id}
      className={`tab${tab === id ? " is-on" : ""}`}
      onClick={() => setTab(id)}
    >
      {children}
    </button>
  );
}

function Connections({ node, nodes, edges, onConnect, onDisconnect, readOnly }) {
  const ports = node.data.ports || ["out"];
  const [port, setPort] = useState(ports[0]);
  const { blocks } = useEditorView();
  const targets = nodes.filter((other) => other.id !== node.id && blockOf(blocks, other.data)?.category !== "trigger");
  const [target, setTarget] = useState("");
  const outgoing = edges.filter((edge) => edge.source === node.id);
  const incoming = edges.filter((edge) => edge.target === node.id);
  return (
    <div className="connections">
      <h3 className="panel-heading">Goes to</h3>
      {outgoing.length === 0 && <p className="muted small">No outgoing connections.</p>}
      <ul className="edge-list">
        {outgoing.map((edge) => (
          <li key={edge.id}>
            <span><span className="port-chip">{edge.sourceHandle}</span> → <strong>{edge.target}</strong></span>
            {!readOnly && (
              <button type="button" className="icon-button" aria-label={`Remove connection ${edge.sourceHandle} to ${edge.target}`} onClick={() => onDisconnect(edge.id)}>
                ×
              </button>
            )}
          </li>
        ))}
      </ul>
      {!readOnly && targets.length > 0 && (
        <form
          className="connect-form"
          onSubmit={(event) => {
            event.preventDefault();
            if (target) onConnect({ source: node.id, sourceHandle: ports.includes(port) ? port : ports[0], target });
          }}
        >
          {ports.length > 1 && (
            <>
              <label htmlFor="connect-port">From output</label>
              <select id="connect-port" value={port} onChange={(event) => setPort(event.target.value)}>
                {ports.map((name) => (
                  <option key={name} value={name}>{name}</option>
                ))}
              </select>
            </>
          )}
          <label htmlFor="connect-target">Connect to</label>
          <select id="connect-target" value={target} onChange={(event) => setTarget(event.target.value)}>
            <option value="">Choose a block…</option>
            {targets.map((other) => (
              <option key={other.id} value={other.id}>{other.data.label ? `${other.data.label} (${other.id})` : other.id}</option>
            ))}
          </select>
          <button type="submit" className="button button-small" disabled={!target}>Connect</button>
        </form>
      )}
      <h3 className="panel-heading">Comes from</h3>
      {incoming.length === 0 ? (
        <p className="muted small">No incoming connections.</p>
      ) : (
        <ul className="edge-list">
          {incoming.map((edge) => (
            <li key={edge.id}><span><strong>{edge.source}</strong> <span className="port-chip">{edge.sourceHandle}</span> → here</span></li>
          ))}
        </ul>
      )}
    </div>
  );
}

function StepData({ step }) {
  if (!step) return <p className="muted">Run a test to see what this step received and produced.</p>;
  return (
    <div className="step-data" data-step-status={step.status}>
      <p>
        <span className={`status status-${step.status}`}>{step.status}</span>
        {step.port && <> via <span className="port-chip">{step.port}</span></>}
        {step.duration_ms !== null && step.duration_ms !== undefined && <span className="muted"> · {Math.round(step.duration_ms)} ms</span>}
        {step.attempt > 1 && <span className="muted"> · attempt {step.attempt}</span>}
      </p>
      {step.error && <ErrorBox error={step.error} />}
      <h3 className="panel-heading">Output</h3>
      <pre className="json" aria-label="Step output">{step.output === undefined || step.output === null ? "—" : JSON.stringify(step.output, null, 2)}</pre>
      <h3 className="panel-heading">Input</h3>
      <pre className="json" aria-label="Step input">{step.input === undefined || step.input === null ? "—" : JSON.stringify(step.input, null, 2)}</pre>
      {step.meta && Object.keys(step.meta).length > 0 && (
        <>
          <h3 className="panel-heading">Details</h3>
          <pre className="json" aria-label="Step details">{JSON.stringify(step.meta, null, 2)}</pre>
        </>
      )}
    </div>
  );
}

export function ShortcutList() {
  const rows = [
    ["Ctrl + S", "Save now"],
    ["Ctrl + Z / Ctrl + Shift + Z", "Undo / redo"],
    ["Ctrl + C / Ctrl + V", "Copy / paste blocks"],
    ["Ctrl + D", "Duplicate selection"],
    ["Delete", "Delete selection"],
    ["Shift + drag", "Select several"],
    ["Arrow keys", "Move the focused block"],
    ["F", "Fit the flow in view"],
    ["L", "Tidy up (auto-layout)"],
    ["Ctrl + Enter", "Test run"],
  ];
  return (
    <dl className="shortcuts" aria-label="Keyboard shortcuts">
      {rows.map(([keys, action]) => (
        <div key={keys}>
          <dt><kbd>{keys}</kbd></dt>
          <dd>{action}</dd>
        </div>
      ))}
    </dl>
  );
}

export function ErrorBox({ error }) {
  const message = typeof error === "string" ? error : error.message || error.type || "The step failed.";
  return (
    <div className="error-box" role="alert">
      <p className="error-message">{message}</p>
      {typeof error === "object" && (
        <details>
          <summary>Error details</summary>
          <pre className="json json-error">{JSON.stringify(error, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}

// A node built with an older version of its block: it keeps running that version until
// it is upgraded here and the flow republished.
function UpgradeNotice({ block, readOnly, onUpgrade }) {
  return (
    <div className="upgrade-notice" role="note">
      <p className="small">
        Built with version {block.version} of this block; version {block.latest_version} is available. Published
        versions keep running version {block.version} until you upgrade and publish again.
      </p>
      {!readOnly && (
        <button type="button" className="button button-small" onClick={onUpgrade}>
          Upgrade this node to version {block.latest_version}
        </button>
      )}
    </div>
  );
}
