// One WebSocket per page to the workspace event stream. Pages listen for the
// "flowgate:event" DOM event (detail = the server's JSON) instead of opening their own.
const RETRY_MS = [1000, 2000, 5000, 10000];

export function connectWorkspaceEvents(slug, attempt = 0) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/w/${slug}/events/`);
  socket.addEventListener("open", () => {
    attempt = 0;
    document.body.dataset.live = "on";
    document.dispatchEvent(new CustomEvent("flowgate:live"));
  });
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    document.dispatchEvent(new CustomEvent("flowgate:event", { detail: event }));
    if (event.toast) showToast(event.toast);
  });
  socket.addEventListener("close", (closing) => {
    document.body.dataset.live = "off";
    if (closing.code >= 4400) return; // refused: not logged in or not a member
    const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
    setTimeout(() => connectWorkspaceEvents(slug, attempt + 1), delay);
  });
  return socket;
}

export function showToast(text) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const toast = document.createElement("div");
  toast.className = "toast";
  toast.textContent = text; // text, never HTML: toasts can carry user data
  region.append(toast);
  setTimeout(() => toast.remove(), 6000);
}
