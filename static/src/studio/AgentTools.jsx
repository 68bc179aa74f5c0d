// The tools of an ai.agent node (its config's `tools`, a field whose schema has format
// "agent-tools"): a picker over what the agent may call here (the workspace's published
// flows and the action blocks that may be tools, GET /api/w/<slug>/agent-tools/) and one
// card per chosen tool. Picking fills the tool's name, description and parameters (the
// JSON Schema of the arguments the model writes) from what the server derives: a flow's
// from its trigger's sample, a block's from the settings the builder leaves open. The
// builder edits them on the card; a block tool's fixed settings use the block's own form.
// Problems show beside their field: the server's (`tools.<n>.<field>`), and what this
// form sees first (a name the model cannot use or that another tool has, parameters that
// are not a JSON object schema).
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { useEditorView } from "./context.js";

// The agent block's tool name pattern (apps/mlmodels/agent.py, TOOL_NAME).
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export default function AgentToolsControl({ id, value, onChange, path, errors, readOnly, label, Form }) {
  const tools = Array.isArray(value) ? value : [];
  const catalog = useToolCatalog();
  const names = tools.map((tool) => tool.name);
  const update = (index, tool) => onChange(tools.map((old, position) => (position === index ? tool : old)));
  const remove = (index) => onChange(tools.filter((_, position) => position !== index));
  return (
    <div className="agent-tools" id={id} role="group" aria-label={label}>
      {tools.length === 0 && <p className="muted small">No tools yet: the agent needs at least one.</p>}
      {tools.map((tool, index) => (
        <ToolCard
          key={`${index}:${tool.flow || tool.block || ""}`}
          tool={tool}
          index={index}
          taken={names.filter((_, position) => position !== index)}
          catalog={catalog}
          path={`${path}.${index}`}
          errors={errors}
          readOnly={readOnly}
          Form={Form}
          onChange={(next) => update(index, next)}
          onRemove={() => remove(index)}
        />
      ))}
      {!readOnly && <ToolPicker catalog={catalog} taken={names} onPick={(tool) => onChange([...tools, tool])} />}
    </div>
  );
}

// The catalogue, asked for each time an agent node is inspected (flows get published
// meanwhile); {state: "loading" | "ready" | "failed", flows, blocks, message}.
function useToolCatalog() {
  const { agentTools } = useEditorView();
  const [catalog, setCatalog] = useState({ state: "loading", flows: [], blocks: [] });
  useEffect(() => {
    if (!agentTools) return undefined;
    let live = true;
    agentTools
      .load()
      .then((found) => {
        if (!live) return;
        const flows = found.flows.filter((flow) => flow.slug !== agentTools.flowSlug);
        setCatalog({ state: "ready", flows, blocks: found.blocks });
      })
      .catch((error) => live && setCatalog({ state: "failed", flows: [], blocks: [], message: error.message }));
    return () => {
      live = false;
    };
  }, [agentTools]);
  return catalog;
}

