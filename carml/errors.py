"""Domain errors. Every error a user can cause is a `CarmlError` with a message meant for people."""

from __future__ import annotations

from dataclasses import dataclass


class CarmlError(Exception):
    """An error whose message is complete on its own; front ends print it without a traceback."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, located as precisely as we can."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ManifestError(CarmlError):
    """A manifest failed to parse or validate; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ArtifactError(CarmlError):
    """An artifact could not be fetched, verified or unpacked."""


class ChecksumMismatch(ArtifactError):
    """An artifact's bytes do not hash to the sha256 its manifest declares."""


class FrameworkUnavailable(CarmlError):
    """The framework a manifest needs is not installed or does not satisfy its version constraint."""


class DatasetError(CarmlError):
    """A dataset could not be found or read as a whole (single bad items are counted, not raised)."""


class NotFound(CarmlError):
    """A named model, dataset or framework does not exist."""
