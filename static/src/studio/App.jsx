// The flow editor: canvas, palette, inspector and dock, wired to the REST API.
// State lives here; the pieces it renders are presentational.
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  addEdge,
  useEdgesState,
  useNodesState,
  useReactFlow,
  useUpdateNodeInternals,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import BlockNode from "./BlockNode.jsx";
import { EditorView } from "./context.js";
import { ancestors, completions, runScope } from "./expressions.jsx";
import { autoLayout, makeEdge, newNodeId, snapshot, toCanvas, toDefinition } from "./graph.js";
import { useHistory } from "./history.js";
import Inspector from "./Inspector.jsx";
import Palette, { DRAG_TYPE } from "./Palette.jsx";
import { ProblemsList, PublishDialog, TestRunPanel, VersionsPanel } from "./Panels.jsx";
import { useTestRun } from "./runs.js";
import { localProblems } from "./schema.js";
import Toolbar from "./Toolbar.jsx";
import { useAutosave } from "./useAutosave.js";
import { useShortcuts } from "./shortcuts.js";

const NODE_TYPES = { block: BlockNode };
const CATEGORY_COLOURS = {
  trigger: "#7c3aed",
  connector: "#0891b2",
  model: "#db2777",
  policy: "#ea580c",
  logic: "#2563eb",
  human: "#16a34a",
  flow: "#64748b",
};

