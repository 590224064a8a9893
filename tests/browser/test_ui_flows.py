"""What a user does in the web UI, in real headless Chromium against `carml up` with a real worker."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from carml.datasets.digits import load_digits_split


def _wait(browser, condition, timeout: float = 60):  # type: ignore[no-untyped-def]
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(condition)


def _choose(browser, field: str, value: str) -> None:  # type: ignore[no-untyped-def]
    Select(browser.find_element(By.ID, field)).select_by_value(value)


def _job_ended(browser) -> bool:  # type: ignore[no-untyped-def]
    jobs = browser.find_elements(By.CSS_SELECTOR, "#job[data-final='true']")
    return bool(jobs)


def test_try_it_predicts_an_uploaded_digit(browser, carml_site, screenshot, tmp_path) -> None:
    images, labels = load_digits_split("test")
    digit = tmp_path / "my-digit.png"
    Image.fromarray(images[7]).resize((64, 64), Image.Resampling.NEAREST).save(digit)
    browser.get(f"{carml_site}/try")
    screenshot(browser, "try-it")
    _choose(browser, "model", "digits-cnn")
    _choose(browser, "framework", "onnxruntime")
    browser.find_element(By.ID, "file").send_keys(str(digit))
    browser.find_element(By.ID, "try-submit").click()
    _wait(browser, _job_ended)
    top = browser.find_element(By.CSS_SELECTOR, ".topk-bars li[data-label]")
    assert top.get_attribute("data-label") == str(labels[7])
    assert float(top.get_attribute("data-score")) > 0.5
    stages = [
        e.get_attribute("data-stage") for e in browser.find_elements(By.CSS_SELECTOR, "[data-stages] [data-stage]")
    ]
    assert stages == ["fetch", "preprocess", "predict", "postprocess"]
    browser.set_window_size(1280, 1200)
    screenshot(browser, "try-it-result")
    browser.set_window_size(1280, 900)


def test_validation_on_digits_png_shows_accuracy_and_confusion_matrix(browser, carml_site, screenshot) -> None:
    browser.get(f"{carml_site}/validate")
    screenshot(browser, "validate")
    _choose(browser, "model", "digits-cnn")
    _choose(browser, "framework", "onnxruntime")
    _choose(browser, "dataset", "digits-png")
    batch = browser.find_element(By.ID, "batch_size")
    batch.clear()
    batch.send_keys("8")
    browser.find_element(By.ID, "validate-submit").click()
    _wait(browser, _job_ended)
    progress = browser.find_element(By.CSS_SELECTOR, "#job-progress [data-job-progress]")
    assert progress.get_attribute("aria-valuenow") == progress.get_attribute("aria-valuemax") == "360"
    assert browser.find_element(By.ID, "job").get_attribute("data-status") == "succeeded"
    top1 = browser.find_element(By.CSS_SELECTOR, "#accuracy-table tr[data-metric='top1']").text
    assert "98.3" in top1
    # The charts are drawn by Chart.js in the browser, from the JSON the server returns.
    for chart in ("confusion-chart", "latency-chart", "stages-chart", "hardware-chart", "trace-chart"):
        _wait(browser, lambda b, c=chart: b.find_element(By.ID, c).get_attribute("data-rendered") == "true", 20)
    canvas = browser.find_element(By.ID, "confusion-chart")
    drawn = browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n;",
        canvas,
    )
    assert drawn > 1000  # pixels painted on the canvas, not just an empty element
    browser.set_window_size(1280, 2400)  # the whole result page, charts included
    screenshot(browser, "job-result")
    browser.set_window_size(1280, 900)
    browser.get(f"{carml_site}/jobs")
    screenshot(browser, "jobs")


def test_a_long_job_can_be_cancelled_from_the_jobs_page(browser, carml_site, screenshot, tmp_path) -> None:
    images, labels = load_digits_split("test")
    many = tmp_path / "many-digits.npz"
    # 86,400 items at batch 1: long enough that the job is still running when the cancel button is clicked,
    # however fast the worker (at 21,600 a fast run could finish first).
    np.savez(many, x=np.tile(images, (240, 1, 1)).astype(np.float32), y=np.tile(labels, 240))
    browser.get(f"{carml_site}/datasets/upload")
    browser.find_element(By.ID, "name").send_keys("many-digits")
    browser.find_element(By.ID, "file").send_keys(str(many))
    browser.find_element(By.ID, "upload-submit").click()
    report = _wait(browser, lambda b: b.find_elements(By.ID, "upload-report"))[0]
    assert report.get_attribute("data-items") == "86400"
    screenshot(browser, "upload")

    browser.get(f"{carml_site}/validate")
    _choose(browser, "model", "digits-cnn")
    _choose(browser, "framework", "onnxruntime")
    _choose(browser, "dataset", "many-digits")
    batch = browser.find_element(By.ID, "batch_size")
    batch.clear()
    batch.send_keys("1")
    browser.find_element(By.ID, "validate-submit").click()
    job_id = _wait(browser, lambda b: b.find_element(By.ID, "job").get_attribute("data-job-id"))
    _wait(
        browser,
        lambda b: int(b.find_element(By.CSS_SELECTOR, "#job [data-job-progress]").get_attribute("aria-valuenow")) > 0,
    )

    browser.get(f"{carml_site}/jobs")
    row = browser.find_element(By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{job_id}']")
    row.find_element(By.CSS_SELECTOR, ".cancel-form button").click()
    # The form's POST answers with a page again: until then a reload below would abort the POST before it is sent.
    WebDriverWait(browser, 30).until(staleness_of(row))

    def cancelled(b) -> bool:  # type: ignore[no-untyped-def]
        # Reload rather than rely on the page's polling, which pauses while the browser reports the tab hidden.
        b.refresh()
        return (
            b.find_element(By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{job_id}']").get_attribute("data-status")
            == "cancelled"
        )

    WebDriverWait(browser, 30, poll_frequency=0.5).until(cancelled)
    row = browser.find_element(By.CSS_SELECTOR, f"#jobs-table tr[data-job-id='{job_id}']")
    done = int(row.find_element(By.CSS_SELECTOR, "[data-job-progress]").get_attribute("aria-valuenow"))
    assert done < 86_400


def test_a_bad_upload_shows_an_error_next_to_the_field(browser, carml_site, screenshot, tmp_path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"this is not a zip archive")
    browser.get(f"{carml_site}/datasets/upload")
    browser.find_element(By.ID, "name").send_keys("broken-upload")
    browser.find_element(By.ID, "file").send_keys(str(broken))
    browser.find_element(By.ID, "upload-submit").click()
    error = _wait(browser, lambda b: b.find_elements(By.CSS_SELECTOR, "#file-error.field-error"))[0]
    assert error.text and browser.find_element(By.ID, "file").get_attribute("aria-invalid") == "true"
    screenshot(browser, "upload-error")


@pytest.mark.parametrize("page", ["", "models/digits-cnn", "workers", "compare", "comparisons"])
def test_every_page_renders(browser, carml_site, screenshot, open_page, page: str) -> None:
    browser.get_log("browser")  # reading the log empties it: only this page's messages count below
    assert open_page(f"/{page}") == 200
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    screenshot(browser, page.replace("/", "-") or "catalog")


def test_try_it_predicts_a_pasted_image_url(browser, carml_site, tmp_path) -> None:
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    images, labels = load_digits_split("test")
    Image.fromarray(images[3]).resize((32, 32), Image.Resampling.NEAREST).save(tmp_path / "digit.png")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"{carml_site}/try")
        _choose(browser, "model", "digits-cnn")
        _choose(browser, "framework", "pytorch")
        browser.find_element(By.ID, "url").send_keys(f"http://127.0.0.1:{server.server_address[1]}/digit.png")
        browser.find_element(By.ID, "try-submit").click()
        _wait(browser, _job_ended)
        top = browser.find_element(By.CSS_SELECTOR, ".topk-bars li[data-label]")
        assert top.get_attribute("data-label") == str(labels[3])
    finally:
        server.shutdown()
        server.server_close()
