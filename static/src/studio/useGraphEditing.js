// Every edit of the graph: add (palette click or drop), connect, delete, configure, copy
// and paste, auto-layout, undo/redo, and the ports of blocks whose ports depend on their
// config. The editor (App.jsx) owns the state; this hook owns the operations on it.
import { addEdge, useReactFlow, useUpdateNodeInternals } from "@xyflow/react";
import { useCallback, useEffect, useRef } from "react";
import { autoLayout, blockOf, makeEdge, newNodeId, snapshot } from "./graph.js";
import { useHistory } from "./history.js";
import { DRAG_TYPE } from "./Palette.jsx";

// Nodes are about 220 × 70: a new one placed where another already is moves down a row
// until it overlaps none (blocks added one after another after the same block stack up).
const NODE_BOX = { width: 230, height: 90 };
function freeSpot(at, nodes) {
  const taken = (spot) =>
    nodes.some((node) => Math.abs(node.position.x - spot.x) < NODE_BOX.width && Math.abs(node.position.y - spot.y) < NODE_BOX.height);
  let spot = at;
  for (let step = 0; step < 50 && taken(spot); step += 1) spot = { x: spot.x, y: spot.y + NODE_BOX.height + 10 };
  return spot;
}

export function useGraphEditing({ api, blocks, readOnly, nodes, setNodes, setEdges, onNodesChange, onEdgesChange, wrapper, notify, setTab }) {
  const flowApi = useReactFlow();
  const updateNodeInternals = useUpdateNodeInternals();
  const history = useHistory();
  const clipboard = useRef(null);

  // --- history ------------------------------------------------------------------------
  const recordedThisTick = useRef(false);
  const record = useCallback(() => {
    if (recordedThisTick.current) return;
    recordedThisTick.current = true;
    setTimeout(() => {
      recordedThisTick.current = false;
    }, 0);
    history.record(snapshot(flowApi.getNodes(), flowApi.getEdges()));
  }, [history, flowApi]);
  const restore = useCallback(
    (state) => {
      if (!state) return;
      setNodes(state.nodes);
      setEdges(state.edges);
    },
    [setNodes, setEdges],
  );
  const undo = useCallback(() => restore(history.undo(snapshot(flowApi.getNodes(), flowApi.getEdges()))), [history, flowApi, restore]);
  const redo = useCallback(() => restore(history.redo(snapshot(flowApi.getNodes(), flowApi.getEdges()))), [history, flowApi, restore]);

  // --- graph edits ----------------------------------------------------------------------
  const handleNodesChange = useCallback(
    (changes) => {
      if (changes.some((change) => change.type === "remove")) record();
      onNodesChange(changes);
    },
    [onNodesChange, record],
  );
  const handleEdgesChange = useCallback(
    (changes) => {
      if (changes.some((change) => change.type === "remove")) record();
      onEdgesChange(changes);
    },
    [onEdgesChange, record],
  );
  const isValidConnection = useCallback(
    (connection) => {
      if (connection.source === connection.target) return false;
      const target = flowApi.getNode(connection.target);
      return !(target && blockOf(blocks, target.data)?.category === "trigger");
    },
    [flowApi, blocks],
  );

  const connect = useCallback(
    (connection) => {
      if (readOnly || !isValidConnection(connection)) return;
      record();
      const edge = makeEdge(connection.source, connection.sourceHandle || "out", connection.target);
      setEdges((current) => (current.some((old) => old.id === edge.id) ? current : addEdge(edge, current)));
    },
    [readOnly, isValidConnection, record, setEdges],
  );
  const selectOnly = useCallback(
    (ids) => {
      const wanted = new Set(ids);
      setNodes((current) => current.map((node) => ({ ...node, selected: wanted.has(node.id) })));
      setEdges((current) => current.map((edge) => (edge.selected ? { ...edge, selected: false } : edge)));
    },
    [setNodes, setEdges],
  );

  const addBlock = useCallback(
    (key, position) => {
      if (readOnly || !blocks[key]) return;
      const block = blocks[key];
      const current = flowApi.getNodes();
      const selected = current.filter((node) => node.selected);
      const anchor = selected.length === 1 ? selected[0] : null;
      let at = position;
      if (!at && anchor) at = { x: anchor.position.x + 280, y: anchor.position.y };
      if (!at) {
        const box = wrapper.current.getBoundingClientRect();
        at = flowApi.screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 });
        at = { x: at.x - 110, y: at.y - 35 };
      }
      if (!position) at = freeSpot(at, current);
      record();
      const id = newNodeId(key, new Set(current.map((node) => node.id)));
      const node = {
        id,
        type: "block",
        position: at,
        selected: true,
        data: { type: key, version: block.version, config: {}, ports: [...block.ports] },
      };
      setNodes((all) => [...all.map((old) => ({ ...old, selected: false })), node]);
      // Added with the keyboard or a click after a selected block: wire it in, as users expect.
      if (!position && anchor && block.category !== "trigger") {
        setEdges((all) => addEdge(makeEdge(anchor.id, (anchor.data.ports || ["out"])[0], id), all));
      }
      setTab("settings");
      notify(`Added ${block.title} (${id}).`);
      if (!position) {
        // Added from the palette without dragging: bring it into view.
        requestAnimationFrame(() => flowApi.fitView({ padding: 0.2, duration: 250, maxZoom: 1.1 }));
      }
    },
    [readOnly, blocks, flowApi, record, setNodes, setEdges, notify],
  );

  const onDrop = useCallback(
    (event) => {
      event.preventDefault();
      const key = event.dataTransfer.getData(DRAG_TYPE);
      if (!key) return;
      const position = flowApi.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      addBlock(key, { x: position.x - 110, y: position.y - 30 });
    },
    [flowApi, addBlock],
  );
  const onDragOver = useCallback((event) => {
    if (event.dataTransfer.types.includes(DRAG_TYPE)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
    }
  }, []);

  const configEdit = useRef({ node: null, at: 0 });
  const setConfig = useCallback(
    (id, config) => {
      const now = Date.now();
      if (configEdit.current.node !== id || now - configEdit.current.at > 1500) record();
      configEdit.current = { node: id, at: now };
      setNodes((all) => all.map((node) => (node.id === id ? { ...node, data: { ...node.data, config } } : node)));
    },
    [record, setNodes],
  );
  // Node-level fields outside the block config: label, notes, retry, timeout_seconds.
  const setNodeData = useCallback(
    (id, patch) => {
      const now = Date.now();
      if (configEdit.current.node !== id || now - configEdit.current.at > 1500) record();
      configEdit.current = { node: id, at: now };
      setNodes((all) =>
        all.map((node) => {
          if (node.id !== id) return node;
          const data = { ...node.data, ...patch };
          for (const [key, value] of Object.entries(patch)) {
            const empty = value === undefined || value === "" || (typeof value === "object" && value && !Object.keys(value).length);
            if (empty) delete data[key];
          }
          return { ...node, data };
        }),
      );
    },
    [record, setNodes],
  );

  // "Upgrade this node": the server applies each newer block version's config migration;
  // the node takes the latest version and the migrated config (one undo step).
  const upgradeNode = useCallback(
    async (node) => {
      if (readOnly) return;
      try {
        const answer = await api.upgrade(node.data.type, node.data.version || 1, node.data.config || {});
        record();
        setNodes((all) =>
          all.map((old) => (old.id === node.id ? { ...old, data: { ...old.data, version: answer.version, config: answer.config } } : old)),
        );
        const left = answer.problems.length ? ` ${answer.problems.length} setting(s) need a look.` : "";
        notify(`Upgraded ${node.id} to version ${answer.version}.${left}`);
      } catch (error) {
        notify(`Not upgraded: ${error.message}`);
      }
    },
    [api, readOnly, record, setNodes, notify],
  );

  // One port renamed in place (a switch case's name edited): its connections follow it
  // instead of pointing at a port that no longer exists.
  const followRenamedPort = (id, before, after) => {
    if (before.length !== after.length) return;
    const renamed = before.map((port, index) => [port, after[index]]).filter(([old, now]) => old !== now);
    if (renamed.length !== 1) return;
    const [[old, now]] = renamed;
    setEdges((all) => all.map((edge) => (edge.source === id && edge.sourceHandle === old ? makeEdge(id, now, edge.target) : edge)));
  };

  // Blocks whose ports depend on their config (switch cases, policy routes) ask the server.
  useEffect(() => {
    const dynamic = nodes.filter((node) => blockOf(blocks, node.data)?.dynamic_ports);
    if (!dynamic.length) return undefined;
    const timer = setTimeout(async () => {
      for (const node of dynamic) {
        try {
          const answer = await api.ports(node.data.type, node.data.config || {}, node.data.version || 1);
          if (answer.config_valid && answer.ports.join() !== (node.data.ports || []).join()) {
            setNodes((all) => all.map((old) => (old.id === node.id ? { ...old, data: { ...old.data, ports: answer.ports } } : old)));
            followRenamedPort(node.id, node.data.ports || [], answer.ports);
            requestAnimationFrame(() => updateNodeInternals(node.id));
          }
        } catch {
          /* ports stay as they were; validation reports the config */
        }
      }
    }, 500);
    return () => clearTimeout(timer);
    // Only config changes matter, not positions.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [JSON.stringify(nodes.map((node) => [node.id, node.data.config])), api, blocks]);

  const deleteNodes = useCallback(
    (ids) => {
      record();
      const gone = new Set(ids);
      setNodes((all) => all.filter((node) => !gone.has(node.id)));
      setEdges((all) => all.filter((edge) => !gone.has(edge.source) && !gone.has(edge.target)));
    },
    [record, setNodes, setEdges],
  );
  const disconnect = useCallback(
    (edgeId) => {
      record();
      setEdges((all) => all.filter((edge) => edge.id !== edgeId));
    },
    [record, setEdges],
  );

  const copy = useCallback(() => {
    const chosen = flowApi.getNodes().filter((node) => node.selected);
    if (!chosen.length) return;
    const ids = new Set(chosen.map((node) => node.id));
    clipboard.current = {
      nodes: structuredClone(snapshot(chosen, []).nodes),
      edges: flowApi.getEdges().filter((edge) => ids.has(edge.source) && ids.has(edge.target)),
    };
    notify(`Copied ${chosen.length} block(s).`);
  }, [flowApi, notify]);
  const paste = useCallback(() => {
    if (readOnly || !clipboard.current) return;
    record();
    const taken = new Set(flowApi.getNodes().map((node) => node.id));
    const renamed = {};
    const pasted = clipboard.current.nodes.map((node) => {
      const id = newNodeId(node.data.type, taken);
      taken.add(id);
      renamed[node.id] = id;
      return { ...structuredClone(node), id, selected: true, position: { x: node.position.x + 40, y: node.position.y + 60 } };
    });
    const pastedEdges = clipboard.current.edges.map((edge) => makeEdge(renamed[edge.source], edge.sourceHandle, renamed[edge.target]));
    setNodes((all) => [...all.map((node) => ({ ...node, selected: false })), ...pasted]);
    setEdges((all) => [...all, ...pastedEdges]);
    clipboard.current = { ...clipboard.current, nodes: pasted.map((node) => ({ ...node, selected: false })), edges: pastedEdges };
  }, [readOnly, record, flowApi, setNodes, setEdges]);

  const tidy = useCallback(() => {
    if (readOnly) return;
    record();
    setNodes((all) => autoLayout(all, flowApi.getEdges()));
    requestAnimationFrame(() => flowApi.fitView({ padding: 0.2, duration: 300 }));
  }, [readOnly, record, setNodes, flowApi]);

  const focusNode = useCallback(
    (id, panel = "settings") => {
      selectOnly([id]);
      setTab(panel);
      const node = flowApi.getNode(id);
      if (node) flowApi.fitView({ nodes: [{ id }], duration: 300, maxZoom: 1.2, padding: 0.6 });
    },
    [selectOnly, flowApi],
  );

  return {
    canUndo: history.canUndo,
    canRedo: history.canRedo,
    record,
    undo,
    redo,
    handleNodesChange,
    handleEdgesChange,
    connect,
    isValidConnection,
    selectOnly,
    addBlock,
    upgradeNode,
    onDrop,
    onDragOver,
    setConfig,
    setNodeData,
    deleteNodes,
    disconnect,
    copy,
    paste,
    tidy,
    focusNode,
  };
}