export default function App({ api, loaded, settings }) {
  const { catalog, flow, ports } = loaded;
  const readOnly = !settings.canEdit;
  const blocks = useMemo(() => Object.fromEntries(catalog.map((block) => [block.key, block])), [catalog]);
  const initial = useMemo(() => {
    const canvas = toCanvas(flow.draft.definition, blocks);
    for (const node of canvas.nodes) if (ports[node.id]) node.data.ports = ports[node.id];
    return canvas;
  }, [flow, blocks, ports]);
  const [meta, setMeta] = useState(() => {
    const { nodes, edges, layout, ...rest } = flow.draft.definition;
    return rest;
  });
  const [nodes, setNodes, onNodesChange] = useNodesState(initial.nodes);
  const [edges, setEdges, onEdgesChange] = useEdgesState(initial.edges);
  const [serverProblems, setServerProblems] = useState(loaded.problems);
  const [tab, setTab] = useState("settings");
  const [dock, setDock] = useState(loaded.problems.length ? "problems" : "test");
  const [dockOpen, setDockOpen] = useState(true);
  const [publishing, setPublishing] = useState(null); // null | {error}
  const [published, setPublished] = useState(flow.published_version);
  const [versionsKey, setVersionsKey] = useState(0);
  const [notice, setNotice] = useState("");
  const [sample, setSample] = useState(() => sampleFor(flow.draft.definition));
  const [starting, setStarting] = useState(false);
  const flowApi = useReactFlow();
  const updateNodeInternals = useUpdateNodeInternals();
  const history = useHistory();
  const testRun = useTestRun(api);
  const clipboard = useRef(null);
  const wrapper = useRef(null);

  const definition = useMemo(() => toDefinition(meta, nodes, edges), [meta, nodes, edges]);
  const onSaved = useCallback((problems) => setServerProblems(problems), []);
  const autosave = useAutosave({
    api,
    definition,
    initialRevision: flow.draft.revision,
    enabled: !readOnly,
    onSaved,
  });

  const noticeTimer = useRef(null);
  const notify = useCallback((text) => {
    setNotice(text);
    window.clearTimeout(noticeTimer.current);
    noticeTimer.current = window.setTimeout(() => setNotice(""), 5000);
  }, []);

  // --- problems: the server's, plus what the form can tell locally --------------------
  const problems = useMemo(() => {
    const ids = new Set(nodes.map((node) => node.id));
    const list = serverProblems.filter((problem) => !problem.node || ids.has(problem.node));
    const seen = new Set(list.map((problem) => `${problem.node}|${problem.field}|${problem.message}`));
    for (const node of nodes) {
      const block = blocks[node.data.type];
      if (!block) continue;
      for (const problem of localProblems(block.config_schema, node.data.config || {})) {
        const key = `${node.id}|${problem.field}|${problem.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          list.push({ ...problem, node: node.id });
        }
      }
    }
    return list;
  }, [serverProblems, nodes, blocks]);
  const problemsByNode = useMemo(() => {
    const map = {};
    for (const problem of problems) if (problem.node) (map[problem.node] = map[problem.node] || []).push(problem);
    return map;
  }, [problems]);

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
  const connect = useCallback(
    (connection) => {
      if (readOnly || connection.source === connection.target) return;
      record();
      const edge = makeEdge(connection.source, connection.sourceHandle || "out", connection.target);
      setEdges((current) => (current.some((old) => old.id === edge.id) ? current : addEdge(edge, current)));
    },
    [readOnly, record, setEdges],
  );
  const isValidConnection = useCallback(
    (connection) => {
      if (connection.source === connection.target) return false;
      const target = flowApi.getNode(connection.target);
      return !(target && blocks[target.data.type] && blocks[target.data.type].category === "trigger");
    },
    [flowApi, blocks],
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
      record();
      const id = newNodeId(key, new Set(current.map((node) => node.id)));
      const node = {
        id,
        type: "block",
        position: at,
        selected: true,
        data: { type: key, config: {}, ports: [...block.ports] },
      };
      setNodes((all) => [...all.map((old) => ({ ...old, selected: false })), node]);
      // Added with the keyboard or a click after a selected block: wire it in, as users expect.
      if (!position && anchor && block.category !== "trigger") {
        setEdges((all) => addEdge(makeEdge(anchor.id, (anchor.data.ports || ["out"])[0], id), all));
      }
      setTab("settings");
      notify(`Added ${block.title} (${id}).`);
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
  const setLabel = useCallback(
    (id, label) => {
      const now = Date.now();
      if (configEdit.current.node !== id || now - configEdit.current.at > 1500) record();
      configEdit.current = { node: id, at: now };
      setNodes((all) => all.map((node) => (node.id === id ? { ...node, data: { ...node.data, label } } : node)));
    },
    [record, setNodes],
  );

  // Blocks whose ports depend on their config (switch cases, policy routes) ask the server.
  useEffect(() => {
    const dynamic = nodes.filter((node) => blocks[node.data.type] && blocks[node.data.type].dynamic_ports);
    if (!dynamic.length) return undefined;
    const timer = setTimeout(async () => {
      for (const node of dynamic) {
        try {
          const answer = await api.ports(node.data.type, node.data.config || {});
          if (answer.config_valid && answer.ports.join() !== (node.data.ports || []).join()) {
            setNodes((all) => all.map((old) => (old.id === node.id ? { ...old, data: { ...old.data, ports: answer.ports } } : old)));
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

  // --- test runs and publishing ----------------------------------------------------------
  const startTest = useCallback(
    async (input, dryRun) => {
      setDock("test");
      setDockOpen(true);
      setStarting(true);
      try {
        if (!(await autosave.flush())) {
          notify("Save the flow first: see the message at the top.");
          return;
        }
        await testRun.start(input, dryRun, flowApi.getNodes().map((node) => node.id));
      } catch (error) {
        if (error.problems && error.problems.length) {
          setServerProblems(error.problems);
          setDock("problems");
        }
        notify(error.message);
      } finally {
        setStarting(false);
      }
    },
    [autosave, testRun, flowApi, notify],
  );
  const runFromSample = useCallback(() => {
    try {
      startTest(sample.trim() ? JSON.parse(sample) : {}, false);
    } catch {
      setDock("test");
      setDockOpen(true);
      notify("The sample input is not valid JSON.");
    }
  }, [sample, startTest, notify]);

  const publish = useCallback(
    async (note) => {
      if (!(await autosave.flush())) {
        setPublishing({ error: { message: "The draft could not be saved.", reasons: [], problems: [] } });
        return;
      }
      try {
        const version = await api.publish(note);
        setPublishing(null);
        setPublished(version.number);
        setVersionsKey((value) => value + 1);
        notify(`Published version ${version.number}.`);
      } catch (error) {
        setPublishing({ error });
        if (error.problems.length) setServerProblems(error.problems);
      }
    },
    [api, autosave, notify],
  );

  const closePublish = useCallback(() => setPublishing(null), []);

  useShortcuts({
    root: settings.root,
    readOnly,
    actions: {
      save: () => autosave.saveNow(),
      undo,
      redo,
      copy,
      paste,
      duplicate: () => {
        copy();
        paste();
      },
      fit: () => flowApi.fitView({ padding: 0.2, duration: 300 }),
      tidy,
      test: runFromSample,
      escape: () => selectOnly([]),
    },
  });

  const selected = nodes.filter((node) => node.selected);
  const inspected = selected.length === 1 ? selected[0] : null;
  const sampleBody = useMemo(() => {
    try {
      return sample.trim() ? JSON.parse(sample) : {};
    } catch {
      return {};
    }
  }, [sample]);
  const triggerId = useMemo(() => {
    const trigger = nodes.find((node) => blocks[node.data.type] && blocks[node.data.type].category === "trigger");
    return trigger ? trigger.id : null;
  }, [nodes, blocks]);
  const scope = useMemo(() => runScope(testRun.run, sampleBody, triggerId), [testRun.run, sampleBody, triggerId]);
  const inspectedId = inspected ? inspected.id : null;
  const upstreamKey = inspectedId ? ancestors(inspectedId, edges).join(",") : "";
  const expressions = useMemo(
    () => ({
      scope,
      suggestions: completions(scope, upstreamKey ? upstreamKey.split(",") : []),
      preview: api.preview,
    }),
    [scope, upstreamKey, api],
  );
  const view = useMemo(
    () => ({ blocks, problems: problemsByNode, steps: testRun.steps, readOnly, expressions }),
    [blocks, problemsByNode, testRun.steps, readOnly, expressions],
  );

  return (
    <EditorView.Provider value={view}>
      <div className="editor">
        <Toolbar
          settings={settings}
          name={meta.name || ""}
          onName={(name) => setMeta((current) => ({ ...current, name }))}
          saveState={autosave.state}
          saveMessage={autosave.message}
          published={published}
          canUndo={history.canUndo}
          canRedo={history.canRedo}
          onUndo={undo}
          onRedo={redo}
          onTidy={tidy}
          onFit={() => flowApi.fitView({ padding: 0.2, duration: 300 })}
          onTest={runFromSample}
          onPublish={() => setPublishing({})}
          problemCount={problems.length}
          exportUrl={api.exportUrl}
          testing={starting || (testRun.run && !testRun.done)}
        />
        {autosave.state === "conflict" && (
          <div className="banner banner-danger" role="alert">
            <strong>Not saved: someone else saved this flow after you opened it.</strong> Your latest changes are only in this tab and
            nothing was overwritten. Reload to see their version, then redo your changes.{" "}
            <button type="button" className="button button-small" onClick={() => window.location.reload()}>Reload</button>
          </div>
        )}
        {readOnly && <div className="banner" role="status">Read only: your role can view this flow but not change it.</div>}
        <div className="editor-body">
          <Palette catalog={catalog} onAdd={addBlock} readOnly={readOnly} />
          <div className="editor-center">
            <div className="canvas" ref={wrapper} onDrop={onDrop} onDragOver={onDragOver} aria-label="Flow canvas" role="region">
              <ReactFlow
                nodes={nodes}
                edges={edges}
                nodeTypes={NODE_TYPES}
                onNodesChange={handleNodesChange}
                onEdgesChange={handleEdgesChange}
                onConnect={connect}
                isValidConnection={isValidConnection}
                onNodeDragStart={record}
                onSelectionDragStart={record}
                onNodeDoubleClick={() => setTab("settings")}
                nodesDraggable={!readOnly}
                nodesConnectable={!readOnly}
                edgesReconnectable={false}
                deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
                multiSelectionKeyCode={["Meta", "Control"]}
                selectionKeyCode="Shift"
                fitView
                fitViewOptions={{ padding: 0.15, maxZoom: 1.1 }}
                minZoom={0.2}
                maxZoom={2}
                snapToGrid
                snapGrid={[10, 10]}
                defaultEdgeOptions={{ type: "default" }}
                proOptions={{ hideAttribution: true }}
                ariaLabelConfig={{ "node.a11yDescription.default": "Press Enter or Space to select this block. Arrow keys move it. Delete removes it." }}
              >
                <Background gap={20} size={1.2} color="#cbd2dc" />
                <Controls showInteractive={false} position="bottom-left" />
                <MiniMap pannable zoomable position="bottom-right" nodeColor={(node) => CATEGORY_COLOURS[blocks[node.data.type]?.category] || "#94a3b8"} nodeBorderRadius={6} ariaLabel="Minimap" />
              </ReactFlow>
              {nodes.length <= 1 && !readOnly && (
                <div className="canvas-hint" aria-hidden="true">Drag blocks from the left, or press Enter on one, then connect the dots.</div>
              )}
            </div>
            <Dock
              open={dockOpen}
              setOpen={setDockOpen}
              dock={dock}
              setDock={setDock}
              problems={problems}
              runStatus={testRun.run ? testRun.run.status : null}
            >
              {dock === "problems" && <ProblemsList problems={problems} onFocusNode={focusNode} />}
              {dock === "test" && (
                <TestRunPanel
                  sample={sample}
                  setSample={setSample}
                  testRun={testRun}
                  onStart={startTest}
                  busy={starting}
                  readOnly={readOnly}
                  onFocusNode={focusNode}
                />
              )}
              {dock === "versions" && (
                <VersionsPanel
                  api={api}
                  canPublish={settings.canPublish}
                  reloadKey={versionsKey}
                  notify={notify}
                  onRolledBack={() => {
                    setVersionsKey((value) => value + 1);
                    api.flow().then((fresh) => setPublished(fresh.published_version));
                  }}
                />
              )}
            </Dock>
          </div>
          <Inspector
            node={inspected}
            nodes={nodes}
            edges={edges}
            tab={tab}
            setTab={setTab}
            onConfig={setConfig}
            onLabel={setLabel}
            onConnect={connect}
            onDisconnect={disconnect}
            onDelete={deleteNodes}
          />
        </div>
        <div className="visually-hidden" role="status" aria-live="polite">{notice}</div>
        {notice && <div className="editor-toast" aria-hidden="true">{notice}</div>}
        {publishing && <PublishDialog result={publishing} onPublish={publish} onClose={closePublish} />}
      </div>
    </EditorView.Provider>
  );
}

function Dock({ open, setOpen, dock, setDock, problems, runStatus, children }) {
  const tabs = [
    ["problems", `Problems${problems.length ? ` (${problems.length})` : ""}`],
    ["test", "Test run"],
    ["versions", "Versions"],
  ];
  return (
    <section className={`dock${open ? " is-open" : ""}`} aria-label="Flow panels">
      <div className="dock-tabs" role="tablist">
        {tabs.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            aria-selected={dock === id}
            className={`tab${dock === id ? " is-on" : ""}${id === "problems" && problems.length ? " has-problems" : ""}`}
            onClick={() => {
              setDock(id);
              setOpen(true);
            }}
          >
            {label}
            {id === "test" && runStatus && <span className={`dot dot-${runStatus}`} aria-label={runStatus} />}
          </button>
        ))}
        <button type="button" className="icon-button dock-toggle" aria-expanded={open} aria-label={open ? "Collapse panel" : "Expand panel"} onClick={() => setOpen(!open)}>
          {open ? "▾" : "▴"}
        </button>
      </div>
      {open && <div className="dock-body" role="tabpanel">{children}</div>}
    </section>
  );
}

function sampleFor(definition) {
  const trigger = (definition.nodes || []).find((node) => node.type && node.type.startsWith("trigger."));
  const sample = trigger && trigger.config && (trigger.config.sample || trigger.config.body);
  return JSON.stringify(sample || {}, null, 2);
}
