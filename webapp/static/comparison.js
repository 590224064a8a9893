// The comparison page: one bar chart per metric over the legs (drawn with the vendored Chart.js from the
// comparison's API JSON), and a reload whenever another leg finishes while the comparison runs.
// Each canvas gets data-rendered="true" once drawn, or data-empty="true" when no leg has the metric.
"use strict";

(function () {
  const COLOURS = ["rgba(37, 99, 235, 0.75)", "rgba(220, 38, 38, 0.75)"];
  const POLL_MS = 2000;

  const renderedFlag = {
    id: "carmlRendered",
    afterRender: function (chart) { chart.canvas.dataset.rendered = "true"; },
  };

  function label(leg) {
    const threads = leg.worker_threads && leg.worker_threads.length ? " (" + leg.worker_threads.join("/") + " thr)" : "";
    return "#" + leg.leg + " " + leg.hardware_tag + threads + " b" + leg.batch_size + " " + leg.framework;
  }

  function barChart(canvas, legs, series, axis, missing) {
    const done = legs.filter(function (leg) { return series.some(function (s) { return leg[s[0]] !== null; }); });
    if (!done.length) {
      canvas.dataset.empty = "true";
      canvas.hidden = true;
      const note = document.createElement("p");
      note.className = "empty-state chart-empty";
      note.textContent = missing;
      canvas.parentElement.appendChild(note);
      return;
    }
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: done.map(label),
        datasets: series.map(function (s, i) {
          return { label: s[1], data: done.map(function (leg) { return leg[s[0]]; }), backgroundColor: COLOURS[i] };
        }),
      },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: axis } } },
      },
      plugins: [renderedFlag],
    });
  }

  function draw(legs) {
    const pending = "No leg has finished with this measurement yet.";
    const charts = [
      ["compare-top1-chart", [["top1", "top-1"]], "fraction correct", pending],
      ["compare-latency-chart", [["latency_p50_ms", "p50"], ["latency_p99_ms", "p99"]], "ms", pending],
      ["compare-throughput-chart", [["throughput_items_per_s", "items/s"]], "items/s", pending],
      ["compare-energy-chart", [["joules_per_item", "J/item"]], "joules per item",
       "No finished leg measured energy: it needs a worker with an energy counter (NVML on NVIDIA GPUs)."],
      ["compare-cost-chart", [["cost_per_1000_items", "cost"]], "per 1,000 items",
       "No finished leg has a cost: set a price per hour for its tag in CARML_HARDWARE_PRICES."],
    ];
    charts.forEach(function (chart) {
      const canvas = document.getElementById(chart[0]);
      if (!canvas) return;
      try {
        barChart(canvas, legs, chart[1], chart[2], chart[3]);
      } catch (error) {
        canvas.dataset.chartError = String(error && error.message ? error.message : error);
      }
    });
  }

  async function fetchComparison(page) {
    const response = await fetch(page.dataset.apiUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error("the comparison API answered " + response.status);
    return response.json();
  }

  function poll(page) {
    window.setTimeout(async function () {
      try {
        const comparison = await fetchComparison(page);
        if (String(comparison.legs_finished) !== page.dataset.legsFinished) {
          window.location.reload();  // a leg finished: the server renders its numbers
          return;
        }
      } catch (error) {
        page.dataset.pollError = String(error.message || error);
      }
      poll(page);
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", async function () {
    const page = document.getElementById("comparison");
    if (!page) return;
    const running = page.dataset.status === "queued" || page.dataset.status === "running";
    if (running) poll(page);
    if (typeof Chart === "undefined") return;
    try {
      draw((await fetchComparison(page)).legs);
      page.dataset.chartsLoaded = "true";
    } catch (error) {
      page.dataset.chartError = String(error.message || error);
    }
  });
})();
