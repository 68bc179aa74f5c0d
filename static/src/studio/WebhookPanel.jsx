// Shown under a webhook trigger's settings: the flow's URL with a copy button, a ready
// curl line, and what a caller will get back (sync or async) for the flow as drawn.
import { useState } from "react";
import { useEditorView } from "./context.js";

export default function WebhookPanel({ node, nodes }) {
  const { blocks, webhook } = useEditorView();
  if (!webhook || !webhook.path) return null;
  const config = node.data.config || {};
  const url = `${window.location.origin}${webhook.path}`;
  const body = JSON.stringify(config.sample || {});
  const signed = config.auth === "hmac";
  const curl = `curl -X POST '${url}' -H 'Content-Type: application/json'${signed ? " -H 'X-Flowgate-Signature: t=<unix time>,v1=<HMAC-SHA256 of \"t.body\">'" : ""} -d '${body.replaceAll("'", "'\\''")}'`;
  return (
    <section className="webhook-panel" aria-labelledby="webhook-heading">
      <h3 className="panel-heading" id="webhook-heading">Webhook</h3>
      {!webhook.published && <p className="muted small">Publish the flow first: until then the URL answers 409.</p>}
      <CopyField id="webhook-url" label="URL" copyLabel="Copy URL" value={url} />
      <CopyField id="webhook-curl" label="Try it with curl" copyLabel="Copy curl command" value={curl} multiline />
      <p className="webhook-behaviour" data-webhook-behaviour={config.mode === "sync" ? "sync" : "async"}>
        {behaviour(config, nodes, blocks)}
      </p>
      <p className="muted small webhook-secret" id="webhook-secret">
        {signed ? "Deliveries must be signed with the flow's signing secret. " : "Set Auth to hmac to require signed deliveries. "}
        {webhook.secretUrl ? (
          <a href={webhook.secretUrl}>Signing secret: reveal or rotate</a>
        ) : (
          "An admin reveals or rotates the signing secret in the flow's settings."
        )}
      </p>
    </section>
  );
}

// What a caller gets back, in the builder's words.
export function behaviour(config, nodes, blocks) {
  if (config.mode !== "sync") {
    return "Async: the caller gets 202 at once with the run's id and URL; the run goes on in the background.";
  }
  const timeout = config.timeout_seconds || 10;
  const human = nodes.find((other) => blocks[other.data.type] && blocks[other.data.type].category === "human");
  const responds = nodes.some((other) => other.data.type === "flow.respond");
  const answer = responds ? "the Respond block's status and body" : "200 with the run's output (add a Respond block to shape it)";
  const parked = human ? ` If the run reaches ${human.data.label || human.id} (a person's review) first, the caller gets 202 with the run's URL then.` : "";
  return `Sync: the caller waits up to ${timeout} s and gets ${answer}.${parked} If the run takes longer, the caller gets 202 with the run's URL and the run goes on.`;
}

function CopyField({ id, label, copyLabel, value, multiline }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied(true);
      window.setTimeout(() => setCopied(false), 2000);
    } catch {
      document.getElementById(id).select();
    }
  };
  const Field = multiline ? "textarea" : "input";
  return (
    <div className="field copy-field">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <Field id={id} className="mono" readOnly value={value} rows={multiline ? 3 : undefined} onFocus={(event) => event.target.select()} />
        <button type="button" className="button button-small" onClick={copy} aria-label={copyLabel}>
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
    </div>
  );
}
