// The open-task count next to "Inbox" in the navigation, kept current from live events.
export function bindInboxCount(slug) {
  const badge = document.querySelector("[data-inbox-count]");
  if (!badge || !slug) return;
  const refresh = async () => {
    const response = await fetch(`/api/w/${slug}/tasks/counts/`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const counts = await response.json();
    badge.textContent = String(counts.mine);
    badge.hidden = !counts.mine;
    badge.title = `${counts.mine} open task${counts.mine === 1 ? "" : "s"} for you`;
  };
  refresh();
  document.addEventListener("flowgate:event", (event) => {
    if (event.detail?.type === "inbox.task") refresh();
  });
}
