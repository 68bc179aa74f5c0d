// Conversion between the flow document (flowgate/flow@1) and React Flow's nodes and edges,
// plus the small graph algorithms the canvas needs (ids, auto-layout).

export const NODE_ID = /^[a-z][a-z0-9_]{0,62}$/;
const NODE_EXTRAS = ["version", "label", "notes", "retry", "timeout_seconds"];

// The catalogue lists every version of a block; the editor looks a node's block up by
// "key@version" (a node without a version predates them: version 1), and the palette by
// key, which names the latest.
export function blockIndex(catalog) {
  const index = {};
  for (const block of catalog) {
    index[`${block.key}@${block.version}`] = block;
    if (block.version === block.latest_version) index[block.key] = block;
  }
  return index;
}

export function blockOf(blocks, data) {
  return blocks[`${data.type}@${data.version || 1}`];
}

export function edgeId(source, port, target) {
  return `${source}:${port}->${target}`;
}

export function toCanvas(definition, blocks) {
  const layout = definition.layout || {};
  const nodes = (definition.nodes || []).map((raw, index) => {
    const block = blockOf(blocks, raw);
    const position = Array.isArray(layout[raw.id])
      ? { x: layout[raw.id][0], y: layout[raw.id][1] }
      : { x: 280 * index, y: 0 };
    const data = { type: raw.type, config: raw.config || {}, ports: block ? [...block.ports] : ["out"] };
    for (const key of NODE_EXTRAS) if (raw[key] !== undefined) data[key] = raw[key];
    data.version = raw.version || 1; // shown and saved as the version 1 it loads as
    return { id: raw.id, type: "block", position, data };
  });
  const edges = (definition.edges || []).map((raw) => {
    const port = raw.port || firstPort(nodes, raw.from);
    return makeEdge(raw.from, port, raw.to);
  });
  return { nodes, edges };
}

function firstPort(nodes, id) {
  const node = nodes.find((candidate) => candidate.id === id);
  return (node && node.data.ports[0]) || "out";
}

export function makeEdge(source, port, target) {
  return { id: edgeId(source, port, target), source, target, sourceHandle: port, type: "default" };
}

export function toDefinition(meta, nodes, edges) {
  const layout = {};
  const outNodes = nodes.map((node) => {
    layout[node.id] = [Math.round(node.position.x), Math.round(node.position.y)];
    const raw = { id: node.id, type: node.data.type, config: node.data.config || {} };
    for (const key of NODE_EXTRAS) {
      const value = node.data[key];
      if (value !== undefined && value !== "") raw[key] = value;
    }
    return raw;
  });
  const outEdges = edges.map((edge) => ({ from: edge.source, to: edge.target, port: edge.sourceHandle }));
  return { ...meta, nodes: outNodes, edges: outEdges, layout };
}

export function newNodeId(blockKey, taken) {
  const stem =
    (blockKey.split(".").pop() || "step").toLowerCase().replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "") ||
    "step";
  if (!taken.has(stem)) return stem;
  let counter = 2;
  while (taken.has(`${stem}_${counter}`)) counter += 1;
  return `${stem}_${counter}`;
}

// Layered layout: each node's column is its longest distance from a root; rows keep the
// current vertical order so the result feels stable.
export function autoLayout(nodes, edges) {
  const depth = new Map(nodes.map((node) => [node.id, 0]));
  const children = new Map(nodes.map((node) => [node.id, []]));
  for (const edge of edges) if (children.has(edge.source)) children.get(edge.source).push(edge.target);
  for (let pass = 0; pass < nodes.length; pass += 1) {
    let changed = false;
    for (const edge of edges) {
      const next = (depth.get(edge.source) ?? 0) + 1;
      if (depth.has(edge.target) && next > depth.get(edge.target)) {
        depth.set(edge.target, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = new Map();
  const ordered = [...nodes].sort((a, b) => a.position.y - b.position.y);
  for (const node of ordered) {
    const column = depth.get(node.id);
    if (!columns.has(column)) columns.set(column, []);
    columns.get(column).push(node.id);
  }
  const positions = new Map();
  for (const [column, ids] of columns) {
    ids.forEach((id, row) => {
      positions.set(id, { x: column * 280, y: (row - (ids.length - 1) / 2) * 160 });
    });
  }
  return nodes.map((node) => ({ ...node, position: positions.get(node.id) || node.position }));
}

// The document part of the canvas state (no selection, no measurements), for history.
export function snapshot(nodes, edges) {
  return {
    nodes: nodes.map(({ id, type, position, data }) => ({ id, type, position, data })),
    edges: edges.map(({ id, source, target, sourceHandle, type }) => ({ id, source, target, sourceHandle, type })),
  };
}