function ToolPicker({ catalog, taken, onPick }) {
  const id = useId();
  const [choice, setChoice] = useState("");
  const select = useRef(null);
  const [kind, key] = splitChoice(choice);
  const chosen = kind === "flow" ? catalog.flows.find((flow) => flow.slug === key) : catalog.blocks.find((block) => block.key === key);
  const add = () => {
    if (!chosen) return;
    onPick(kind === "flow" ? flowTool(chosen, taken) : blockTool(chosen, taken));
    setChoice("");
    // The button is disabled until the next choice: keep the keyboard user's place.
    select.current?.focus();
  };
  return (
    <div className="tool-picker">
      <label htmlFor={`${id}-choice`}>Add a tool</label>
      <div className="tool-picker-row">
        <select
          ref={select}
          id={`${id}-choice`}
          value={choice}
          aria-describedby={chosen || catalog.state === "failed" ? `${id}-about` : undefined}
          disabled={catalog.state !== "ready"}
          onChange={(event) => setChoice(event.target.value)}
        >
          <option value="">{catalog.state === "loading" ? "Loading what the agent may call…" : "Choose a flow or a block…"}</option>
          <optgroup label="Published flows (run as a sub-flow)">
            {catalog.flows.length === 0 && <option disabled>No other published flow yet</option>}
            {catalog.flows.map((flow) => (
              <option key={flow.slug} value={`flow:${flow.slug}`}>
                {flow.name} ({flow.slug}, v{flow.version})
              </option>
            ))}
          </optgroup>
          <optgroup label="Action blocks">
            {catalog.blocks.map((block) => (
              <option key={block.key} value={`block:${block.key}`}>
                {block.title} ({block.key})
              </option>
            ))}
          </optgroup>
        </select>
        <button type="button" className="button button-small" disabled={!chosen} onClick={add}>
          Add tool
        </button>
      </div>
      {catalog.state === "failed" && (
        <span className="error" id={`${id}-about`} role="alert">
          The tools could not be loaded: {catalog.message}
        </span>
      )}
      {chosen && (
        <span className="help" id={`${id}-about`}>
          {chosen.description}
          {chosen.side_effect ? " Has side effects: the agent_tools policy sends its calls to review by default." : ""}
        </span>
      )}
    </div>
  );
}

function ToolCard({ tool, index, taken, catalog, path, errors, readOnly, Form, onChange, onRemove }) {
  const id = useId();
  const { blocks } = useEditorView();
  const set = (field, next) => {
    const copy = { ...tool };
    if (next === undefined || next === "") delete copy[field];
    else copy[field] = next;
    onChange(copy);
  };
  const own = errorsUnder(errors, path);
  const nameProblems = [...(own.name || [])];
  if (!nameProblems.length && !TOOL_NAME.test(tool.name || "")) nameProblems.push("use 1-64 letters, digits, _ or -");
  if (taken.includes(tool.name)) nameProblems.push("another tool has this name");
  const target = tool.flow || tool.block || "";
  const block = tool.block ? blocks[tool.block] : null;
  const source = tool.flow
    ? catalog.flows.find((flow) => flow.slug === tool.flow)
    : catalog.blocks.find((candidate) => candidate.key === tool.block);
  const missing = catalog.state === "ready" && !source;
  const fixed = tool.config || {};
  const derived = source ? openParameters(source.parameters, tool.flow ? {} : fixed) : null;
  const setConfig = (config) => {
    // A setting the builder fixes is no longer the model's to fill.
    const newlyFixed = Object.keys(config).filter((name) => !(name in fixed));
    onChange({ ...tool, config, ...(tool.parameters ? { parameters: withoutFields(tool.parameters, newlyFixed) } : {}) });
  };
  return (
    <div className="tool-card" data-tool={tool.name || ""} role="group" aria-label={`Tool ${index + 1}: ${tool.name || target}`}>
      <div className="tool-card-head">
        <span className={`tool-kind tool-kind-${tool.flow ? "flow" : "block"}`}>{tool.flow ? "Flow" : "Block"}</span>
        <span className="mono small tool-target">
          {target}
          {tool.flow && tool.version ? ` v${tool.version}` : ""}
        </span>
        {!readOnly && (
          <button type="button" className="icon-button" aria-label={`Remove tool ${tool.name || index + 1}`} onClick={onRemove}>
            ×
          </button>
        )}
      </div>
      {own[""] && <Problems id={`${id}-problems`} messages={own[""]} />}
      {missing && (
        <p className="error small" role="alert">
          {tool.flow ? `No published flow ${tool.flow} in this workspace.` : `${tool.block} cannot be an agent's tool.`}
        </p>
      )}
      <ToolField id={`${id}-name`} label="Name" help="What the model calls it." messages={nameProblems}>
        {(common) => (
          <input {...common} type="text" className="mono" value={tool.name || ""} disabled={readOnly} onChange={(event) => set("name", event.target.value)} />
        )}
      </ToolField>
      <ToolField id={`${id}-description`} label="Description" help="What the model reads to decide when to call it." messages={own.description}>
        {(common) => (
          <textarea {...common} rows={2} maxLength={1000} value={tool.description || ""} disabled={readOnly} onChange={(event) => set("description", event.target.value)} />
        )}
      </ToolField>
      {tool.flow && (
        <ToolField id={`${id}-version`} label="Pinned version" help="Empty: the latest published version." messages={own.version}>
          {(common) => (
            <input
              {...common}
              type="number"
              min={1}
              step={1}
              placeholder={source ? `latest (v${source.version})` : "latest"}
              value={tool.version ?? ""}
              disabled={readOnly}
              onChange={(event) => set("version", event.target.value === "" ? undefined : Number(event.target.value))}
            />
          )}
        </ToolField>
      )}
      {tool.block && block && (
        <details className="tool-config" open={Object.keys(fixed).length > 0 || Boolean(errorsStartingWith(errors, `${path}.config`))}>
          <summary>Fixed settings</summary>
          <p className="help">
            Settings left empty are the model&apos;s to fill (see Parameters); an expression here can read its arguments as{" "}
            <code>args.&lt;name&gt;</code>.
          </p>
          <Form schema={block.config_schema} value={fixed} problems={rerooted(errors, `${path}.config`)} readOnly={readOnly} onChange={setConfig} />
        </details>
      )}
      <ToolField
        id={`${id}-parameters`}
        label="Parameters"
        help="The JSON Schema of the arguments the model writes (an object schema)."
        messages={own.parameters}
      >
        {(common) => (
          <ParametersEditor
            common={common}
            value={tool.parameters}
            readOnly={readOnly}
            onChange={(next) => set("parameters", next)}
          />
        )}
      </ToolField>
      {!readOnly && derived && (
        <button type="button" className="button button-small" onClick={() => set("parameters", derived)}>
          Reset parameters from the {tool.flow ? "flow" : "block"}
        </button>
      )}
    </div>
  );
}

