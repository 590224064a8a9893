"""Paths and helpers shared by tests (tests/ is on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = PROJECT_ROOT / "manifests"
SAMPLES = MANIFESTS / "samples"


def run_carml_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run `carml` in a fresh interpreter (for tests that change what is importable)."""
    return subprocess.run(
        [sys.executable, "-m", "carml", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
    )


REDIS_URL = "redis://127.0.0.1:6379/0"


def require_redis() -> str:
    """REDIS_URL once Redis answers there; else the test is skipped, or failed on CI, where Redis must be up."""
    import pytest
    import redis

    try:
        if redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping():
            return REDIS_URL
    except redis.RedisError:
        pass
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Redis unreachable at {REDIS_URL}")
    pytest.skip(f"Redis unreachable at {REDIS_URL}")


def unique_tag(name: str) -> str:
    """A hardware tag unique to one test, so queues left on a shared broker never reach another test."""
    import secrets

    return f"{name}-{secrets.token_hex(3)}"


# The user the web and API tests act as: an admin, so that tests written before accounts existed see everything.
TEST_USER = "tester"


def sign_in(client: Any, settings: Any, name: str = TEST_USER, role: str = "admin", web: bool = True) -> Any:
    """Make a Flask test client act as `name` (created, without a password, on first use): an API token in its
    Authorization header and, with `web`, a login session for the pages. Returns the client."""
    from carml.accounts import AccountError, create_token, create_user
    from carml.accounts.users import user_id_for
    from webapp.callers import SESSION_USER_KEY

    try:
        user_id = user_id_for(settings, name)
    except AccountError:
        user_id = create_user(settings, name, role).id
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {create_token(settings, name, 'tests')}"
    if web:
        with client.session_transaction() as session:
            session[SESSION_USER_KEY] = user_id
    return client


def wait_for_api_job(client: Any, job_id: str, timeout: float = 120) -> dict[str, Any]:
    """The job as the API shows it once final, read through a Flask test client every 0.1 s."""
    import time

    from carml.db.models import JobStatus

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json
        if JobStatus(job["status"]).final:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def webapp_conftest(alias: str) -> ModuleType:
    """The API tests' conftest (tests/webapp/conftest.py) as a module, for other test folders to reuse its fixtures.

    NB: tests/webapp has no __init__.py and `webapp` names the app package, so the module is loaded by path,
    under a name of the caller's choosing (each folder gets its own copy of the module).
    """
    path = PROJECT_ROOT / "tests" / "webapp" / "conftest.py"
    spec = importlib.util.spec_from_file_location(f"carml_tests_webapp_conftest_{alias}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
