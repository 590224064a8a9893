"""The Recommend page's scatter plot, drawn by Chart.js in real Chromium from two evaluations a worker ran, and
the Reports page's downloads."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def _post_json(url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def _wait_succeeded(base: str, job_id: str, token: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    job = urllib.request.Request(f"{base}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        with urllib.request.urlopen(job, timeout=5) as reply:
            status = json.load(reply)["status"]
        if status == "succeeded":
            return
        assert status in ("queued", "running"), f"job {job_id} ended {status}"
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_the_recommend_page_draws_its_scatter_plot(
    browser: Any,
    carml_site: str,
    site_token: str,
    open_page: Callable[[str], int],
    screenshot: Callable[[Any, str], Path],
) -> None:
    for batch_size in (10, 30):
        body = {"kind": "evaluate", "model": "digits-cnn", "framework": "onnxruntime", "dataset": "digits"}
        job = _post_json(f"{carml_site}/api/v1/jobs", {**body, "limit": 60, "batch_size": batch_size}, site_token)
        _wait_succeeded(carml_site, job["id"], site_token)
    browser.get_log("browser")  # forget what earlier pages logged
    assert open_page("/recommend?task=image-classification") == 200
    canvas = WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda b: (c := b.find_element(By.ID, "recommend-chart")).get_attribute("data-rendered") == "true" and c
    )
    painted = browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n;",
        canvas,
    )
    assert painted > 1000  # axes, labels and points, not an empty element
    assert browser.find_elements(By.CSS_SELECTOR, "#recommend-table tr[data-pareto='true']")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e["source"] != "network"]
    assert errors == []  # no script error and no Content-Security-Policy violation
    browser.set_window_size(1280, 1300)
    screenshot(browser, "recommend")
    browser.set_window_size(1280, 900)


def test_the_reports_page_previews_and_links_downloads(
    browser: Any, open_page: Callable[[str], int], screenshot: Callable[[Any, str], Path]
) -> None:
    assert open_page("/reports?model=digits-cnn&show=hardware_comparison") == 200
    links = browser.find_elements(By.CSS_SELECTOR, "#reports-table a[data-download='csv']")
    assert len(links) == 4 and all("format=csv" in link.get_attribute("href") for link in links)
    # The download, fetched as the link would be: a CSV whose header is the report's columns.
    reply = browser.execute_script(
        "return fetch(arguments[0]).then(r => r.text().then(body => ({type: r.headers.get('content-type'), body})))",
        links[1].get_attribute("href"),
    )
    assert reply["type"].startswith("text/csv") and reply["body"].startswith("model,framework,dataset,hardware_tag,")
    assert browser.find_element(By.ID, "report-preview").get_attribute("data-report") == "hardware_comparison"
    browser.set_window_size(1280, 1100)
    screenshot(browser, "reports")
    browser.set_window_size(1280, 900)
