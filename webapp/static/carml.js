// CarML's pages work without this script; it adds live progress, framework choices that fit the model,
// and sample previews. No dependencies.
"use strict";

(function () {
  const POLL_MS = 1000;

  // --- live progress: rows of the jobs list and the job page poll /api/v1/jobs/<id> until final --------
  function setStatus(element, status) {
    element.dataset.status = status;
    const badge = element.querySelector("[data-job-status]");
    if (badge) {
      badge.textContent = status.replace("_", " ");
      badge.className = "status status-" + status;
    }
  }

  function setProgress(element, done, total) {
    const bar = element.querySelector("[data-job-progress]");
    const text = element.querySelector("[data-job-progress-text]");
    if (bar) {
      const percent = total ? Math.floor((100 * done) / total) : 0;
      bar.setAttribute("aria-valuenow", String(done));
      bar.setAttribute("aria-valuemax", String(total));
      const fill = bar.querySelector(".progress-bar");
      if (fill) fill.style.width = percent + "%";
    }
    if (text) text.textContent = done + " / " + total;
  }

  const FINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

  function follow(element, onFinal) {
    let busy = false;
    const timer = window.setInterval(async function () {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const response = await fetch(element.dataset.apiUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const job = await response.json();
        setStatus(element, job.status);
        setProgress(element, job.progress.done, job.progress.total);
        if (FINAL.has(job.status)) {
          window.clearInterval(timer);
          element.dataset.final = "true";
          onFinal(job);
        }
      } catch (error) {
        // The server may be restarting; the next tick tries again.
      } finally {
        busy = false;
      }
    }, POLL_MS);
  }

  function followJobs() {
    const page = document.getElementById("job");
    if (page && page.dataset.final === "false") {
      // The finished page has the result, charts and downloads: load it once the job is final.
      follow(page, function () { window.location.reload(); });
    }
    document.querySelectorAll("#jobs-table tr[data-job-id][data-final='false']").forEach(function (row) {
      follow(row, function () {
        const cancel = row.querySelector(".cancel-form");
        if (cancel) cancel.remove();
      });
    });
  }

  // --- forms: offer only the frameworks the chosen model is published for -------------------------------
  function fitFrameworks(modelSelect) {
    const frameworkSelect = document.getElementById(modelSelect.dataset.frameworkSelect);
    if (!frameworkSelect) return;
    const chosen = modelSelect.selectedOptions[0];
    const offered = chosen && chosen.dataset.frameworks ? chosen.dataset.frameworks.split(" ") : null;
    Array.from(frameworkSelect.options).forEach(function (option) {
      option.disabled = Boolean(option.value && offered && !offered.includes(option.value));
    });
    const selected = frameworkSelect.selectedOptions[0];
    if (selected && selected.disabled) frameworkSelect.value = "";
  }

  function previewSample(select) {
    const preview = document.getElementById("sample-preview");
    if (!preview) return;
    preview.replaceChildren();
    const option = select.selectedOptions[0];
    if (!option || !option.value) {
      preview.hidden = true;
      return;
    }
    const media = option.dataset.media || "";
    let element = null;
    if (media.startsWith("image/")) {
      element = document.createElement("img");
      element.alt = option.value;
    } else if (media.startsWith("audio/")) {
      element = document.createElement("audio");
      element.controls = true;
      element.preload = "none";
    }
    if (element) {
      element.src = option.dataset.preview;
      preview.appendChild(element);
    }
    preview.hidden = !element;
  }

  document.addEventListener("DOMContentLoaded", function () {
    followJobs();
    document.querySelectorAll("select[data-framework-select]").forEach(function (select) {
      fitFrameworks(select);
      select.addEventListener("change", function () { fitFrameworks(select); });
    });
    const sample = document.getElementById("sample");
    if (sample) {
      previewSample(sample);
      sample.addEventListener("change", function () { previewSample(sample); });
    }
  });
})();
