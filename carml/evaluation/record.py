"""The reproducibility record: everything needed to say what produced a number."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import carml
from carml import hardware


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def reproducibility_record(
    *,
    framework: str,
    framework_version: str | None,
    device: str | None,
    manifest_digest: str,
    dataset_digest: str | None,
    batch_size: int,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-ready record of software, hardware and inputs of one run."""
    return {
        "carml": carml.__version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "numpy": _version_of("numpy"),
        "framework": framework,
        "framework_version": framework_version,
        "device": device,
        "cpu_model": hardware.cpu_model(),
        "cpu_cores": hardware.cpu_cores(),
        "gpus": hardware.gpus(),
        "manifest_sha256": manifest_digest,
        "dataset_digest": dataset_digest,
        "batch_size": batch_size,
        "seed": seed,
        **(extra or {}),
    }
