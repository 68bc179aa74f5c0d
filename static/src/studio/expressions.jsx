// Help for writing expressions: the data they can see (trigger.*, steps.<id>.output.*) taken
// from the last test run or the sample input, offered as completions, and a live preview of
// what an expression evaluates to on that data (the server evaluates it: one CEL engine).
import { useEffect, useState } from "react";
import { useEditorView } from "./context.js";

const MAX_PATHS = 200;

export function runScope(run, sampleBody, triggerId) {
  const steps = {};
  let trigger = { body: sampleBody };
  if (run && run.steps) {
    for (const step of run.steps) {
      if (step.status === "succeeded") steps[step.node] = { output: step.output, port: step.port };
    }
    trigger = (triggerId && steps[triggerId] && steps[triggerId].output) || run.input || trigger;
  }
  return { trigger, steps };
}

function flatten(prefix, value, depth, into) {
  into.push(prefix);
  if (depth <= 0 || into.length > MAX_PATHS || value === null || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, item] of Object.entries(value)) {
    if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) flatten(`${prefix}.${key}`, item, depth - 1, into);
  }
}

export function completions(scope, upstream) {
  const paths = [];
  flatten("trigger", scope.trigger, 4, paths);
  for (const id of upstream) {
    const step = scope.steps[id];
    flatten(`steps.${id}.output`, step ? step.output : undefined, 3, paths);
    paths.push(`steps.${id}.port`);
  }
  return [...new Set(paths)];
}

export function ancestors(nodeId, edges) {
  const parents = new Map();
  for (const edge of edges) {
    if (!parents.has(edge.target)) parents.set(edge.target, []);
    parents.get(edge.target).push(edge.source);
  }
  const seen = new Set();
  const queue = [...(parents.get(nodeId) || [])];
  while (queue.length) {
    const id = queue.shift();
    if (seen.has(id)) continue;
    seen.add(id);
    queue.push(...(parents.get(id) || []));
  }
  return [...seen];
}

export function ExpressionPreview({ source }) {
  const { expressions } = useEditorView();
  const [result, setResult] = useState(null);
  const scope = expressions && expressions.scope;
  useEffect(() => {
    if (!expressions || !source || !source.trim()) {
      setResult(null);
      return undefined;
    }
    let live = true;
    const timer = setTimeout(() => {
      expressions
        .preview(source, scope)
        .then((answer) => {
          if (!live) return;
          setResult(answer.error ? { ok: false, message: answer.error.message } : { ok: true, value: answer.value });
        })
        .catch((error) => live && setResult({ ok: false, message: error.message }));
    }, 400);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [source, scope, expressions]);
  if (!result) return null;
  return result.ok ? (
    <span className="expr-preview" title="What this evaluates to on the sample input and the last test run">
      = <code>{short(JSON.stringify(result.value))}</code>
    </span>
  ) : (
    <span className="expr-preview expr-preview-error" title="Evaluated on the sample input and the last test run">
      {short(result.message)}
    </span>
  );
}

function short(text) {
  const value = text === undefined ? "undefined" : String(text);
  return value.length > 120 ? `${value.slice(0, 117)}…` : value;
}
