// A form generated from a block's config JSON Schema (the same schema the server validates
// with). Each field shows its problems, local or from the server, beside it.
import { useEffect, useId, useState } from "react";
import AgentToolsControl from "./AgentTools.jsx";
import { ExpressionPreview } from "./expressions.jsx";
import { emptyValue, kindOf, matchesType, normalisePath, options, resolve } from "./schema.js";

export const SUGGESTIONS_ID = "expression-suggestions";

export default function SchemaForm({ schema, value, onChange, problems, readOnly }) {
  const byField = {};
  for (const problem of problems) {
    const key = normalisePath(problem.field || "");
    (byField[key] = byField[key] || []).push(problem.message);
  }
  return (
    <ObjectFields
      schema={schema}
      root={schema}
      value={value || {}}
      onChange={onChange}
      path=""
      errors={byField}
      readOnly={readOnly}
    />
  );
}

function ObjectFields({ schema, root, value, onChange, path, errors, readOnly }) {
  const properties = Object.entries(schema.properties || {});
  const required = new Set(schema.required || []);
  if (!properties.length) return <p className="muted small">This block has no settings.</p>;
  return properties.map(([name, sub]) => (
    <Field
      key={name}
      name={name}
      schema={sub}
      root={root}
      required={required.has(name)}
      value={value[name]}
      path={path ? `${path}.${name}` : name}
      errors={errors}
      readOnly={readOnly}
      onChange={(next) => {
        const copy = { ...value };
        if (next === undefined || (next === "" && !required.has(name))) delete copy[name];
        else copy[name] = next;
        onChange(copy);
      }}
    />
  ));
}

function Field({ name, schema, root, required, value, onChange, path, errors, readOnly }) {
  const id = useId();
  const resolved = resolve(schema, root);
  const label = resolved.title || schema.title || humanize(name);
  const messages = errors[path] || [];
  const nested = Object.entries(errors).filter(([key]) => key.startsWith(`${path}.`));
  const describedBy = [];
  if (resolved.description) describedBy.push(`${id}-help`);
  if (messages.length) describedBy.push(`${id}-error`);
  const control = (
    <Control
      id={id}
      schema={resolved}
      root={root}
      value={value}
      onChange={onChange}
      path={path}
      errors={errors}
      invalid={messages.length > 0}
      describedBy={describedBy.join(" ") || undefined}
      readOnly={readOnly}
      label={label}
    />
  );
  return (
    <div className={`field${messages.length || nested.length ? " field-invalid" : ""}`} data-field={path}>
      <label htmlFor={id}>
        {label}
        {required && <span className="required" aria-hidden="true"> *</span>}
        {required && <span className="visually-hidden"> (required)</span>}
        {isExpression(resolved) && <span className="expr-badge" title="A CEL expression, e.g. trigger.body.amount > 100">expr</span>}
      </label>
      {control}
      {resolved.description && (
        <span className="help" id={`${id}-help`}>
          {resolved.description}
        </span>
      )}
      {messages.length > 0 && (
        <span className="error" id={`${id}-error`} role="alert">
          {messages.join("; ")}
        </span>
      )}
    </div>
  );
}

function isExpression(schema) {
  return schema.format === "cel" || schema.format === "cel-template";
}

function Control({ id, schema, root, value, onChange, path, errors, invalid, describedBy, readOnly, label }) {
  const common = { id, "aria-invalid": invalid || undefined, "aria-describedby": describedBy, disabled: readOnly };
  const choice = options(schema, root);
  if (choice) {
    if (choice.length === 1) return <Control {...{ id, schema: { ...choice[0], description: undefined }, root, value, onChange, path, errors, invalid, describedBy, readOnly, label }} />;
    return <ChoiceControl {...{ id, choice, root, value, onChange, path, errors, invalid, describedBy, readOnly, label }} />;
  }
  if (schema.format === "agent-tools") {
    return <AgentToolsControl {...{ id, value, onChange, path, errors, readOnly, label }} Form={SchemaForm} />;
  }
  switch (kindOf(schema)) {
    case "enum":
      return (
        <select {...common} value={value ?? schema.default ?? ""} onChange={(event) => onChange(event.target.value)}>
          {schema.default === undefined && <option value="">—</option>}
          {schema.enum.map((option) => (
            <option key={String(option)} value={option}>{String(option)}</option>
          ))}
        </select>
      );
    case "expression":
    case "string":
      return (
        <>
          <input
            {...common}
            type="text"
            className={isExpression(schema) ? "expr-input" : undefined}
            spellCheck={isExpression(schema) ? false : undefined}
            list={schema.format === "cel" ? SUGGESTIONS_ID : undefined}
            autoComplete="off"
            value={value ?? ""}
            placeholder={schema.default !== undefined ? String(schema.default) : isExpression(schema) ? "e.g. trigger.body.amount" : ""}
            onChange={(event) => onChange(event.target.value)}
          />
          {schema.format === "cel" && <ExpressionPreview source={value} />}
        </>
      );
    case "number":
      return <NumberInput common={common} schema={schema} value={value} onChange={onChange} />;
    case "boolean":
      return <input {...common} type="checkbox" checked={Boolean(value ?? schema.default)} onChange={(event) => onChange(event.target.checked)} />;
    case "object":
      return (
        <fieldset className="nested" id={id} aria-label={label}>
          <ObjectFields schema={schema} root={root} value={value || {}} onChange={onChange} path={path} errors={errors} readOnly={readOnly} />
        </fieldset>
      );
    case "map":
      return <MapControl {...{ id, schema, root, value, onChange, path, errors, readOnly, label }} />;
    case "array":
      return <ArrayControl {...{ id, schema, root, value, onChange, path, errors, readOnly, label }} />;
    default:
      return <JsonControl common={common} value={value} onChange={onChange} />;
  }
}

