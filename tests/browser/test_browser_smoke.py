"""The browser harness itself: Chromium loads pages from a real `carml up` and calls its API from inside a page."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_browser_loads_the_site_and_calls_the_api(
    browser: Any, open_page: Callable[[str], int], screenshot: Callable[[Any, str], Path]
) -> None:
    # The OpenAPI document: Chromium shows JSON as text in a <pre> (next to its "Pretty-print" control).
    assert open_page("/api/openapi.json") == 200
    spec = json.loads(browser.execute_script("return (document.querySelector('pre') ?? document.body).textContent"))
    assert spec["servers"] == [{"url": "/api/v1"}] and "/models" in spec["paths"]

    # The root: whatever it serves today (404 until the UI lands), it is a loaded page with an HTTP response.
    status = open_page("/")
    assert status in (200, 404), status
    path = screenshot(browser, "smoke-root")
    assert path.stat().st_size > 0 and path.read_bytes().startswith(b"\x89PNG")

    # The API, as the UI's scripts call it: a same-origin fetch from the page (Selenium awaits the promise).
    reply = browser.execute_script(
        "return fetch('/api/v1/models').then(r => r.json().then(body => ({status: r.status, body})))"
    )
    assert reply["status"] == 200
    digits = {m["framework"]: m for m in reply["body"]["models"] if m["name"] == "digits-cnn"}
    assert set(digits) == {"onnxruntime", "pytorch", "tensorflow"} and digits["onnxruntime"]["runnable"] is True
