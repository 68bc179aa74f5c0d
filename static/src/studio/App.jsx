// The flow editor: canvas, palette, inspector and dock, wired to the REST API.
// State lives here; the pieces it renders are presentational.
import { Background, Controls, MiniMap, ReactFlow, useEdgesState, useNodesState, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import BlockNode from "./BlockNode.jsx";
import { EditorView } from "./context.js";
import { ancestors, completions, runScope } from "./expressions.jsx";
import { autoLayout, blockIndex, blockOf, toCanvas, toDefinition } from "./graph.js";
import Inspector from "./Inspector.jsx";
import Palette from "./Palette.jsx";
import { ProblemsList, PublishDialog, TestRunPanel, VersionsPanel } from "./Panels.jsx";
import { useTestRun } from "./runs.js";
import { localProblems } from "./schema.js";
import Toolbar from "./Toolbar.jsx";
import { useShortcuts } from "./shortcuts.js";
import { useAutosave } from "./useAutosave.js";
import { useGraphEditing } from "./useGraphEditing.js";

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
  const blocks = useMemo(() => blockIndex(catalog), [catalog]);
  const palette = useMemo(() => catalog.filter((block) => block.version === block.latest_version), [catalog]);
  const initial = useMemo(() => {
    const canvas = toCanvas(flow.draft.definition, blocks);
    for (const node of canvas.nodes) if (ports[node.id]) node.data.ports = ports[node.id];
    // Files written by hand (templates, imports) may have no layout: lay them out once.
    const layout = flow.draft.definition.layout || {};
    if (canvas.nodes.some((node) => !layout[node.id])) canvas.nodes = autoLayout(canvas.nodes, canvas.edges);
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
  const [dockOpen, setDockOpen] = useState(loaded.problems.length > 0);
  const [publishing, setPublishing] = useState(null); // null | {error}
  const [published, setPublished] = useState(flow.published_version);
  const [versionsKey, setVersionsKey] = useState(0);
  const [notice, setNotice] = useState("");
  // The test input follows the trigger's sample until the builder types one of their own,
  // which is kept for this flow in this browser (a stored "{}" is no input of their own).
  const sampleKey = `flowgate:sample:${flow.id}`;
  const [typedSample, setTypedSample] = useState(() => storedSample(sampleKey));
  const setSample = useCallback(
    (text) => {
      setTypedSample(text);
      try {
        if (text === null) window.localStorage.removeItem(sampleKey);
        else window.localStorage.setItem(sampleKey, text);
      } catch {
        /* storage full or off: the input is only kept for this page */
      }
    },
    [sampleKey],
  );
  const [starting, setStarting] = useState(false);
  const [diff, setDiff] = useState(null);
  const flowApi = useReactFlow();
  const testRun = useTestRun(api);
  const wrapper = useRef(null);

  const definition = useMemo(() => toDefinition(meta, nodes, edges), [meta, nodes, edges]);
  const triggerSample = useMemo(() => sampleFor(definition), [definition]);
  const sample = typedSample ?? triggerSample;
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
      const block = blockOf(blocks, node.data);
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

  const editing = useGraphEditing({
    api,
    blocks,
    readOnly,
    nodes,
    setNodes,
    setEdges,
    onNodesChange,
    onEdgesChange,
    wrapper,
    notify,
    setTab,
  });
  const { record, undo, redo, connect, selectOnly, addBlock, copy, paste, tidy, focusNode } = editing;

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
    const trigger = nodes.find((node) => blockOf(blocks, node.data)?.category === "trigger");
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
  // After a test run, the paths it took are drawn green; the edge into a running step moves.
  const displayEdges = useMemo(() => {
    const steps = testRun.steps;
    if (!Object.keys(steps).length) return edges;
    return edges.map((edge) => {
      const source = steps[edge.source];
      const target = steps[edge.target];
      const taken = source && source.status === "succeeded" && source.port === edge.sourceHandle;
      const running = taken && target && target.status === "running";
      return taken ? { ...edge, className: "edge-taken", animated: Boolean(running) } : edge;
    });
  }, [edges, testRun.steps]);
  // A diff against the draft, while the versions panel is open, is drawn on the canvas.
  const diffMarks = useMemo(() => {
    if (!diff || diff.to !== "draft" || dock !== "versions" || !dockOpen) return {};
    const marks = {};
    for (const id of diff.nodes.added) marks[id] = "added";
    for (const change of diff.nodes.changed) marks[change.id] = "changed";
    return marks;
  }, [diff, dock, dockOpen]);
  // The agent tool picker's catalogue loader (kept stable: the picker loads once a mount).
  const agentTools = useMemo(() => ({ load: api.agentTools, flowSlug: flow.slug }), [api, flow.slug]);
  const view = useMemo(
    () => ({
      blocks,
      problems: problemsByNode,
      steps: testRun.steps,
      readOnly,
      expressions,
      diff: diffMarks,
      webhook: { path: flow.webhook_path, published: Boolean(published), secretUrl: settings.secretUrl },
      agentTools,
    }),
    [blocks, problemsByNode, testRun.steps, readOnly, expressions, diffMarks, flow.webhook_path, published, settings.secretUrl, agentTools],
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
          canUndo={editing.canUndo}
          canRedo={editing.canRedo}
          onUndo={undo}
          onRedo={redo}
          onTidy={tidy}
          onFit={() => flowApi.fitView({ padding: 0.2, duration: 300 })}
          onTest={runFromSample}
          onPublish={() => setPublishing({})}
          problemCount={problems.length}
          exportUrl={api.exportUrl}
          // A run parked on a wait (a delay, a reviewer) may wait for days: test again meanwhile.
          testing={starting || (testRun.run && !testRun.done && testRun.run.status !== "waiting")}
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
          <Palette catalog={palette} onAdd={addBlock} readOnly={readOnly} />
          <div className="editor-center">
            <div className="canvas" ref={wrapper} onDrop={editing.onDrop} onDragOver={editing.onDragOver} aria-label="Flow canvas" role="region">
              <ReactFlow
                nodes={nodes}
                edges={displayEdges}
                nodeTypes={NODE_TYPES}
                onNodesChange={editing.handleNodesChange}
                onEdgesChange={editing.handleEdgesChange}
                onConnect={connect}
                isValidConnection={editing.isValidConnection}
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
                <MiniMap pannable zoomable position="bottom-right" nodeColor={(node) => CATEGORY_COLOURS[blockOf(blocks, node.data)?.category] || "#94a3b8"} nodeBorderRadius={6} ariaLabel="Minimap" />
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
                  runUrl={settings.runUrl}
                  sample={sample}
                  setSample={setSample}
                  triggerSample={triggerSample}
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
                  onDiff={setDiff}
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
            onConfig={editing.setConfig}
            onNodeData={editing.setNodeData}
            onUpgrade={editing.upgradeNode}
            onConnect={connect}
            onDisconnect={editing.disconnect}
            onDelete={editing.deleteNodes}
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
      <div className="dock-tabs">
        <div className="dock-tablist" role="tablist" aria-label="Panels">
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
            {id === "test" && runStatus && (
              <>
                <span className={`dot dot-${runStatus}`} aria-hidden="true" />
                <span className="visually-hidden"> ({runStatus})</span>
              </>
            )}
          </button>
        ))}
        </div>
        <button type="button" className="icon-button dock-toggle" aria-expanded={open} aria-label={open ? "Collapse panel" : "Expand panel"} onClick={() => setOpen(!open)}>
          {open ? "▾" : "▴"}
        </button>
      </div>
      {open && <div className="dock-body" role="tabpanel">{children}</div>}
    </section>
  );
}

function storedSample(key) {
  let text = null;
  try {
    text = window.localStorage.getItem(key);
  } catch {
    return null;
  }
  if (text === null) return null;
  try {
    const value = JSON.parse(text);
    if (value && typeof value === "object" && !Array.isArray(value) && !Object.keys(value).length) return null;
  } catch {
    /* half-typed JSON is still the builder's own input */
  }
  return text;
}

function sampleFor(definition) {
  const trigger = (definition.nodes || []).find((node) => node.type && node.type.startsWith("trigger."));
  const sample = trigger && trigger.config && (trigger.config.sample || trigger.config.body);
  return JSON.stringify(sample || {}, null, 2);
}
