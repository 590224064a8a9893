// The Recommend page's scatter plot: top-1 (y) against p99 latency (x), one point per ranked candidate, the
// Pareto front in red joined by a line, point size by cost when every candidate has one. The data is the JSON
// block #recommend-chart-data the server rendered into the page. The canvas gets data-rendered="true" once
// drawn, data-empty="true" when no candidate has both numbers, or data-chart-error.
"use strict";

(function () {
  const FRONT = "rgb(220, 38, 38)";
  const OTHER = "rgba(37, 99, 235, 0.75)";

  const renderedFlag = {
    id: "carmlRendered",
    afterRender: function (chart) { chart.canvas.dataset.rendered = "true"; },
  };

  function ms(value) {
    return (value < 10 ? value.toPrecision(3) : value.toFixed(1)) + " ms";
  }

  // Radius 4 to 14 px by cost between the cheapest and the dearest; 6 px when cost does not size the points.
  function radius(data) {
    return function (point) {
      if (!data.cost_sized) return 6;
      const span = data.cost_max - data.cost_min;
      return span > 0 ? 4 + 10 * (point.cost - data.cost_min) / span : 8;
    };
  }

  function scatter(canvas, data) {
    const size = radius(data);
    const front = data.points.filter(function (p) { return p.pareto; })
      .sort(function (a, b) { return a.x - b.x; });
    const others = data.points.filter(function (p) { return !p.pareto; });
    function dataset(label, points, colour, line) {
      return {
        label: label, data: points, backgroundColor: colour, borderColor: colour, showLine: line,
        borderWidth: line ? 1.5 : 1, pointRadius: points.map(size), pointHoverRadius: points.map(function (p) { return size(p) + 2; }),
      };
    }
    return new Chart(canvas, {
      type: "scatter",
      data: { datasets: [dataset("Pareto front", front, FRONT, true), dataset("other candidates", others, OTHER, false)] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          x: { type: "linear", title: { display: true, text: "p99 latency per batch (ms)" } },
          y: { type: "linear", max: 100, title: { display: true, text: "top-1 (%)" } },
        },
        plugins: {
          tooltip: { callbacks: { label: function (ctx) {
            const p = ctx.raw;
            const cost = p.cost === null || p.cost === undefined ? "" : ", cost " + p.cost.toPrecision(3) + " / 1,000";
            return p.label + ": " + p.y.toFixed(2) + " %, p99 " + ms(p.x) + cost;
          } } },
        },
        onClick: function (event, elements, chart) {
          if (!elements.length) return;
          const p = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index];
          if (p.url) window.location.href = p.url;
        },
      },
      plugins: [renderedFlag],
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const canvas = document.getElementById("recommend-chart");
    const block = document.getElementById("recommend-chart-data");
    if (!canvas || !block) return;
    if (typeof Chart === "undefined") {
      canvas.dataset.chartError = "Chart.js did not load";
      return;
    }
    try {
      const data = JSON.parse(block.textContent);
      if (!data.points.length) {
        canvas.dataset.empty = "true";
        canvas.hidden = true;
        return;
      }
      scatter(canvas, data);
    } catch (error) {
      canvas.dataset.chartError = String(error && error.message ? error.message : error);
    }
  });
})();
