// One block on the canvas: title, id, category colour, an input handle (not for triggers),
// one output handle per port, validation badge and the live test-run status.
import { Handle, Position } from "@xyflow/react";
import { memo } from "react";
import { useEditorView } from "./context.js";
import { blockOf } from "./graph.js";
import { glyph } from "./icons.js";

const STATUS_LABELS = {
  pending: "Pending",
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  waiting: "Waiting",
  skipped: "Skipped",
  cancelled: "Cancelled",
};

function BlockNode({ id, data, selected }) {
  const { blocks, problems, steps, diff } = useEditorView();
  const change = diff && diff[id];
  const block = blockOf(blocks, data);
  const category = block ? block.category : "unknown";
  const nodeProblems = problems[id] || [];
  const step = steps[id];
  const status = step ? step.status : null;
  const ports = data.ports || ["out"];
  const title = data.label || (block ? block.title : data.type);
  const classes = ["block-node", `cat-${category}`];
  if (selected) classes.push("is-selected");
  if (nodeProblems.length) classes.push("has-problems");
  if (status) classes.push(`run-${status}`);
  if (change) classes.push(`diff-mark-${change}`);
  let summary = `${title} (${id})`;
  if (status) summary += `, ${STATUS_LABELS[status] || status}`;
  if (nodeProblems.length) summary += `, ${nodeProblems.length} problem(s)`;
  if (change) summary += `, ${change} since the compared version`;

  return (
    <div className={classes.join(" ")} data-node-id={id} data-status={status || ""} aria-label={summary}>
      {category !== "trigger" && (
        <Handle type="target" position={Position.Left} id="in" className="handle handle-in" title={`Input of ${id}`} />
      )}
      {change && <span className={`diff-pill diff-pill-${change}`}>{change === "added" ? "New" : "Changed"}</span>}
      <div className="block-node-header">
        <span className="block-icon" aria-hidden="true">{glyph(block && block.icon)}</span>
        <div className="block-titles">
          <span className="block-title">{title}</span>
          <span className="block-id">{id}</span>
        </div>
        {status && (
          <span className={`run-pill run-pill-${status}`} title={STATUS_LABELS[status] || status}>
            {STATUS_LABELS[status] || status}
          </span>
        )}
      </div>
      {nodeProblems.length > 0 && (
        <div className="block-problem" title={nodeProblems.map(problemText).join("\n")}>
          <span aria-hidden="true">⚠</span> {nodeProblems.length === 1 ? problemText(nodeProblems[0]) : `${nodeProblems.length} problems`}
        </div>
      )}
      {ports.length === 1 ? (
        <Handle type="source" position={Position.Right} id={ports[0]} className={`handle handle-out port-${ports[0]}`} title={`Output of ${id}`} />
      ) : (
        <div className="block-ports">
          {ports.map((port) => (
            <div className="block-port" key={port}>
              <span className="port-label">{port}</span>
              <Handle
                type="source"
                position={Position.Right}
                id={port}
                className={`handle handle-out port-${port}`}
                title={`Output ${port} of ${id}`}
              />
            </div>
          ))}
        </div>
      )}
    </div>
  );
}

export default memo(BlockNode);

// "values is required", not "is required": a problem names its field where it has one.
function problemText(problem) {
  const field = problem.field && problem.field !== "edges" ? problem.field : "";
  return field && !problem.message.startsWith(field) ? `${field} ${problem.message}` : problem.message;
}