function NumberInput({ common, schema, value, onChange }) {
  const [text, setText] = useState(value === undefined || value === null ? "" : String(value));
  const shown = value === undefined || value === null ? text : Number(text) === value ? text : String(value);
  return (
    <input
      {...common}
      type="number"
      inputMode="decimal"
      step={schema.type === "integer" ? 1 : "any"}
      min={schema.minimum}
      max={schema.maximum}
      placeholder={schema.default !== undefined ? String(schema.default) : ""}
      value={shown}
      onChange={(event) => {
        setText(event.target.value);
        if (event.target.value === "") onChange(undefined);
        else onChange(Number(event.target.value));
      }}
    />
  );
}

function ChoiceControl({ id, choice, root, value, onChange, path, errors, invalid, describedBy, readOnly, label }) {
  const current = Math.max(0, choice.findIndex((option) => value !== undefined && value !== null && matchesType(option, value)));
  const names = choice.map((option) => (option.type === "object" ? "Fields" : option.format === "cel" ? "One expression" : option.type));
  return (
    <div className="choice">
      <div className="segmented" role="radiogroup" aria-label={`${label}: kind of value`}>
        {choice.map((option, index) => (
          <label key={names[index]} className={index === current ? "is-on" : ""}>
            <input
              type="radio"
              name={`${id}-kind`}
              checked={index === current}
              disabled={readOnly}
              onChange={() => onChange(emptyValue(option, root))}
            />
            {names[index]}
          </label>
        ))}
      </div>
      <Control {...{ id, schema: { ...choice[current], description: undefined }, root, value, onChange, path, errors, invalid, describedBy, readOnly, label }} />
    </div>
  );
}

// An entry's name, renamed as it is typed, except to a name another entry has (or to
// nothing): that would merge two entries and lose one, so it waits here, flagged.
function MapKeyInput({ name, taken, label, disabled, onRename }) {
  const [draft, setDraft] = useState(name);
  useEffect(() => setDraft(name), [name]);
  const problem = draft === "" ? "a name is required" : draft !== name && taken.includes(draft) ? `another entry is named ${draft}` : "";
  return (
    <>
      <input
        type="text"
        className="map-key"
        aria-label={label}
        aria-invalid={problem ? true : undefined}
        title={problem || undefined}
        value={draft}
        disabled={disabled}
        onChange={(event) => {
          const next = event.target.value;
          setDraft(next);
          if (next !== "" && !taken.includes(next)) onRename(next);
        }}
        onBlur={() => setDraft(name)}
      />
      {problem && <span className="map-key-error" role="alert">{problem}</span>}
    </>
  );
}