// One labelled control of a tool card; `children` renders the control with the id and
// the aria attributes that tie it to its help and problems.
function ToolField({ id, label, help, messages, children }) {
  const problems = messages || [];
  const describedBy = [help ? `${id}-help` : "", problems.length ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div className={`field${problems.length ? " field-invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, "aria-invalid": problems.length > 0 || undefined, "aria-describedby": describedBy || undefined })}
      {help && (
        <span className="help" id={`${id}-help`}>
          {help}
        </span>
      )}
      {problems.length > 0 && <Problems id={`${id}-error`} messages={problems} />}
    </div>
  );
}

function Problems({ id, messages }) {
  return (
    <span className="error" id={id} role="alert">
      {messages.join("; ")}
    </span>
  );
}

// The parameters as JSON text. The text is the builder's while it is not valid JSON; a
// change from outside (a reset, a fixed setting) replaces it.
function ParametersEditor({ common, value, readOnly, onChange }) {
  const shown = useMemo(() => (value ? JSON.stringify(value, null, 2) : ""), [value]);
  const [text, setText] = useState(shown);
  const [problem, setProblem] = useState("");
  useEffect(() => {
    setText((current) => (sameJson(current, value) ? current : shown));
    setProblem("");
  }, [shown, value]);
  const describedBy = [common["aria-describedby"], problem ? `${common.id}-local` : ""].filter(Boolean).join(" ");
  return (
    <>
      <textarea
        {...common}
        aria-invalid={problem ? true : common["aria-invalid"]}
        aria-describedby={describedBy || undefined}
        className="json-input"
        spellCheck={false}
        rows={6}
        value={text}
        placeholder="Empty: derived when the agent runs"
        disabled={readOnly}
        onChange={(event) => {
          const next = event.target.value;
          setText(next);
          if (!next.trim()) {
            setProblem("");
            onChange(undefined);
            return;
          }
          let parsed;
          try {
            parsed = JSON.parse(next);
          } catch {
            setProblem("not valid JSON yet");
            return;
          }
          if (!parsed || typeof parsed !== "object" || Array.isArray(parsed) || parsed.type !== "object") {
            setProblem('must be an object schema: {"type": "object", "properties": {…}}');
            return;
          }
          setProblem("");
          onChange(parsed);
        }}
      />
      {problem && (
        <span className="error" id={`${common.id}-local`} role="alert">
          {problem}
        </span>
      )}
      {value && !problem && <ArgumentList schema={value} />}
    </>
  );
}

// The arguments the parameters ask for, in words.
function ArgumentList({ schema }) {
  const properties = Object.entries(schema.properties || {});
  const required = new Set(schema.required || []);
  if (!properties.length) return <span className="help">The model passes no arguments.</span>;
  return (
    <ul className="tool-arguments" aria-label="Arguments the model writes">
      {properties.map(([name, spec]) => (
        <li key={name}>
          <code>{name}</code> {describeType(spec)}
          {required.has(name) ? " · required" : ""}
        </li>
      ))}
    </ul>
  );
}

function describeType(spec) {
  if (!spec || typeof spec !== "object") return "";
  if (Array.isArray(spec.enum)) return `one of ${spec.enum.map(String).join(", ")}`;
  return spec.type ? String(spec.type) : "any value";
}

// --- what a pick adds ---------------------------------------------------------------

function flowTool(flow, taken) {
  return {
    name: uniqueName(flow.slug, taken),
    description: flow.description || flow.name,
    flow: flow.slug,
    parameters: structuredClone(flow.parameters),
  };
}

function blockTool(block, taken) {
  return {
    name: uniqueName(block.key.split(".").pop(), taken),
    description: block.description || block.title,
    block: block.key,
    config: {},
    parameters: structuredClone(block.parameters),
  };
}

function uniqueName(base, taken) {
  const name = (base.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "tool").slice(0, 60);
  let candidate = name;
  for (let counter = 2; taken.includes(candidate); counter++) candidate = `${name}_${counter}`;
  return candidate;
}

function splitChoice(choice) {
  const at = choice.indexOf(":");
  return at < 0 ? ["", ""] : [choice.slice(0, at), choice.slice(at + 1)];
}

// --- schema and problem helpers -------------------------------------------------------

// The derived parameters without the settings the builder fixed.
function openParameters(parameters, fixed) {
  return withoutFields(structuredClone(parameters), Object.keys(fixed));
}

function withoutFields(schema, names) {
  if (!names.length || !schema || typeof schema !== "object") return schema;
  const properties = { ...(schema.properties || {}) };
  for (const name of names) delete properties[name];
  const next = { ...schema, properties };
  if (Array.isArray(schema.required)) next.required = schema.required.filter((name) => !names.includes(name));
  return next;
}

function sameJson(text, value) {
  if (!text.trim()) return value === undefined || value === null;
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

// Problems of one tool, by its field ("" for the tool as a whole).
function errorsUnder(errors, path) {
  const found = {};
  for (const [key, messages] of Object.entries(errors)) {
    if (key === path) found[""] = [...(found[""] || []), ...messages];
    else if (key.startsWith(`${path}.`)) {
      const field = key.slice(path.length + 1).split(".")[0];
      if (field !== "config") found[field] = [...(found[field] || []), ...messages];
    }
  }
  return found;
}

function errorsStartingWith(errors, prefix) {
  return Object.keys(errors).some((key) => key === prefix || key.startsWith(`${prefix}.`));
}

// The problems under `prefix`, as problems of the form rooted there.
function rerooted(errors, prefix) {
  const found = [];
  for (const [key, messages] of Object.entries(errors)) {
    if (key === prefix || key.startsWith(`${prefix}.`)) {
      for (const message of messages) found.push({ field: key.slice(prefix.length + 1), message });
    }
  }
  return found;
}
