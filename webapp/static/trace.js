// The job page's trace timeline: one row per span (nested under its parent), a floating bar from its start
// to its end, drawn with the vendored Chart.js from /jobs/<id>/timeline.json. The canvas gets
// data-rendered="true" once drawn, data-empty="true" when there is nothing to draw, or data-chart-error.
"use strict";

(function () {
  const ROW_PX = 16;
  const COLORS = {
    submit: "rgb(100, 116, 139)", queue: "rgb(148, 163, 184)", shard: "rgb(71, 85, 105)",
    load_model: "rgb(168, 85, 247)", batch: "rgb(203, 213, 225)", fetch: "rgb(14, 165, 233)",
    decode: "rgb(6, 182, 212)", preprocess: "rgb(20, 184, 166)", predict: "rgb(37, 99, 235)",
    postprocess: "rgb(234, 88, 12)", store: "rgb(22, 163, 74)", operator: "rgb(250, 204, 21)",
  };

  const renderedFlag = {
    id: "carmlTraceRendered",
    afterRender: function (chart) { chart.canvas.dataset.rendered = "true"; },
  };

  function ms(value) {
    return value < 10 ? value.toPrecision(3) + " ms" : value.toFixed(1) + " ms";
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

  function draw(canvas, timeline) {
    if (!timeline || !timeline.rows.length) return empty(canvas, "No spans were recorded for this job yet.");
    const rows = timeline.rows;
    // En spaces: canvas text keeps them, so nesting shows as indentation.
    const labels = rows.map(function (r) { return "\u2002".repeat(r.depth) + r.label; });
    canvas.parentElement.style.height = (rows.length * ROW_PX + 70) + "px";
    if (timeline.total > timeline.drawn) {
      const note = document.getElementById("trace-note");
      note.textContent = "The first " + timeline.drawn + " of " + timeline.total +
        " spans are drawn; the API and the spans table have every one.";
      note.hidden = false;
    }
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: [{
          label: "span",
          data: rows.map(function (r) { return [r.start_ms, Math.max(r.end_ms, r.start_ms + 0.001)]; }),
          backgroundColor: rows.map(function (r) { return COLORS[r.kind] || COLORS.operator; }),
          barPercentage: 0.9, categoryPercentage: 1, minBarLength: 2,
        }],
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, indexAxis: "y",
        scales: {
          x: { type: "linear", beginAtZero: true, position: "top", title: { display: true, text: "ms after submission" } },
          // Labels flush left, so the indentation of nested spans shows.
          y: { ticks: { autoSkip: false, crossAlign: "far", font: { size: 11 } } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            title: function (items) { return rows[items[0].dataIndex].label; },
            label: function (ctx) {
              const r = rows[ctx.dataIndex];
              return ms(r.duration_ms) + ", from " + ms(r.start_ms) + " to " + ms(r.end_ms);
            },
          } },
        },
      },
      plugins: [renderedFlag],
    });
  }

  async function drawTrace(section) {
    const canvas = document.getElementById("trace-chart");
    if (!canvas) return;
    if (typeof Chart === "undefined") {
      canvas.dataset.chartError = "Chart.js did not load";
      return;
    }
    try {
      const response = await fetch(section.dataset.timelineUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("timeline.json answered " + response.status);
      draw(canvas, (await response.json()).timeline);
    } catch (error) {
      canvas.dataset.chartError = String(error && error.message ? error.message : error);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    const section = document.getElementById("trace");
    if (section && section.dataset.timelineUrl) drawTrace(section);
  });
})();
