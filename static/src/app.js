// The app shell's behaviour: htmx, its WebSocket extension, and the small bits of glue that
// the server-rendered pages need. No inline scripts anywhere (the CSP forbids them).
import htmx from "htmx.org";
import "./styles/app.css";

htmx.config.allowEval = false; // the CSP forbids eval; say so to htmx too
window.htmx = htmx;
await import("htmx-ext-ws");

import { connectWorkspaceEvents } from "./events.js";
import { startLivePages } from "./live.js";
import { bindInboxCount } from "./inbox/count.js";

function bindWorkspaceSwitch() {
  const form = document.querySelector("[data-workspace-switch]");
  if (!form) return;
  form.addEventListener("change", () => form.requestSubmit());
}

// Forms that undo work or stop something (archive a flow, cancel a run) carry
// data-confirm="question": the browser's own dialog asks it, with the keyboard.
function bindConfirmations() {
  document.addEventListener("submit", (event) => {
    const question = event.target instanceof HTMLFormElement && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
}

function start() {
  bindWorkspaceSwitch();
  bindConfirmations();
  startLivePages();
  const slug = document.body.dataset.workspace;
  if (slug) connectWorkspaceEvents(slug);
  bindInboxCount(slug);
}

// The top-level await above can finish after DOMContentLoaded has already fired.
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", start);
} else {
  start();
}
