"""What every benchmark writes beside its figures: the machine, the versions and the exact command.

Ratios measured side by side hold on a shared, noisy machine; absolute figures only mean something next to the
machine and versions that produced them, so each result file carries both.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PACKAGES = ("torch", "onnxruntime", "tensorflow-cpu", "tensorflow", "numpy", "sqlalchemy", "psycopg", "celery")


def default_out(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            found["carml_commit"] = commit.stdout.strip()
    except OSError:
        pass
    return found


def write_result(out: Path, name: str, figures: dict[str, Any]) -> Path:
    """Write `figures` with the machine, versions, command and time to `out` (folders created); returns it."""
    record = {
        "benchmark": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": versions(),
        **figures,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return out
