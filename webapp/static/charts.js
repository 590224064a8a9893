// The job page's charts, drawn with the vendored Chart.js from /jobs/<id>/charts.json. Each canvas gets
// data-rendered="true" once drawn, data-empty="true" when there is nothing to draw, or data-chart-error.
"use strict";

(function () {
  const BLUE = "rgb(37, 99, 235)";
  const MARKS = [["p50", "rgb(22, 163, 74)"], ["p90", "rgb(234, 88, 12)"], ["p99", "rgb(220, 38, 38)"]];

  // Marks the canvas once Chart.js has drawn it (animations are off, so the first render is the final one).
  const renderedFlag = {
    id: "carmlRendered",
    afterRender: function (chart) { chart.canvas.dataset.rendered = "true"; },
  };

  function ms(value) {
    return value === null || value === undefined ? "—" : (value < 10 ? value.toPrecision(3) : value.toFixed(1)) + " ms";
  }

  function empty(canvas, message) {
    canvas.dataset.empty = "true";
    canvas.dataset.rendered = "false";
    canvas.hidden = true;
    const note = document.createElement("p");
    note.className = "empty-state chart-empty";
    note.textContent = message;
    canvas.parentElement.classList.add("is-empty");
    canvas.parentElement.appendChild(note);
  }

  function latencyChart(canvas, latency) {
    if (!latency) return empty(canvas, "No batch timings were recorded.");
    const bars = latency.counts.map(function (count, i) {
      return { x: (latency.edges[i] + latency.edges[i + 1]) / 2, y: count };
    });
    const top = Math.max.apply(null, latency.counts);
    const marks = MARKS.map(function (mark) {
      return {
        type: "line",
        label: mark[0] + " " + ms(latency[mark[0]]),
        data: [{ x: latency[mark[0]], y: 0 }, { x: latency[mark[0]], y: top }],
        borderColor: mark[1],
        borderDash: [6, 4],
        borderWidth: 2,
        pointRadius: 0,
      };
    });
    const width = latency.edges.length > 1 ? latency.edges[1] - latency.edges[0] : 1;
    return new Chart(canvas, {
      data: {
        datasets: [{ type: "bar", label: "batches", data: bars, backgroundColor: "rgba(37, 99, 235, 0.6)",
                     barPercentage: 1, categoryPercentage: 1, grouped: false }].concat(marks),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: true,
        scales: {
          x: { type: "linear", title: { display: true, text: "predict time per batch (ms)" },
               min: latency.edges[0] - width / 2, max: latency.edges[latency.edges.length - 1] + width / 2 },
          y: { beginAtZero: true, title: { display: true, text: "batches" }, ticks: { precision: 0 } },
        },
        plugins: { tooltip: { callbacks: { title: function (items) { return ms(items[0].parsed.x); } } } },
      },
      plugins: [renderedFlag],
    });
  }

  function confusionChart(canvas, confusion) {
    if (!confusion) return empty(canvas, "No confusion matrix: the dataset has no classes.");
    const n = confusion.labels.length;
    const top = Math.max(1, confusion.max);
    return new Chart(canvas, {
      type: "matrix",
      data: {
        datasets: [{
          label: "items",
          data: confusion.cells,
          backgroundColor: function (ctx) {
            const cell = ctx.dataset.data[ctx.dataIndex];
            const alpha = cell && cell.v ? 0.12 + 0.88 * (cell.v / top) : 0.03;
            return "rgba(37, 99, 235, " + alpha.toFixed(3) + ")";
          },
          borderColor: "rgba(255, 255, 255, 1)",
          borderWidth: 1,
          width: function (ctx) { const a = ctx.chart.chartArea; return a ? a.width / n : 10; },
          height: function (ctx) { const a = ctx.chart.chartArea; return a ? a.height / n : 10; },
        }],
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            title: function () { return ""; },
            label: function (ctx) { const c = ctx.raw; return "true " + c.y + ", predicted " + c.x + ": " + c.v; },
          } },
        },
        scales: {
          x: { type: "category", labels: confusion.labels, offset: true, grid: { display: false },
               title: { display: true, text: "predicted" } },
          // The matrix type reverses y by default; unreversed, the first class is at the top, as in the table.
          y: { type: "category", labels: confusion.labels, offset: true, reverse: false, grid: { display: false },
               title: { display: true, text: "true class" } },
        },
      },
      plugins: [renderedFlag],
    });
  }

  function stagesChart(canvas, stages) {
    if (!stages) return empty(canvas, "No stage timings were recorded.");
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: stages.stages,
        datasets: [
          { label: "mean", data: stages.mean, backgroundColor: "rgba(37, 99, 235, 0.7)" },
          { label: "p50", data: stages.p50, backgroundColor: "rgba(22, 163, 74, 0.7)" },
        ],
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, indexAxis: "y",
        scales: { x: { beginAtZero: true, title: { display: true, text: "ms per batch" } } },
        plugins: { tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + ms(ctx.parsed.x); } } } },
      },
      plugins: [renderedFlag],
    });
  }

  const HARDWARE_COLOURS = { cpu: BLUE, gpu_utilization: "rgb(22, 163, 74)", gpu_power: "rgb(234, 88, 12)" };

  function hardwareChart(canvas, hardware) {
    if (!hardware || !hardware.series.length) return empty(canvas, "No hardware samples were recorded.");
    const watts = hardware.series.some(function (s) { return s.axis === "watts"; });
    const scales = {
      x: { type: "linear", beginAtZero: true, title: { display: true, text: "seconds since the first shard started" } },
      percent: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "%" } },
    };
    if (watts) scales.watts = { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
                                title: { display: true, text: "W" } };
    return new Chart(canvas, {
      type: "line",
      data: {
        datasets: hardware.series.map(function (s) {
          return { label: s.label, data: s.points, yAxisID: s.axis, borderColor: HARDWARE_COLOURS[s.kind] || BLUE,
                   backgroundColor: HARDWARE_COLOURS[s.kind] || BLUE, borderWidth: 1.5, tension: 0,
                   // A short run has a handful of samples: show them as dots, or a single one draws nothing.
                   pointRadius: s.points.length < 40 ? 3 : 0 };
        }),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, parsing: true, scales: scales },
      plugins: [renderedFlag],
    });
  }

  function draw(id, render, data) {
    const canvas = document.getElementById(id);
    if (!canvas) return;
    try {
      render(canvas, data);
    } catch (error) {
      canvas.dataset.chartError = String(error && error.message ? error.message : error);
    }
  }

  async function drawAll(page) {
    const canvases = ["latency-chart", "confusion-chart", "stages-chart", "hardware-chart"]
      .map(function (id) { return document.getElementById(id); })
      .filter(Boolean);
    if (!canvases.length) return;
    if (typeof Chart === "undefined") {
      canvases.forEach(function (c) { c.dataset.chartError = "Chart.js did not load"; });
      return;
    }
    let data;
    try {
      const response = await fetch(page.dataset.chartsUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("charts.json answered " + response.status);
      data = await response.json();
    } catch (error) {
      canvases.forEach(function (c) { c.dataset.chartError = String(error.message || error); });
      return;
    }
    draw("latency-chart", latencyChart, data.latency);
    draw("confusion-chart", confusionChart, data.confusion);
    draw("stages-chart", stagesChart, data.stages);
    draw("hardware-chart", hardwareChart, data.hardware);
    page.dataset.chartsLoaded = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    const page = document.getElementById("job");
    if (page && page.dataset.chartsUrl) drawAll(page);
  });
})();
