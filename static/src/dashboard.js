// The dashboard's charts: Chart.js on canvas, fed by the workspace's JSON API
// (/api/w/<slug>/dashboard/?range=...). Redrawn every few seconds while the tab is visible,
// and soon after any run changes status (the workspace's live events). The rest of the page
// (figures, SLOs, tables) is re-rendered by htmx, which keeps this container (hx-preserve).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const POLL_MS = 5000;
const DEBOUNCE_MS = 800;
const STATUSES = ["succeeded", "failed", "cancelled", "waiting", "running", "queued"];

function palette(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--chart-${name}`).trim();
}

function bucketLabel(start, minutes) {
  const moment = new Date(start);
  const options = minutes >= 360
    ? { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return moment.toLocaleString(undefined, options);
}

const milliseconds = (value) => (value == null ? null : Math.round(value * 10) / 10);

function runsData(figures) {
  const { runs, bucket_minutes: minutes } = figures.series;
  return {
    labels: runs.map((bucket) => bucketLabel(bucket.start, minutes)),
    datasets: STATUSES.map((status) => ({
      label: status,
      data: runs.map((bucket) => bucket[status]),
      backgroundColor: palette(status),
      stack: "runs",
    })),
  };
}

function percentiles(rows, name, keys) {
  return {
    labels: rows.map(name),
    datasets: keys.map(([label, key]) => ({
      label,
      data: rows.map((row) => milliseconds(row[key])),
      backgroundColor: palette(label),
    })),
  };
}

function stepsData(figures) {
  const keys = [["p50", "p50"], ["p95", "p95"], ["p99", "p99"]];
  return percentiles(figures.steps.latency, (row) => row.block_type, keys);
}

function decisionsData(figures) {
  const rows = [
    ...figures.models.rows.map((row) => ({ ...row, label: `model ${row.name}` })),
    ...figures.policies.rows.map((row) => ({ ...row, label: `policy ${row.name}` })),
  ];
  return percentiles(rows, (row) => row.label, [["p50", "p50_ms"], ["p95", "p95_ms"]]);
}

const millisecondAxis = { beginAtZero: true, title: { display: true, text: "ms" } };
const CHARTS = {
  runs: {
    data: runsData,
    options: {
      scales: {
        x: { stacked: true, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
      },
    },
  },
  steps: { data: stepsData, options: { indexAxis: "y", scales: { x: millisecondAxis } } },
  decisions: { data: decisionsData, options: { indexAxis: "y", scales: { x: millisecondAxis } } },
};

function draw(root, figures, charts) {
  for (const [name, spec] of Object.entries(CHARTS)) {
    const canvas = root.querySelector(`canvas[data-chart="${name}"]`);
    if (!canvas) continue;
    const data = spec.data(figures);
    const empty = root.querySelector(`[data-empty-for="${name}"]`);
    if (empty) empty.hidden = data.datasets.some((set) => set.data.some((value) => value));
    if (charts.has(name)) {
      const chart = charts.get(name);
      chart.data = data;
      chart.update();
    } else {
      charts.set(name, new Chart(canvas, {
        type: "bar",
        data,
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          ...spec.options,
        },
      }));
    }
  }
  root.dataset.runsTotal = figures.runs.total;
  root.dataset.drawn = "true";
}

function start(root) {
  const charts = new Map();
  let timer = null;
  const load = async () => {
    if (document.hidden) return; // nobody is looking: skip until the tab is visible again
    try {
      const response = await fetch(root.dataset.source, { headers: { Accept: "application/json" } });
      if (response.ok) draw(root, await response.json(), charts);
    } catch {
      // Offline or the server restarting: the charts keep their last figures until the next poll.
    }
  };
  const loadSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, DEBOUNCE_MS);
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
  document.addEventListener("flowgate:event", (event) => {
    if ((event.detail || {}).type === "run.status") loadSoon();
  });
  setInterval(load, POLL_MS);
  load();
}

const root = document.querySelector("[data-dashboard-charts]");
if (root) start(root);
