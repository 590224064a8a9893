"""A comparison in real headless Chromium: a batch-size sweep submitted from the Compare page, its legs side by
side and one chart per metric drawn by Chart.js."""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait


def test_a_batch_size_sweep_shows_its_legs_and_charts(browser, carml_site, screenshot) -> None:
    browser.get(f"{carml_site}/compare")
    Select(browser.find_element(By.ID, "models")).select_by_value("digits-cnn")
    Select(browser.find_element(By.ID, "frameworks")).select_by_value("onnxruntime")
    Select(browser.find_element(By.ID, "dataset")).select_by_value("digits")
    checkbox = browser.find_element(By.CSS_SELECTOR, "input[name='hardware_tags'][value='cpu']")
    if not checkbox.is_selected():
        checkbox.click()
    sizes = browser.find_element(By.ID, "batch_sizes")
    sizes.clear()
    sizes.send_keys("8, 64")
    browser.find_element(By.ID, "compare-submit").click()

    def finished(b) -> bool:  # type: ignore[no-untyped-def]
        # The page reloads itself as legs finish; refreshing here too keeps the test independent of timers.
        page = b.find_elements(By.ID, "comparison")
        if page and page[0].get_attribute("data-status") in ("succeeded", "finished_with_errors"):
            return True
        b.refresh()
        return False

    WebDriverWait(browser, 90, poll_frequency=1).until(finished)
    assert browser.find_element(By.ID, "comparison").get_attribute("data-status") == "succeeded"
    rows = browser.find_elements(By.CSS_SELECTOR, "#legs-table tbody tr")
    assert len(rows) == 2 and all("succeeded" in row.text for row in rows)
    for chart in ("compare-top1-chart", "compare-latency-chart", "compare-throughput-chart"):
        WebDriverWait(browser, 20).until(
            lambda b, c=chart: b.find_element(By.ID, c).get_attribute("data-rendered") == "true"
        )
    # No energy counter and no price on this CPU worker: those charts say so instead of drawing zeros.
    assert browser.find_element(By.ID, "compare-energy-chart").get_attribute("data-empty") == "true"
    browser.set_window_size(1280, 1600)
    screenshot(browser, "comparison")
    browser.set_window_size(1280, 900)
