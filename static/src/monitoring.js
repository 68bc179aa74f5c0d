// Model monitoring charts (Chart.js line charts): drift (Jensen-Shannon distance per field)
// and accuracy per version over windows. The panels arrive by htmx; each canvas names the
// json_script element holding its data ({labels, series: {name: [values]}}).
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];

function draw(canvas) {
  if (canvas.dataset.drawn) return;
  const source = document.getElementById(canvas.dataset.monitoringChart);
  if (!source) return;
  const figures = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "line",
    data: {
      labels: figures.labels,
      datasets: Object.entries(figures.series).map(([label, data], index) => ({
        label,
        data,
        borderColor: COLOURS[index % COLOURS.length],
        backgroundColor: COLOURS[index % COLOURS.length],
        spanGaps: true,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true } },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
    },
  });
  canvas.dataset.drawn = "true";
}

function drawAll() {
  document.querySelectorAll("canvas[data-monitoring-chart]").forEach(draw);
}

document.addEventListener("htmx:afterSettle", drawAll);
drawAll();
