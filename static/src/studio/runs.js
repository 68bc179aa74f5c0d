// A test run followed live: step events from the workspace WebSocket (events.js dispatches
// them as "flowgate:event") light nodes up at once; polling the run detail API fills in
// each step's data and carries the run on its own when the socket is down.
import { useCallback, useEffect, useRef, useState } from "react";

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const POLL_LIVE_MS = 2500;
const POLL_OFFLINE_MS = 800;

export function useTestRun(api) {
  const [run, setRun] = useState(null); // summary or detail
  const [steps, setSteps] = useState({}); // node id -> step data (or {status})
  const [error, setError] = useState(null);
  const runId = run ? run.id : null;
  const done = run ? TERMINAL.has(run.status) : true;
  const refreshing = useRef(false);

  const again = useRef(false);
  const refresh = useCallback(async () => {
    if (!runId) return;
    if (refreshing.current) {
      again.current = true; // an event arrived mid-request: fetch once more afterwards
      return;
    }
    refreshing.current = true;
    try {
      const detail = await api.run(runId);
      setRun(detail);
      setSteps((previous) => {
        const next = {};
        for (const step of detail.steps) next[step.node] = step;
        if (!TERMINAL.has(detail.status)) {
          for (const [node, step] of Object.entries(previous)) if (!next[node] && step.status === "pending") next[node] = step;
        }
        return next;
      });
    } catch (problem) {
      setError(problem.message);
    } finally {
      refreshing.current = false;
      if (again.current) {
        again.current = false;
        refresh();
      }
    }
  }, [api, runId]);

  // Live events for this run.
  useEffect(() => {
    if (!runId) return undefined;
    const onEvent = (event) => {
      const message = event.detail || {};
      if (message.run !== runId) return;
      if (message.type === "run.step") {
        setSteps((previous) => ({
          ...previous,
          [message.node]: { ...(previous[message.node] || {}), node: message.node, status: message.status, port: message.port },
        }));
        refresh();
      } else if (message.type === "run.status") {
        setRun((previous) => (previous ? { ...previous, status: message.status } : previous));
        refresh();
      }
    };
    document.addEventListener("flowgate:event", onEvent);
    return () => document.removeEventListener("flowgate:event", onEvent);
  }, [runId, refresh]);

  // Polling fallback until the run is over.
  useEffect(() => {
    if (!runId || done) return undefined;
    let timer;
    const tick = async () => {
      await refresh();
      timer = setTimeout(tick, document.body.dataset.live === "on" ? POLL_LIVE_MS : POLL_OFFLINE_MS);
    };
    timer = setTimeout(tick, POLL_OFFLINE_MS);
    return () => clearTimeout(timer);
  }, [runId, done, refresh]);

  const start = useCallback(
    async (input, dryRun, nodeIds) => {
      setError(null);
      const started = await api.testRun(input, dryRun);
      setSteps(Object.fromEntries(nodeIds.map((id) => [id, { node: id, status: "pending" }])));
      setRun(started);
      return started;
    },
    [api],
  );

  const clear = useCallback(() => {
    setRun(null);
    setSteps({});
  }, []);

  return { run, steps, error, start, clear, done };
}
