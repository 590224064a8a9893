"""Smoke tests of the benchmark scripts: each runs as users run it, on its tiniest size, so none of them rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import PROJECT_ROOT


@pytest.fixture()
def run_bench(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run `bench/<script>` with `args` and `--out` in tmp_path; returns the JSON it wrote (fails with its output)."""

    def run(script: str, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> dict[str, Any]:
        out = tmp_path / f"{Path(script).stem}.json"
        completed = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "bench" / script), *args, "--out", str(out)],
            cwd=PROJECT_ROOT,
            env={**os.environ, "CARML_CACHE_DIR": str(tmp_path / "cache"), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert completed.returncode == 0, f"{script} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        record: dict[str, Any] = json.loads(out.read_text())
        assert record["benchmark"] and record["machine"]["cores"] and record["versions"]["python"]
        return record

    return run
