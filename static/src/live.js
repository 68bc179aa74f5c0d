// Live pages without page-specific scripts. Elements opt in with data attributes and an
// hx-trigger="flowgate:refresh" request that re-renders them:
//   data-live-run="<run id>"  refreshed on that run's events; while data-live-active is
//                             "true" and the WebSocket is down, polled every few seconds.
//   data-live-runs            refreshed (debounced) on any run's status change; polled
//                             while the WebSocket is down.
//   data-live-poll            polled while the WebSocket is down (dashboards).
const POLL_MS = 4000;
const DEBOUNCE_MS = 800;

function refresh(element) {
  window.htmx.trigger(element, "flowgate:refresh");
}

// Debounced by selector, not by element: a refresh in flight may swap the element out
// before the timer fires, and the events it was scheduled for must still be shown.
const pending = new Set();
function refreshSoon(selector) {
  if (pending.has(selector)) return;
  pending.add(selector);
  setTimeout(() => {
    pending.delete(selector);
    document.querySelectorAll(selector).forEach(refresh);
  }, DEBOUNCE_MS);
}

function onEvent(event) {
  const detail = event.detail || {};
  if (!String(detail.type || "").startsWith("run.")) return;
  if (detail.run && /^[0-9a-f-]+$/i.test(detail.run)) refreshSoon(`[data-live-run="${detail.run}"]`);
  if (detail.type === "run.status") refreshSoon("[data-live-runs], [data-live-poll]");
}

function refreshActiveRuns() {
  for (const element of document.querySelectorAll("[data-live-run]")) {
    if (element.dataset.liveActive === "true") refresh(element);
  }
}

function poll() {
  if (document.body.dataset.live === "on" || document.hidden) return;
  refreshActiveRuns();
  document.querySelectorAll("[data-live-runs], [data-live-poll]").forEach(refresh);
}

// "Select all" checkboxes select every checkbox of the same name in their form.
function bindSelectAll(root) {
  for (const form of root.querySelectorAll("form[data-bulk-form]")) {
    const all = form.querySelector("[data-select-all]");
    const boxes = () => [...form.querySelectorAll("input[type=checkbox][name=runs]")];
    const counter = form.querySelector("[data-selected-count]");
    const update = () => {
      const chosen = boxes().filter((box) => box.checked).length;
      if (counter) counter.textContent = `${chosen} selected`;
      if (all) {
        all.checked = chosen > 0 && chosen === boxes().length;
        all.indeterminate = chosen > 0 && chosen < boxes().length;
      }
      form.querySelectorAll("button[type=submit]").forEach((button) => {
        button.disabled = chosen === 0;
      });
    };
    if (all) all.addEventListener("change", () => {
      boxes().forEach((box) => { box.checked = all.checked; });
      update();
    });
    boxes().forEach((box) => box.addEventListener("change", update));
    update();
  }
}

// A refresh re-renders the steps: keep each <details> open or closed as the user left it,
// unless the step's status changed (a step that just failed opens, as on a fresh load).
let stepState = null;
function rememberSteps(event) {
  const target = event.detail && event.detail.target;
  if (!target || !target.querySelector) return;
  const steps = target.querySelectorAll("details[data-step]");
  if (!steps.length) return;
  stepState = new Map([...steps].map((step) => [step.dataset.step, [step.open, step.dataset.stepStatus]]));
}
function restoreSteps() {
  if (!stepState) return;
  for (const step of document.querySelectorAll("details[data-step]")) {
    const [open, status] = stepState.get(step.dataset.step) || [];
    if (status !== undefined && status === step.dataset.stepStatus) step.open = open;
  }
  stepState = null;
}

// Events sent before the socket was open (or while it was down) were missed: catch up.
function catchUp() {
  refreshActiveRuns();
  document.querySelectorAll("[data-live-runs]").forEach(refresh);
}

export function startLivePages() {
  document.addEventListener("htmx:beforeSwap", rememberSteps);
  document.addEventListener("htmx:afterSettle", restoreSteps);
  document.addEventListener("flowgate:event", onEvent);
  document.addEventListener("flowgate:live", catchUp);
  for (const input of document.querySelectorAll("[data-select-on-focus]")) {
    input.addEventListener("focus", () => input.select());
  }
  setInterval(poll, POLL_MS);
  bindSelectAll(document);
}
