// The reviewer inbox: live refresh when tasks change, and keyboard shortcuts.
//   list page:   j / k move between tasks, o or Enter opens, x selects for a bulk decision
//   task page:   a approves, r rejects (a comment is required: focus it first)
import "./inbox.css";
import { showToast } from "../events.js";

const typing = (target) =>
  target instanceof HTMLElement &&
  (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));

function rows() {
  return [...document.querySelectorAll("[data-task-row]")];
}

function move(step) {
  const all = rows();
  if (!all.length) return;
  const current = all.findIndex((row) => row.classList.contains("is-selected"));
  const next = all[Math.max(0, Math.min(all.length - 1, current + step))];
  all.forEach((row) => row.classList.remove("is-selected"));
  next.classList.add("is-selected");
  next.setAttribute("aria-selected", "true");
  next.scrollIntoView({ block: "nearest" });
}

function selected() {
  return document.querySelector("[data-task-row].is-selected");
}

function decide(key) {
  const form = document.querySelector("[data-decision-form]");
  const button = form?.querySelector(`[data-shortcut="${key}"]`);
  if (!button) return false;
  const comment = form.querySelector("textarea[name=comment]");
  if (button.hasAttribute("data-needs-comment") && comment && !comment.value.trim()) {
    comment.focus();
    comment.setAttribute("aria-invalid", "true");
    showToast("Write a comment first: rejecting needs one.");
    return true;
  }
  form.requestSubmit(button);
  return true;
}

// A decision moves on to the next task: a held key (auto-repeat) or a second press meant for
// the task just decided must not decide the next one unseen. The page says when a and r
// start to count (data-decision-keys="on").
let decisionKeys = false;
setTimeout(() => {
  decisionKeys = true;
  document.body.dataset.decisionKeys = "on";
}, 800);

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  if ((event.key === "a" || event.key === "r") && (event.repeat || !decisionKeys)) {
    event.preventDefault();
    return;
  }
  const row = selected();
  const handled = {
    j: () => move(1),
    k: () => move(-1),
    o: () => row && (location.href = row.dataset.href),
    Enter: () => row && (location.href = row.dataset.href),
    x: () => row?.querySelector("input[type=checkbox]")?.click(),
    a: () => decide("a"),
    r: () => decide("r"),
  }[event.key];
  if (handled) {
    handled();
    event.preventDefault();
  }
});

// Live updates: the workspace WebSocket (events.js) dispatches every server event.
document.addEventListener("flowgate:event", (event) => {
  const detail = event.detail || {};
  if (detail.type !== "inbox.task") return;
  if (detail.change === "created" || detail.change === "escalated") showToast(detail.message || "New task");
  document.body.dispatchEvent(new CustomEvent("inbox:refresh"));
});
