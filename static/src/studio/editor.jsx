// Entry point of the flow editor island (templates/flows/editor.html): loads the block
// catalogue and the flow, then mounts the React Flow canvas.
import { ReactFlowProvider } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { createRoot } from "react-dom/client";
import { createApi } from "./api.js";
import App from "./App.jsx";
import "./editor.css";

async function load(api) {
  const [catalog, flow] = await Promise.all([api.blocks(), api.flow()]);
  const dynamic = new Set(catalog.filter((block) => block.dynamic_ports).map((block) => block.key));
  const ports = {};
  await Promise.all(
    (flow.draft.definition.nodes || [])
      .filter((node) => dynamic.has(node.type))
      .map(async (node) => {
        const answer = await api.ports(node.type, node.config || {}, node.version || 1).catch(() => null);
        if (answer) ports[node.id] = answer.ports;
      }),
  );
  const { problems } = await api.validate(flow.draft.definition);
  return { catalog, flow, ports, problems };
}

async function mount(root) {
  const settings = {
    root,
    flowId: root.dataset.flowId,
    workspace: root.dataset.workspace,
    listUrl: root.dataset.listUrl,
    runsUrl: root.dataset.runsUrl,
    // A run's page: the server's URL with the run id in place of the zero UUID.
    runUrl: (id) => root.dataset.runUrl.replace("00000000-0000-0000-0000-000000000000", id),
    canEdit: root.dataset.canEdit === "true",
    canPublish: root.dataset.canPublish === "true",
    // Set for builders in a workspace where an admin approves publishing.
    requestPublishUrl: root.dataset.requestPublishUrl || "",
    // Where an admin reveals or rotates the webhook's signing secret (empty: not offered).
    secretUrl: root.dataset.secretUrl || "",
    guideUrl: root.dataset.guideUrl || "",
  };
  const api = createApi({ workspace: settings.workspace, flowId: settings.flowId, csrfToken: root.dataset.csrfToken });
  let loaded;
  try {
    loaded = await load(api);
  } catch (error) {
    const status = root.querySelector(".editor-loading p");
    if (status) status.textContent = `The editor could not load: ${error.message}`;
    return;
  }
  createRoot(root).render(
    <ReactFlowProvider>
      <App api={api} loaded={loaded} settings={settings} />
    </ReactFlowProvider>,
  );
}

const root = document.getElementById("flow-editor");
if (root) mount(root);
