"""Paths and helpers shared by tests (tests/ is on sys.path through pytest's `pythonpath`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def unique_tag(name: str) -> str:
    """A hardware tag unique to one test, so queues left on a shared broker never reach another test."""
    import secrets

    return f"{name}-{secrets.token_hex(3)}"