function MapControl({ id, schema, root, value, onChange, path, errors, readOnly, label }) {
  const entries = Object.entries(value || {});
  const itemSchema = resolve(schema.additionalProperties, root);
  const rename = (index, key) => {
    const next = entries.map(([name, item], position) => (position === index ? [key, item] : [name, item]));
    onChange(Object.fromEntries(next));
  };
  const setItem = (key, item) => onChange({ ...(value || {}), [key]: item });
  const remove = (key) => {
    const copy = { ...(value || {}) };
    delete copy[key];
    onChange(copy);
  };
  const add = () => {
    let key = "field";
    let counter = 2;
    while (value && key in value) key = `field_${counter++}`;
    onChange({ ...(value || {}), [key]: emptyValue(itemSchema, root) });
  };
  return (
    <div className="map-control" id={id} role="group" aria-label={label}>
      {entries.length === 0 && <p className="muted small">No entries yet.</p>}
      {entries.map(([key, item], index) => {
        const itemErrors = errors[`${path}.${key}`] || [];
        return (
          <div className="map-row" key={index}>
            <MapKeyInput
              name={key}
              taken={entries.filter((_, position) => position !== index).map(([name]) => name)}
              label={`${label}: name of entry ${index + 1}`}
              disabled={readOnly}
              onRename={(next) => rename(index, next)}
            />
            {kindOf(itemSchema) === "expression" || kindOf(itemSchema) === "string" ? (
              <input
                type="text"
                className={`map-value${isExpression(itemSchema) ? " expr-input" : ""}`}
                aria-label={`${label}: value of ${key || `entry ${index + 1}`}`}
                aria-invalid={itemErrors.length > 0 || undefined}
                spellCheck={false}
                list={itemSchema.format === "cel" ? SUGGESTIONS_ID : undefined}
                autoComplete="off"
                value={item ?? ""}
                disabled={readOnly}
                placeholder={isExpression(itemSchema) ? "expression" : "value"}
                onChange={(event) => setItem(key, event.target.value)}
              />
            ) : (
              <JsonControl common={{ "aria-label": `${label}: value of ${key}`, disabled: readOnly }} value={item} onChange={(next) => setItem(key, next)} />
            )}
            {!readOnly && (
              <button type="button" className="icon-button" aria-label={`Remove ${key || `entry ${index + 1}`}`} onClick={() => remove(key)}>
                ×
              </button>
            )}
            {itemSchema.format === "cel" && item && (
              <span className="map-preview">
                <ExpressionPreview source={item} />
              </span>
            )}
            {itemErrors.length > 0 && <span className="error map-error" role="alert">{itemErrors.join("; ")}</span>}
          </div>
        );
      })}
      {!readOnly && (
        <button type="button" className="button button-small" onClick={add}>
          + Add entry
        </button>
      )}
    </div>
  );
}

function ArrayControl({ id, schema, root, value, onChange, path, errors, readOnly, label }) {
  const items = Array.isArray(value) ? value : [];
  const itemSchema = resolve(schema.items || {}, root);
  const update = (index, item) => onChange(items.map((old, position) => (position === index ? item : old)));
  return (
    <div className="array-control" id={id} role="group" aria-label={label}>
      {items.map((item, index) => (
        <div className="array-item" key={index}>
          <div className="array-item-head">
            <span className="muted small">#{index + 1}</span>
            {!readOnly && (
              <button type="button" className="icon-button" aria-label={`Remove item ${index + 1} of ${label}`} onClick={() => onChange(items.filter((_, position) => position !== index))}>
                ×
              </button>
            )}
          </div>
          {kindOf(itemSchema) === "object" ? (
            <ObjectFields schema={itemSchema} root={root} value={item || {}} onChange={(next) => update(index, next)} path={`${path}.${index}`} errors={errors} readOnly={readOnly} />
          ) : (
            <input
              type="text"
              aria-label={`${label} item ${index + 1}`}
              value={item ?? ""}
              disabled={readOnly}
              onChange={(event) => update(index, event.target.value)}
            />
          )}
        </div>
      ))}
      {!readOnly && (
        <button type="button" className="button button-small" onClick={() => onChange([...items, emptyValue(itemSchema, root)])}>
          + Add {singular(label)}
        </button>
      )}
    </div>
  );
}

function JsonControl({ common, value, onChange }) {
  const [text, setText] = useState(() => JSON.stringify(value ?? {}, null, 2));
  const [error, setError] = useState("");
  return (
    <>
      <textarea
        {...common}
        className="json-input"
        spellCheck={false}
        rows={4}
        value={text}
        aria-invalid={error ? true : common["aria-invalid"]}
        onChange={(event) => {
          setText(event.target.value);
          try {
            const parsed = event.target.value.trim() ? JSON.parse(event.target.value) : {};
            setError("");
            onChange(parsed);
          } catch {
            setError("not valid JSON yet");
          }
        }}
      />
      {error && <span className="error" role="alert">{error}</span>}
    </>
  );
}

function humanize(name) {
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function singular(label) {
  const word = String(label || "item").toLowerCase();
  return word.endsWith("s") && word.length > 3 ? word.slice(0, -1) : word;
}
