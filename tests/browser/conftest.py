"""Browser tests: a headless Chromium (Selenium + Debian's chromium/chromium-driver) against a real `carml up`.

Fixtures:
  browser            session: a Selenium WebDriver on headless Chromium; skips without Chromium (fails when CI=true)
  carml_site         session: base URL ("http://127.0.0.1:PORT") of `carml up` on the embedded default, worker live
  site_token         session: the API token `carml up` printed for its first admin (`Authorization: Bearer ...`)
  open_page(path)    navigates `browser` to carml_site + path, waits for the load; returns the HTTP status
  screenshot(driver, name)   saves <artifacts>/screenshots/<name>.png; returns the path
A failing test that used `browser` also leaves <artifacts>/failures/<test>.png. <artifacts> is $CARML_TEST_ARTIFACTS,
or test-artifacts/ at the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT_ROOT

CHROMIUM = os.environ.get("CARML_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CARML_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm; Chromium crashes when it fills up
    "--window-size=1280,900",  # screenshots the same size everywhere
)
SITE_START_TIMEOUT_S = 90
PAGE_LOAD_TIMEOUT_S = 30


def artifacts_dir() -> Path:
    """Where browser tests leave screenshots: $CARML_TEST_ARTIFACTS, or test-artifacts/ at the repository root."""
    return Path(os.environ.get("CARML_TEST_ARTIFACTS") or PROJECT_ROOT / "test-artifacts")


def _skip_or_fail(reason: str) -> None:
    # CI installs Chromium (.ci/run): there a missing browser is a broken setup, and a skip would hide every UI test.
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


# --- the browser -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Headless Chromium driven by Selenium, shared by the session (a fresh profile; cookies persist across tests),
    logged in to `carml_site` as its first admin through the login form."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        _skip_or_fail(
            f"browser tests need Chromium and its driver; missing {', '.join(missing)} "
            "(apt-get install chromium chromium-driver)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _skip_or_fail("browser tests need selenium: pip install -e '.[test]'")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    # Keep the browser's console: tests can read it with driver.get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = tmp_path_factory.getbasetemp() / "chromedriver.log"
    # An explicit driver path: Selenium Manager (which would download a driver) is never consulted.
    service = Service(executable_path=CHROMEDRIVER, log_output=str(log))
    try:
        driver = webdriver.Chrome(options=options, service=service)
    except Exception as exc:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise AssertionError(f"Chromium did not start: {exc}\n{tail}") from exc
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
    driver.set_script_timeout(PAGE_LOAD_TIMEOUT_S)
    try:
        _log_in(driver, request.getfixturevalue("carml_site"))  # the site starts only once a browser exists
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def screenshot() -> Callable[[Any, str], Path]:
    """`screenshot(driver_or_page, name)`: save a PNG to <artifacts>/screenshots/<name>.png; returns its path."""

    def take(driver_or_page: Any, name: str) -> Path:
        folder = artifacts_dir() / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_file_name(name)}.png"
        if hasattr(driver_or_page, "save_screenshot"):  # a Selenium WebDriver (or WebElement: .screenshot)
            ok = driver_or_page.save_screenshot(str(path))
        else:  # anything with Playwright's page.screenshot(path=...)
            driver_or_page.screenshot(path=str(path))
            ok = path.is_file()
        assert ok, f"screenshot {name!r} was not written"
        return path

    return take


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "screenshot"


_REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that used `browser` and failed leaves <artifacts>/failures/<test>.png: what the page showed."""
    yield
    report = request.node.stash.get(_REPORTS, {}).get("call")
    if "browser" not in request.fixturenames or report is None or not report.failed:
        return
    folder = artifacts_dir() / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    # The browser itself may be what broke: then the test's own failure is the one to report.
    with contextlib.suppress(Exception):
        request.getfixturevalue("browser").save_screenshot(str(folder / f"{_file_name(request.node.nodeid)}.png"))


# --- the site: `carml up` on the embedded default ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ADMIN_PASSWORD = "browser-tests-admin"  # CARML_ADMIN_PASSWORD of the site: the first admin's password
_PRINTED_TOKEN = re.compile(r"API token: (carml_\S+)")


def _log_in(driver: Any, base: str) -> None:
    """Log in through the form, as a person would; the session cookie then serves every later test."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/login")
    driver.find_element(By.ID, "name").send_keys("admin")
    driver.find_element(By.ID, "password").send_keys(ADMIN_PASSWORD)
    driver.find_element(By.ID, "login-submit").click()
    # NB: the click may return before the next page has loaded (a login checks the throttle and a scrypt hash).
    try:
        user = WebDriverWait(driver, 30, poll_frequency=0.1).until(
            expected_conditions.presence_of_element_located((By.ID, "current-user"))
        )
    except TimeoutException:
        raise AssertionError(f"not logged in after 30 s:\n{driver.page_source[:2000]}") from None
    assert user.text == "admin", driver.page_source[:2000]


def _live_workers(base: str, token: str | None) -> list[dict[str, Any]]:
    if token is None:
        return []
    request = urllib.request.Request(f"{base}/api/v1/workers?alive=true", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return json.load(reply)["workers"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.fixture(scope="session")
def carml_site(_carml_up: tuple[str, str]) -> str:
    """The site's base URL, "http://127.0.0.1:PORT"."""
    return _carml_up[0]


@pytest.fixture(scope="session")
def site_token(_carml_up: tuple[str, str]) -> str:
    """The first admin's API token, as `carml up` printed it."""
    return _carml_up[1]


@pytest.fixture(scope="session")
def _carml_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`carml up` on the embedded default in a private CARML_HOME; yields (its base URL, the API token it printed
    for its first admin) once a worker is live.

    Shared by the session: jobs one test submits are visible to the next. Its log is `up.log` in the folder
    that the start-up error message names.
    """
    folder = tmp_path_factory.mktemp("carml-site")
    # Only the embedded default: no database, broker or object store configured, a private home folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARML_")}
    env.update(
        CARML_HOME=str(folder / "home"),
        CARML_CACHE_DIR=str(folder / "cache"),
        CARML_WORKER_HEARTBEAT_S="1",
        # The URL test serves its image on loopback, which input URLs may reach only when allow-listed.
        CARML_URL_ALLOWLIST="127.0.0.1",
        CARML_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = folder / "up.log"
    with log_path.open("w") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "carml", "up", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: its worker can be killed with it if it hangs
        )
    try:
        deadline = time.monotonic() + SITE_START_TIMEOUT_S
        token = None
        while not _live_workers(base, token):
            printed = _PRINTED_TOKEN.search(log_path.read_text())
            token = printed.group(1) if printed else None
            if up.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {up.returncode}" if up.poll() is not None else "no live worker in time"
                raise AssertionError(f"carml up ({state}); {log_path}:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        assert token is not None
        yield base, token
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)  # `carml up` and the worker it started
            up.wait()


@pytest.fixture()
def open_page(browser: Any, carml_site: str) -> Callable[[str], int]:
    """`open_page("/path")`: load carml_site + path in `browser`, wait until loaded; returns the HTTP status."""

    def open_(path: str) -> int:
        browser.get(carml_site + path)
        # driver.get returns once the load event fired (the default "normal" page-load strategy).
        assert browser.execute_script("return document.readyState") == "complete"
        # The status of the document itself (Chromium ≥ 109); 0 when the browser had no HTTP response.
        return browser.execute_script("return performance.getEntriesByType('navigation')[0]?.responseStatus ?? 0")

    return open_
